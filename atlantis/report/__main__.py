"""`python -m atlantis.report DIR`: tables and a plot from every metrics.json under a (multi)run folder."""

from __future__ import annotations

import argparse
import sys

from atlantis.methods.method import BASELINE
from atlantis.report.aggregate import keep_runs, write_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dir", help="a multirun folder (searched recursively for metrics.json)")
    parser.add_argument("--metric", default="test/f1_official", help="the score to tabulate and plot")
    parser.add_argument("--out", default=None, help="output folder (default: DIR)")
    parser.add_argument("--baseline", default=BASELINE, help="method the others are compared with")
    parser.add_argument(
        "--keep-runs",
        default=None,
        metavar="DEST",
        help="first copy each run's small outputs (metrics, weight diagnostics, predictions) to DEST and report "
        "from there: a folder to commit, from which `python -m atlantis.report DEST` remakes the same tables",
    )
    args = parser.parse_args(argv)
    source = args.dir
    if args.keep_runs:
        print(f"kept {keep_runs(args.dir, args.keep_runs)} runs under {args.keep_runs}")
        source = args.keep_runs
    paths = write_report(source, args.metric, args.out, args.baseline)
    for path in paths.values():
        print(path)
    print(paths["markdown"].read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
