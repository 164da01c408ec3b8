#!/usr/bin/env bash
# The trusted-seed study (docs/study_trusted/README.md, issue 32): SmolLM2-135M -> Gemma-3-270M (`make models`),
# 400 noisy SemEval sentences + k = 10 gold labels per class. One part a command; each resumes (finished jobs are
# skipped, and those kept in docs/study_trusted/runs too) and takes Hydra overrides after its name, which narrow it
# into pieces, e.g. `cell uniform seed=0`.
#   measure   one short job of every arm (4 training steps, 64 test sentences): the cost figures of the plan
#   cell      one noise cell: uniform (50 %), llm_like (30 %) or labeller (the labeller's natural labels),
#             9 arms x 3 seeds; without a name, the three in that order
#   clean     the ceiling: SFT on the same 400 sentences with their gold labels (+ the trusted seed), 3 seeds;
#             one job a seed serves every cell, whose sentences and seed are the same
#   k         k = 5 and 25 trusted labels per class at 50 % uniform, seed 0
#   oracle    GLC through the weak labels' realised corruption matrix (an oracle) at 50 % uniform, 3 seeds: how
#             much GLC loses to its estimate of the matrix
#   glc_large GLC with the matrix estimated by the large base (Gemma, as the job trains it) instead of the small
#             one, in a cell as `cell` names it (e.g. `glc_large uniform seed=0`): the same network as in the paper
#   report    the tables and plot into docs/study_trusted (runs kept in docs/study_trusted/runs), and the same
#             against GLC and against L2RW (docs/study_trusted/vs_glc, vs_l2rw)
source "$(dirname "$0")/env.sh"
part=${1:-}
shift || true

measure() {
	sweep study_trusted hydra.sweep.dir=outputs/study_trusted_measure seed=0 noise=0.5 trainer.max_steps=4 \
		dataset.max_test_examples=64 "$@"
	# its F1s are 4 steps' worth (no result): the figures are each job's run.seconds in its metrics.json
	report outputs/study_trusted_measure
}
cell() {
	local name=
	if [ $# -gt 0 ] && [[ $1 != *=* ]]; then name=$1 && shift; fi  # a cell's name, else every cell
	case "$name" in
	"") for name in uniform llm_like labeller; do cell "$name" "$@"; done ;;
	uniform) sweep study_trusted noise=0.5 noise_kind=uniform "$@" ;;
	llm_like) sweep study_trusted noise=0.3 noise_kind=llm_like "$@" ;;
	labeller)
		labeller_weak_labels
		sweep study_trusted noise=0.0 noise_kind=labeller noise_kind.natural=true \
			noise_kind.weak_file="$ROOT/$LABELLER_WEAK" "$@"
		;;
	*) echo "usage: bash $0 cell {uniform|llm_like|labeller} [overrides...]" >&2 && exit 2 ;;
	esac
}
clean() { sweep study_trusted noise=0.0 noise_kind=uniform +baseline=sft "$@"; }
k() { sweep study_trusted noise=0.5 noise_kind=uniform seed=0 trusted.per_class=5,25 "$@"; }
oracle() { sweep study_trusted noise=0.5 noise_kind=uniform +baseline=glc_oracle "$@"; }
glc_large() { cell "$@" +baseline=glc_large; }  # the command line's +baseline replaces the sweep's nine

KEPT=docs/study_trusted/runs  # the finished runs, committed: a fresh clone resumes without training them again
case "$part" in
measure) measure "$@" ;;
k) restore "$KEPT" && k "$@" ;;
oracle) restore "$KEPT" && oracle "$@" ;;
glc_large) restore "$KEPT" && glc_large "$@" ;;
clean) restore "$KEPT" && clean "$@" ;;
cell) restore "$KEPT" && cell "$@" ;;
report)  # against SFT (noisy + trusted), and ATLANTIS (trusted) against GLC and L2RW: the reading's question 2
	report outputs/study_trusted --keep-runs "$KEPT" --out docs/study_trusted "$@"
	# from the kept runs, which hold every seed (a fresh clone's outputs/ holds only the seeds it ran)
	for other in glc l2rw; do report "$KEPT" --baseline "$other" --out "docs/study_trusted/vs_$other" "$@"; done
	;;
*) usage measure cell clean k oracle glc_large report ;;
esac
