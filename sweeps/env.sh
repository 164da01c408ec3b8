# Sourced by the study scripts (sweeps/*.sh): the repository root as the working folder, the locked .venv, and
# ../shared's data and models when that folder sits beside the checkout (as the Makefile does; override freely).
#   DRY_RUN=1   print every command instead of running it (tests/test_documented_commands.py composes them)
#   LAUNCHER=joblib | slurm   Hydra's launcher for the sweeps (conf/launcher/); basic runs one job at a time
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
SHARED_DIR=${SHARED_DIR:-$(realpath -m "$ROOT/../shared")}
if [ -d "$SHARED_DIR/data" ]; then
	export ATLANTIS_DATA_DIR=${ATLANTIS_DATA_DIR:-$SHARED_DIR/data}
	export ATLANTIS_MODELS_DIR=${ATLANTIS_MODELS_DIR:-$SHARED_DIR/models}
fi
export ATLANTIS_FETCHED_MODELS_DIR=${ATLANTIS_FETCHED_MODELS_DIR:-$ROOT/models}
export PYTHONUNBUFFERED=1
PY=${PY:-.venv/bin/python}
LAUNCHER=${LAUNCHER:-basic}
if [ -z "${DRY_RUN:-}" ] && [ ! -x "$PY" ]; then make install; fi

run() {  # a command, or under DRY_RUN its shell-quoted line
	if [ -n "${DRY_RUN:-}" ]; then printf '%q ' "$@" | sed 's/ $//'; echo; else "$@"; fi
}
sweep() {  # sweep <sweeps/NAME.yaml> [overrides...]: one Hydra multirun; finished jobs are skipped
	local name=$1
	shift
	run "$PY" run.py -m --config-dir sweeps --config-name "$name" launcher="$LAUNCHER" "$@"
}
report() {  # report <multirun or runs folder> [atlantis.report options...]
	run "$PY" -m atlantis.report "$@"
}
restore() {  # restore <kept runs folder>: its completed jobs into outputs/state, so that this sweep skips them
	[ -d "$1" ] || return 0
	run "$PY" -m atlantis.experiment.restore "$1" --output-dir "${ATLANTIS_OUTPUT_DIR:-outputs}"
}
usage() {  # usage <script's part names...>
	echo "usage: bash $0 {$(IFS='|'; echo "$*")} [Hydra overrides...]" >&2
	exit 2
}

# The labeller's weak labels (the CPU and trusted-seed studies' third cell): SmolLM2 labels every training sentence
# once (~30 min, cached by chunk), into $LABELLER_WEAK.
LABELLER_WEAK=outputs/labeller_smollm2/weak.jsonl
labeller_weak_labels() {
	[ -f "$LABELLER_WEAK" ] && [ -z "${DRY_RUN:-}" ] && return
	run "$PY" -m atlantis.experiment.labeller experiment=smollm2_semeval_subset trainer.eval_batch_size=32 \
		labeller.out="$(dirname "$LABELLER_WEAK")"
}
