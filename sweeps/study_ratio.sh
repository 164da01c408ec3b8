#!/usr/bin/env bash
# The ratio study (docs/study_ratio/README.md, issue 29): p_b^S = SmolLM2-135M, p_b^L = Gemma-3-270M (`make models`).
# One part a command; each resumes and takes Hydra overrides after its name. Run it from a `git worktree` at a fixed
# commit, in pieces: a run stops after HOURS (2.5 by default; HOURS= for no limit), losing only the table or job
# it was in, and the same command goes on from there.
#   free     training-free: every weight option on one set of signals, all 7,999 training sentences, at 50 %
#            uniform then 30 % llm_like (~5.5 h each on 2 cores)
#   grid     the trained grid, 6 arms x noise 0.0/0.5 x 3 seeds; a piece is one cell: `grid seed=0 noise=0.5`
#   reverse  SmolLM2 trained with Gemma as its small base, seed 0
#   report   the trained grid's report into docs/study_ratio/grid (runs kept in docs/study_ratio/runs), against
#            reference only into grid/vs_ref_only (the ratio's own contribution) and against per-class, the current
#            default, into grid/vs_per_class (the decision rule's tie-break)
#   save     copy the finished score tables from the cache into docs/study_ratio/cache, to commit
# The score tables are committed (docs/study_ratio/cache, a few MB of JSON): every part first copies them into
# $ATLANTIS_CACHE_DIR, so a fresh clone resumes where the last piece stopped instead of rescoring for hours.
source "$(dirname "$0")/env.sh"
part=${1:-}
shift || true
export ATLANTIS_CACHE_DIR=${ATLANTIS_CACHE_DIR:-$ROOT/.cache/atlantis}
COMMITTED=docs/study_ratio/cache
TABLES="scores scores_folds label_sets label_sets_folds"  # JSON tables; checkpoints (references, models) stay out
HOURS=${HOURS-2.5}
DEADLINE=$(awk -v h="${HOURS:-0}" -v now="$(date +%s)" 'BEGIN { printf "%d", now + h * 3600 }')
limited() {  # the command, stopped at the piece's deadline (one deadline for every command of this run)
	[ -z "$HOURS" ] && { run "$@"; return; }
	local left=$((DEADLINE - $(date +%s)))
	if [ "$left" -le 0 ]; then echo "the ${HOURS} h piece is over: run the same command to go on" >&2; exit 0; fi
	run timeout "$left" "$@"
}

seed_cache() {
	[ -n "${DRY_RUN:-}" ] && return
	mkdir -p "$ATLANTIS_CACHE_DIR"
	cp -rn "$COMMITTED"/. "$ATLANTIS_CACHE_DIR"/  # never over an entry the cache has
}
save() {
	[ -n "${DRY_RUN:-}" ] && return
	local kind
	for kind in $TABLES; do
		[ -d "$ATLANTIS_CACHE_DIR/$kind" ] || continue
		mkdir -p "$COMMITTED/$kind"
		# finished entries only: an interrupted write is a hidden temporary folder
		find "$ATLANTIS_CACHE_DIR/$kind" -mindepth 1 -maxdepth 1 -type d ! -name '.*' \
			-exec cp -rn {} "$COMMITTED/$kind/" \;
	done
	echo "tables in $COMMITTED: $(find "$COMMITTED" -name value.json | wc -l) (git add $COMMITTED)"
}
free() {
	local setting
	for setting in "noise=0.5 noise_kind=uniform uniform_0.5" "noise=0.3 noise_kind=llm_like llm_like_0.3"; do
		set -- $setting "$@"  # noise, kind, folder name, then the user's overrides
		# the tables finished so far are saved even when the piece stops inside this setting
		limited "$PY" -m atlantis.experiment.ratio_study experiment=ratio_free "$1" "$2" \
			ratio_study.out="docs/study_ratio/training_free/$3" "${@:4}" || { local rc=$?; save; exit "$rc"; }
		save
		shift 3
	done
}
grid() { limited "$PY" run.py -m --config-dir sweeps --config-name study_ratio launcher="$LAUNCHER" "$@"; }
reverse() { limited "$PY" run.py -m --config-dir sweeps --config-name study_ratio_reverse launcher="$LAUNCHER" "$@"; }

case "$part" in
free) seed_cache && free "$@" ;;
grid | reverse) seed_cache && restore docs/study_ratio/runs && "$part" "$@" ;;  # kept runs are not trained again
report)  # against SFT, reference only (the ratio's own contribution: rule 1) and per-class (rule 2's tie-break)
	report outputs/study_ratio --keep-runs docs/study_ratio/runs --out docs/study_ratio/grid "$@"
	report docs/study_ratio/runs --baseline ref_only --out docs/study_ratio/grid/vs_ref_only "$@"  # every kept seed
	# the rule's tie-break: a candidate replaces the default (per-class) only where its interval against it is clear
	report docs/study_ratio/runs --baseline atlantis_per_class --out docs/study_ratio/grid/vs_per_class "$@"
	;;
save) save ;;
*) usage free grid reverse report save ;;
esac
