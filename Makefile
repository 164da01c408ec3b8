# atlantis: `make demo` runs the offline demo, `make test` the tests; both build .venv/ first if missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Real data and model files, when the ../shared folder sits beside the checkout (override freely).
SHARED_DIR ?= $(abspath ../shared)
ifneq ($(wildcard $(SHARED_DIR)/data),)
export ATLANTIS_DATA_DIR ?= $(SHARED_DIR)/data
export ATLANTIS_MODELS_DIR ?= $(SHARED_DIR)/models
endif
# Where `make models` writes the models the registry holds in pieces (Gemma-3-270M): a folder of the checkout,
# not ../shared/models, which is a read-only copy (and too small a place for them). Override freely.
export ATLANTIS_FETCHED_MODELS_DIR ?= $(abspath models)
export PYTHONUNBUFFERED := 1

.PHONY: help install lock lock-check models demo test test-full test-random test-seeds lint format inspect bench report clean sweep-semeval-flan-t5 sweep-semeval-qwen2 \
	sweep-conll04-qwen2 sweep-weak-labels sweep-noise-rate sweep-weight-ablation sweep-smollm2-cpu \
	bench-params sweep-params-smollm2 sweep-baselines sweep-ade sweep-redocred smollm2-ade-redocred bench-docred study-cpu study-cpu-piece study-cpu-ablation study-cpu-reference study-cpu-extended

help:  ## list the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-24s %s\n", $$1, $$2}'

# uv installs from uv.lock: the exact version (and hash) of every package, transitive ones included.
UV := $(VENV)/bin/uv
UV_VERSION := $(shell awk '/^name = "uv"$$/ {getline; gsub(/"/, "", $$3); print $$3}' uv.lock)
# The folder holding the CPU build of torch (pip's find-links on these machines); only `make lock` reads it.
WHEELS_DIR ?= $(shell $(PYTHON) -m pip config get global.find-links 2>/dev/null)
# GPU clusters: `make install TORCH_INDEX=https://download.pytorch.org/whl/cu128` keeps every other pin.
TORCH_INDEX ?=
TORCH_VERSION := $(shell awk '/^name = "torch"$$/ {getline; gsub(/"/, "", $$3); sub(/\+.*/, "", $$3); print $$3}' uv.lock)

$(UV):
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet uv==$(UV_VERSION)

$(STAMP): uv.lock pyproject.toml | $(UV)
ifeq ($(TORCH_INDEX),)
	$(UV) sync --locked --compile-bytecode --extra dev
else
	$(UV) sync --locked --compile-bytecode --extra dev --no-install-package torch
	$(UV) pip install --python $(PY) "torch==$(TORCH_VERSION)" --index $(TORCH_INDEX)
endif
	touch $(STAMP)

install: $(STAMP)  ## create .venv/ from uv.lock (TORCH_INDEX=<pytorch index> for a CUDA build of the same torch)

lock: | $(UV)  ## re-resolve uv.lock after editing pyproject.toml's dependencies
	UV_FIND_LINKS=$(WHEELS_DIR) $(UV) lock

lock-check: | $(UV)  ## fail when uv.lock no longer matches pyproject.toml
	@$(UV) lock --check --quiet 2>/dev/null || { $(UV) lock --check; \
		echo "uv.lock is stale against pyproject.toml: run 'make lock' and commit uv.lock" >&2; exit 1; }

models: $(STAMP)  ## Gemma-3-270M (Gemma Terms of Use) from hashed registry pins -> $ATLANTIS_FETCHED_MODELS_DIR (models/); reruns check the hash only
	$(PY) -m atlantis.utils.fetch_models --models-dir "$(ATLANTIS_FETCHED_MODELS_DIR)"

demo: $(STAMP)  ## offline: SFT vs ATLANTIS (paper's formula; the default, per-class; tempered) at noise 0.2 and 0.5, then the report and plot
	$(PY) run.py -m experiment=demo noise=0.2,0.5 method=sft,atlantis_paper,atlantis,atlantis_tempered

# Both cores (pytest-xdist; worksteal evens out the long end-to-end tests) and a random test order every run (pytest-randomly prints the seed to replay it).
PYTEST := $(PY) -m pytest -q -n 2 --dist worksteal

test: $(STAMP)  ## the default test run, ~3 minutes on 2 cores (tests needing ../shared skip without it)
	$(PYTEST) -m "not slow"

test-full: $(STAMP)  ## every test, slow ones included
	$(PYTEST)

test-random: $(STAMP)  ## the default run three times in three random orders (SEEDS="1 2 3")
	for seed in $(or $(SEEDS),1 2 3); do $(PYTEST) -m "not slow" -p randomly -p "no:cacheprovider" --randomly-seed=$$seed || exit 1; done

test-seeds: $(STAMP)  ## the learning tests over seeds 0-4, printing what each reached
	ATLANTIS_LEARNING_SEEDS=0,1,2,3,4 $(PY) -m pytest -q -s -p no:randomly -k "learns or test_run_writes_its_outputs" | grep -aoE "learning .*|[0-9]+ passed.*|[0-9]+ failed.*"

lint: $(STAMP)  ## ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)  ## apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

inspect: $(STAMP)  ## print a few examples token by token with roles (ARGS="model=tiny model.kind=causal")
	$(PY) -m atlantis.experiment.inspect_cli $(ARGS)

bench: $(STAMP)  ## CPU benchmarks -> benchmarks/results/cpu.json (quiet machine: ~15 minutes)
	$(PY) -m benchmarks.run_cpu

bench-params: $(STAMP)  ## full / top-8 / LoRA / sparse / HF Trainer step time and memory, SmolLM2 (~10 minutes)
	$(PY) -m benchmarks.params_step

report: $(STAMP)  ## tables and a plot from a multirun: make report DIR=outputs/multiruns/... [ARGS="--out D --keep-runs K"]
	@test -n "$(DIR)" || (echo "usage: make report DIR=<multirun folder>"; exit 2)
	$(PY) -m atlantis.report $(DIR) $(ARGS)

# One target per table or figure of the seed study (sweeps/*.yaml). LAUNCHER=joblib or slurm to go wide.
LAUNCHER ?= basic
SWEEP = $(PY) run.py -m --config-dir sweeps --config-name $(1) launcher=$(LAUNCHER) $(ARGS)
sweep-semeval-flan-t5: $(STAMP)  ## SemEval, Flan-T5 small->base, SFT vs ATLANTIS, 3 seeds
	$(call SWEEP,semeval_flan_t5)
sweep-semeval-qwen2: $(STAMP)  ## SemEval, both Qwen2 pairs
	$(call SWEEP,semeval_qwen2)
sweep-conll04-qwen2: $(STAMP)  ## CoNLL04, both Qwen2 pairs
	$(call SWEEP,conll04_qwen2)
sweep-weak-labels: $(STAMP)  ## 20 % LLM-like weak labels, every weighting method
	$(call SWEEP,weak_labels_20)
sweep-noise-rate: $(STAMP)  ## noise rate 0-0.5, SFT vs ATLANTIS (finetune, crossfit)
	$(call SWEEP,noise_rate_sweep)
sweep-weight-ablation: $(STAMP)  ## reduction x per-class x clipping x reference
	$(call SWEEP,weight_ablation)
sweep-smollm2-cpu: $(STAMP)  ## the CPU study with real SmolLM2 weights (about an hour on 2 cores)
	$(call SWEEP,smollm2_cpu_study)
sweep-baselines: $(STAMP)  ## prompting, cleanlab, small-loss, loss truncation vs SFT and ATLANTIS, real SmolLM2
	$(call SWEEP,baselines)
sweep-ade: $(STAMP)  ## ADE, 10 folds (mean ± sd over folds), SFT vs ATLANTIS, Qwen2 0.5B -> 1.5B
	$(call SWEEP,ade_folds)
sweep-redocred: $(STAMP)  ## Re-DocRED, incomplete labels (kappa 0.45), SFT vs ATLANTIS, DocRED F1 / Ign F1 (GPU)
	$(call SWEEP,redocred)
smollm2-ade-redocred: $(STAMP)  ## SFT on real SmolLM2: ADE fold 0 (pairs, end-to-end) and a Re-DocRED slice (~40 min on 2 cores)
	$(PY) run.py -m experiment=smollm2_ade +baseline=sft hydra.sweep.dir=outputs/ade_redocred/ade $(ARGS)
	$(PY) run.py -m experiment=smollm2_ade_e2e +baseline=sft hydra.sweep.dir=outputs/ade_redocred/ade_e2e $(ARGS)
	$(PY) run.py -m experiment=smollm2_redocred +baseline=sft hydra.sweep.dir=outputs/ade_redocred/redocred $(ARGS)
	$(PY) -m atlantis.report outputs/ade_redocred/ade --out docs/ade_redocred/ade
	$(PY) -m atlantis.report outputs/ade_redocred/ade_e2e --out docs/ade_redocred/ade_e2e
	$(PY) -m atlantis.report outputs/ade_redocred/redocred --metric test/docred_f1 --out docs/ade_redocred/redocred
# The 1-seed comparisons at noise 0.5 (weight options, the reference's strength) share one folder and one SFT.
STUDY_CPU_ONE_SEED = $(PY) -m atlantis.report outputs/study_cpu_ablation --keep-runs docs/study_cpu/ablation/runs \
	--out docs/study_cpu/ablation
study-cpu-ablation: $(STAMP)  ## issue 15: 1-seed ablation (per-class x temperature, label_set) vs SFT at noise 0.5, then its report
	$(call SWEEP,study_cpu_ablation)
	$(call SWEEP,study_cpu) hydra.sweep.dir=outputs/study_cpu_ablation/label_set seed=0 noise=0.5 \
		+baseline=atlantis_crossfit method.weights.reduction=label_set
	$(call SWEEP,study_cpu) hydra.sweep.dir=outputs/study_cpu_ablation/sft seed=0 noise=0.5 +baseline=sft
	$(STUDY_CPU_ONE_SEED)
study-cpu-reference: $(STAMP)  ## issue 15: a stronger crossfit reference (4 folds; 6 epochs; every block trained) at noise 0.5, 1 seed, then the report
	$(call SWEEP,study_cpu) hydra.sweep.dir=outputs/study_cpu_ablation/reference_folds seed=0 noise=0.5 \
		+baseline=atlantis_crossfit reference.folds=4
	$(call SWEEP,study_cpu) hydra.sweep.dir=outputs/study_cpu_ablation/reference_epochs seed=0 noise=0.5 \
		+baseline=atlantis_crossfit reference.max_epochs=6
	$(call SWEEP,study_cpu) hydra.sweep.dir=outputs/study_cpu_ablation/reference_full seed=0 noise=0.5 \
		+baseline=atlantis_crossfit,atlantis_crossfit_tempered "reference.params={_target_:atlantis.methods.params.FullParams}"
	$(STUDY_CPU_ONE_SEED)
study-cpu-extended: $(STAMP)  ## issue 15: the extended grid, 1 seed, at 0.2 uniform and 0.3 llm_like, then its report
	for noise in "noise=0.2 noise_kind=uniform" "noise=0.3 noise_kind=llm_like"; do \
		$(call SWEEP,study_cpu_extended) $$noise && \
		$(call SWEEP,study_cpu_extended) $$noise +baseline=atlantis_crossfit_per_class reference=finetune && \
		$(call SWEEP,study_cpu_extended) $$noise +baseline=sft,atlantis_crossfit_per_class method/select=fisher && \
		$(call SWEEP,study_cpu_extended) $$noise +baseline=sft method/select=random || exit 1; \
	done
	$(PY) -m atlantis.report outputs/study_cpu_extended --keep-runs docs/study_cpu/extended/runs \
		--out docs/study_cpu/extended
# One piece of the core grid into its own folder (e.g. PIECE="noise=0.5"): `make study-cpu` skips its finished jobs.
PIECE ?= noise=0.5
EMPTY :=
SPACE := $(EMPTY) $(EMPTY)
COMMA := ,
# the piece's folder: its overrides without the characters Hydra reads as syntax (noise=0.0,0.5 -> noise0.0-0.5)
PIECE_DIR = $(subst +,,$(subst $(COMMA),-,$(subst =,,$(subst $(SPACE),_,$(PIECE)))))
# The labeller's weak labels (the baselines issue: SmolLM2 labels every training sentence, ~30 min, cached).
LABELLER_WEAK := outputs/labeller_smollm2/weak.jsonl
$(LABELLER_WEAK): | $(STAMP)
	$(PY) -m atlantis.experiment.labeller experiment=smollm2_semeval_subset trainer.eval_batch_size=32 \
		labeller.out=$(dir $(LABELLER_WEAK))
# The core grid's third noise setting: every error the labeller made (its natural rate).
STUDY_CPU_LABELLER = noise=0.0 noise_kind=labeller noise_kind.natural=true noise_kind.weak_file=$(abspath $(LABELLER_WEAK))
# A piece naming noise_kind=labeller (e.g. PIECE="noise_kind=labeller seed=0") gets the labeller's file first.
PIECE_NEEDS = $(if $(findstring noise_kind=labeller,$(PIECE)),$(LABELLER_WEAK))
PIECE_ARGS = $(if $(PIECE_NEEDS),$(STUDY_CPU_LABELLER) $(filter-out noise_kind=labeller,$(PIECE)),$(PIECE))
study-cpu-piece: $(STAMP) $(PIECE_NEEDS)  ## issue 15: one resumable piece of the core grid, e.g. PIECE="noise=0.5 seed=1" or "noise_kind=labeller seed=0"
	$(call SWEEP,study_cpu) hydra.sweep.dir=outputs/study_cpu_pieces/$(PIECE_DIR) $(PIECE_ARGS)
	$(PY) -m atlantis.report outputs/study_cpu_pieces --out outputs/study_cpu_pieces/report
study-cpu: $(STAMP) $(LABELLER_WEAK)  ## issue 15: the 3-seed core grid on real SmolLM2 (~9 h on 2 cores, resumable), then its report
	$(call SWEEP,study_cpu)
	$(call SWEEP,study_cpu) $(STUDY_CPU_LABELLER)
	$(PY) -m atlantis.report outputs/study_cpu --keep-runs docs/study_cpu/runs --out docs/study_cpu
bench-docred: $(STAMP)  ## Re-DocRED test pairs/s over 97 labels: document prefix once vs whole prompts
	$(PY) -m benchmarks.docred_pairs $(ARGS)
sweep-params-smollm2: $(STAMP)  ## SFT with full / top-8 / LoRA / sparse on real SmolLM2, clean labels (~1 hour)
	$(call SWEEP,params_smollm2)

clean:  ## remove outputs and caches (keeps .venv/)
	rm -rf outputs .cache .pytest_cache .ruff_cache
.PHONY: gpu-check bench-ddp
bench-ddp: $(STAMP)  ## the demo job on 1 vs 2 CPU processes (DDP, gloo): scores and wall time (~5 min)
	$(PY) -m benchmarks.ddp_cpu $(ARGS)
gpu-check: $(STAMP)  ## one job per strategy (none ddp fsdp deepspeed) on 1 GPU, ~3 min on an H200 (ARGS="--cpu-smoke" on a CPU)
	$(PY) -m benchmarks.gpu_check $(ARGS)
