"""`python -m atlantis.report DIR`: tables and a plot from every metrics.json under a (multi)run folder."""

from __future__ import annotations

import argparse
import sys

from atlantis.methods.method import BASELINE
from atlantis.report.aggregate import write_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dir", help="a multirun folder (searched recursively for metrics.json)")
    parser.add_argument("--metric", default="test/f1_official", help="the score to tabulate and plot")
    parser.add_argument("--out", default=None, help="output folder (default: DIR)")
    parser.add_argument("--baseline", default=BASELINE, help="method the others are compared with")
    args = parser.parse_args(argv)
    paths = write_report(args.dir, args.metric, args.out, args.baseline)
    for path in paths.values():
        print(path)
    print(paths["markdown"].read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
