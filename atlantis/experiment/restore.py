"""Completed jobs back from kept run folders, so that a sweep resumed on a fresh clone skips them.

    python -m atlantis.experiment.restore docs/study_trusted/runs [--output-dir outputs]

A study keeps its finished runs in git (`python -m atlantis.report <multirun> --keep-runs <folder>`); its job
states (checkpoints, outputs) stay on the machine that ran them. On another machine the same sweep would train
every job again: restoring first marks the kept ones completed (their kept files become the job's outputs).
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from atlantis.experiment.jobs import restore_completed


def main(argv: list[str] | None = None) -> dict[str, int]:
    parser = argparse.ArgumentParser(prog="python -m atlantis.experiment.restore", description=__doc__.split("\n")[0])
    parser.add_argument("runs", type=Path, help="a folder of kept runs (each with its metrics.json)")
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=Path(os.environ.get("ATLANTIS_OUTPUT_DIR", "outputs")),
        help="the sweeps' paths.output_dir, whose state/ the jobs go to (default: $ATLANTIS_OUTPUT_DIR or outputs)",
    )
    args = parser.parse_args(argv)
    if not args.runs.is_dir():
        parser.error(f"{args.runs}: no such folder of kept runs")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    counts = restore_completed(args.runs, args.output_dir)
    print(
        f"{args.runs}: {counts['restored']} completed jobs restored into {args.output_dir / 'state'}, "
        f"{counts['present']} there already; {counts['unkeyed']} without recorded settings and {counts['moved']} "
        "naming files not on this machine (these run again)"
    )
    return counts


if __name__ == "__main__":
    main()
