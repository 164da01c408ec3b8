"""Peak memory of scoring against the number of examples: each size runs in a fresh process, and the
increase over the process's memory before scoring (model and tokenised data loaded) is reported.

    python -m benchmarks.scoring_memory [--sizes 128 512 2048]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from benchmarks.common import RESULTS, merge_results, parse_sized

CHILD = """
import json, sys, torch
from benchmarks.common import datamodule, peak_rss_mb, reset_peak_rss, tokenizer_and_examples
from atlantis.models.loading import tiny_model
from atlantis.signals.scoring import score_features
n = int(sys.argv[1])
tok, splits, data = tokenizer_and_examples(n)
features = datamodule(tok, splits).features["train"]
sizes = dict(hidden_size=256, intermediate_size=512, num_layers=4, num_heads=4, num_kv_heads=2)
model = tiny_model("causal", len(tok), tok.pad_token_id, tok.eos_token_id, **sizes)
reset_peak_rss()
before = peak_rss_mb()  # model and tokenised data loaded: the high-water mark restarts here
score_features(model, "causal", features, tok.pad_token_id, "sum", batch_size=16, desc="memory")
print(json.dumps({"n": len(features), "peak_rss_mb": peak_rss_mb(), "before_mb": before, "data": data}))
"""


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 512, 2048])
    args = parse_sized(parser, argv, sizes=[16])
    rows = []
    for n in args.sizes:
        out = subprocess.run([sys.executable, "-c", CHILD, str(n)], capture_output=True, text=True, check=True)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        row["scoring_increase_mb"] = row["peak_rss_mb"] - row["before_mb"]
        rows.append(row)
        print(
            f"scoring {row['n']:>5} examples: peak RSS {row['peak_rss_mb']:.0f} MB "
            f"({row['scoring_increase_mb']:+.0f} MB over the loaded model and data)"
        )
    result = {
        "what": "peak RSS of scoring (tiny causal model, batch 16), fresh process per size",
        "scoring_peak_rss_mb": {str(r["n"]): r["peak_rss_mb"] for r in rows},
        "runs": rows,
    }
    merge_results(RESULTS / "cpu.json", "memory", result)
    return result


if __name__ == "__main__":
    main()
