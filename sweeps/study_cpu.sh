#!/usr/bin/env bash
# The CPU study (docs/study_cpu/README.md, issue 15): real SmolLM2-135M as both bases on SemEval, 400 training
# sentences, 1,000 test sentences. One part a command; each resumes (finished jobs are skipped, so a rerun trains
# nothing) and takes Hydra overrides after its name, which narrow the sweep into pieces, e.g.
#   bash sweeps/study_cpu.sh core seed=1 noise=0.5          (one (seed, noise) cell, ~55 min on 2 cores)
# Parts:
#   ablation   1 seed at 50 % uniform: per-class x temperature, and the label_set reduction, vs SFT (section 1)
#   reference  stronger cross-fitted references: 4 folds; 6 epochs; every block trained (section 2)
#   core       the 3-seed grid: uniform 0.0 / 0.5, then the labeller's weak labels (section 3; ~9 h on 2 cores)
#   extended   1 seed at 20 % uniform and 30 % llm_like: both formulas, finetune reference, FisherSFT (section 4)
#   all        every part in that order
source "$(dirname "$0")/env.sh"
part=${1:-}
shift || true

ablation() {  # the 1-seed comparisons at 50 % share one folder and one SFT
	sweep study_cpu_ablation "$@"
	sweep study_cpu hydra.sweep.dir=outputs/study_cpu_ablation/label_set seed=0 noise=0.5 \
		+baseline=atlantis_crossfit method.weights.reduction=label_set "$@"
	sweep study_cpu hydra.sweep.dir=outputs/study_cpu_ablation/sft seed=0 noise=0.5 +baseline=sft "$@"
	report outputs/study_cpu_ablation --keep-runs docs/study_cpu/ablation/runs --out docs/study_cpu/ablation
}
reference() {
	sweep study_cpu hydra.sweep.dir=outputs/study_cpu_ablation/reference_folds seed=0 noise=0.5 \
		+baseline=atlantis_crossfit reference.folds=4 "$@"
	sweep study_cpu hydra.sweep.dir=outputs/study_cpu_ablation/reference_epochs seed=0 noise=0.5 \
		+baseline=atlantis_crossfit reference.max_epochs=6 "$@"
	sweep study_cpu hydra.sweep.dir=outputs/study_cpu_ablation/reference_full seed=0 noise=0.5 \
		+baseline=atlantis_crossfit,atlantis_crossfit_tempered \
		"reference.params={_target_:atlantis.methods.params.FullParams}" "$@"
	report outputs/study_cpu_ablation --keep-runs docs/study_cpu/ablation/runs --out docs/study_cpu/ablation
}
core() {
	labeller_weak_labels
	sweep study_cpu "$@"
	sweep study_cpu noise=0.0 noise_kind=labeller noise_kind.natural=true \
		noise_kind.weak_file="$ROOT/$LABELLER_WEAK" "$@"
	report outputs/study_cpu --keep-runs docs/study_cpu/runs --out docs/study_cpu
}
extended() {
	local setting
	for setting in "noise=0.2 noise_kind=uniform" "noise=0.3 noise_kind=llm_like"; do
		# shellcheck disable=SC2086  # the setting is two overrides
		sweep study_cpu_extended $setting "$@"
		sweep study_cpu_extended $setting +baseline=atlantis_crossfit_per_class reference=finetune "$@"
		sweep study_cpu_extended $setting +baseline=sft,atlantis_crossfit_per_class method/select=fisher "$@"
		sweep study_cpu_extended $setting +baseline=sft method/select=random "$@"
	done
	report outputs/study_cpu_extended --keep-runs docs/study_cpu/extended/runs --out docs/study_cpu/extended
}

case "$part" in
ablation | reference | core | extended) "$part" "$@" ;;
all) ablation "$@" && reference "$@" && core "$@" && extended "$@" ;;
*) usage ablation reference core extended all ;;
esac
