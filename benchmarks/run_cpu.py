"""`make bench`: every CPU benchmark, then the summary table and benchmarks/results/cpu.json."""

from __future__ import annotations

import argparse
import json

from benchmarks import label_scoring_speed, scoring_memory, scoring_speed, step_overhead
from benchmarks.common import RESULTS, merge_results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", nargs="*", default=None, help="re-run some of: scoring labels overhead memory")
    parser.add_argument("--toy", action="store_true", help="every part at its smallest size (not a measurement)")
    args = parser.parse_args(argv)
    toy = ["--toy"] if args.toy else []
    stored = json.loads((RESULTS / "cpu.json").read_text()) if (RESULTS / "cpu.json").is_file() else {}
    parts = set(args.only or ["scoring", "labels", "overhead", "memory"])
    scoring = scoring_speed.main(toy) if "scoring" in parts else stored["scoring"]
    labels = label_scoring_speed.main(toy) if "labels" in parts else stored["label_scoring"]
    overhead = step_overhead.main(toy) if "overhead" in parts else stored["step_overhead_detail"]
    memory = scoring_memory.main(toy) if "memory" in parts else stored["memory"]
    summary = {
        "scoring_speedup": scoring["speedup"],
        "label_scoring_speedup": labels["speedup"],
        "step_overhead": overhead["ratio_max"],
        "scoring_peak_rss_mb": memory["scoring_peak_rss_mb"],
    }
    for key, value in summary.items():
        merge_results(RESULTS / "cpu.json", key, value)
    rows = [
        ("scoring_speedup", f"{scoring['speedup']:.1f}x", ">= 5x", f"max |diff| {scoring['max_abs_diff']:.1e}"),
        ("label_scoring_speedup", f"{labels['speedup']:.1f}x", ">= 4x", f"max |diff| {labels['max_abs_diff']:.1e}"),
        ("step_overhead", f"{overhead['ratio_max']:.3f}", "<= 1.05", "Lightning / bare loop, worst model"),
        (
            "scoring_peak_rss_mb",
            json.dumps({k: round(v) for k, v in memory["scoring_peak_rss_mb"].items()}),
            "flat",
            "by N",
        ),
    ]
    print(f"\n{'figure':<24} {'measured':<28} {'goal':<8} note")
    for row in rows:
        print(f"{row[0]:<24} {row[1]:<28} {row[2]:<8} {row[3]}")


if __name__ == "__main__":
    main()
