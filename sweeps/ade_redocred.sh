#!/usr/bin/env bash
# SFT on real SmolLM2-135M on ADE fold 0 (entity pairs, then end to end) and a Re-DocRED slice, ~40 min on 2 cores
# (docs/ade_redocred/README.md); then the three reports. Resumes (finished jobs are skipped); Hydra overrides after
# the part name apply to every job, e.g. `bash sweeps/ade_redocred.sh all trainer.max_epochs=1`.
#   ade | ade_e2e | redocred   one of the three, then its report;  all   the three in turn
source "$(dirname "$0")/env.sh"
part=${1:-}
shift || true

one() {  # one <experiment name> <folder> [report options...] -- overrides
	local experiment=$1 folder=$2
	shift 2
	local options=()
	while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do options+=("$1"); shift; done
	shift || true
	run "$PY" run.py -m experiment="$experiment" +baseline=sft hydra.sweep.dir="outputs/ade_redocred/$folder" \
		launcher="$LAUNCHER" "$@"
	report "outputs/ade_redocred/$folder" "${options[@]}" --out "docs/ade_redocred/$folder"
}
ade() { one smollm2_ade ade -- "$@"; }
ade_e2e() { one smollm2_ade_e2e ade_e2e -- "$@"; }
redocred() { one smollm2_redocred redocred --metric test/docred_f1 -- "$@"; }

case "$part" in
ade | ade_e2e | redocred) "$part" "$@" ;;
all) ade "$@" && ade_e2e "$@" && redocred "$@" ;;
*) usage ade ade_e2e redocred all ;;
esac
