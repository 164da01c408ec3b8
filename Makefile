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

.PHONY: help install lock lock-check models demo test test-full lint format bench report

help:  ## list the targets (the studies: bash sweeps/<study>.sh, see docs/usage.md)
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

demo: $(STAMP)  ## offline: SFT vs ATLANTIS at noise 0.2 and 0.5 over 3 seeds (tiny random pair), then the report and plot
	$(PY) run.py -m experiment=demo noise=0.2,0.5 method=sft,atlantis seed=0,1,2

# Both cores (pytest-xdist; worksteal evens out the long end-to-end tests) and a random test order every run (pytest-randomly prints the seed to replay it).
PYTEST := $(PY) -m pytest -q -n 2 --dist worksteal

test: $(STAMP)  ## the default test run, ~3 minutes on 2 cores (tests needing ../shared skip without it)
	$(PYTEST) -m "not slow"

test-full: $(STAMP)  ## every test, slow ones included
	$(PYTEST)

lint: $(STAMP)  ## ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)  ## apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(STAMP)  ## CPU benchmarks -> benchmarks/results/cpu.json (quiet machine: ~15 minutes)
	$(PY) -m benchmarks.run_cpu

report: $(STAMP)  ## tables and a plot from a multirun: make report DIR=outputs/multiruns/... [ARGS="--out D --keep-runs K"]
	@test -n "$(DIR)" || (echo "usage: make report DIR=<multirun folder>"; exit 2)
	$(PY) -m atlantis.report $(DIR) $(ARGS)

# The studies are scripts, one per study, each one command that resumes: sweeps/study_cpu.sh, sweeps/study_ratio.sh,
# sweeps/ade_redocred.sh; a single-table sweep is `python run.py -m --config-dir sweeps --config-name <name>`
# (docs/usage.md). Other benchmarks: python -m benchmarks.<name> (docs/benchmarks.md).
