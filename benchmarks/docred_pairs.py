"""Re-DocRED test pass: pairs scored per second over the 97 labels, with the document prefix encoded once per
batch (the default) and with every prompt encoded whole, and the peak memory of each; each variant runs in its
own process. SmolLM2-135M at its real shape (the real weights when $ATLANTIS_MODELS_DIR has them), float32.

    python -m benchmarks.docred_pairs [--docs 1] [--pairs 128] [--whole-pairs 64] [--batch-size 32] [--device cpu]

Each variant scores the first pairs of the first test document(s) (`--pairs`, `--whole-pairs`; 0: all of them);
pairs/s compare. The candidate stage dominates: 97 labels are 206 SmolLM2 tokens after every prompt.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from benchmarks.common import RESULTS, machine, merge_results, parse_sized

CHILD = """
import json, sys, time, torch
from benchmarks.common import peak_rss_mb, reset_peak_rss
from benchmarks.docred_pairs import setup
from atlantis.models import decoding
docs, limit, batch_size, shared, device = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1", sys.argv[5]
model, features, candidates, collate, pad_id, what = setup(docs, device)
features = features[:limit] if limit else features
if not shared:
    decoding.MIN_SHARED_PREFIX = 10**9
reset_peak_rss()
before = peak_rss_mb()
start = time.perf_counter()
with torch.no_grad():
    for i in range(0, len(features), batch_size):
        batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in collate(features[i : i + batch_size]).items()}
        decoding.score_candidates(model, "causal", batch, candidates, pad_id)
if device == "cuda":
    torch.cuda.synchronize()
seconds = time.perf_counter() - start
peak_gpu = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None
tokens = sum(len(f["prompt_ids"]) for f in features) / len(features)
print(json.dumps({"pairs": len(features), "seconds": seconds, "pairs_per_s": len(features) / seconds,
                  "peak_rss_mb": peak_rss_mb(), "before_mb": before, "peak_gpu_mb": peak_gpu,
                  "mean_prompt_tokens": tokens, "model": what}))
"""


def setup(n_docs: int, device: str = "cpu"):
    """(model, test features of the first n_docs test documents, label ids, collator, pad id, model description)."""
    from pathlib import Path

    from atlantis.data.datamodule import Collator, RelationDataModule
    from atlantis.data.redocred import ReDocREDReader
    from atlantis.data.splits import build_splits
    from atlantis.data.tokenization import target_ids
    from atlantis.models.loading import build_model, load_tokenizer
    from benchmarks.common import build_shape

    models = Path(os.environ.get("ATLANTIS_MODELS_DIR", "-")) / "smollm2-135m-instruct-gguf"
    if not models.is_dir():
        raise SystemExit("needs the SmolLM2 tokenizer: set ATLANTIS_MODELS_DIR (and ATLANTIS_DATA_DIR for Re-DocRED)")
    tokenizer = load_tokenizer(str(models))
    splits = build_splits(ReDocREDReader(max_docs=max(n_docs, 2)), seed=0)
    splits.test = [e for e in splits.test if int(e.id.split(":")[0].removeprefix("test")) < n_docs]
    template = "{sentence}\nHead: {head}. Tail: {tail}.\nRelation:"
    dm = RelationDataModule(splits, tokenizer, "causal", max_length=1024, max_target_length=24, prompt_template=template,
                            use_chat_template=False)  # fmt: skip
    dm.setup()
    candidates = [target_ids(tokenizer, dm.builder, label) for label in dm.labels]
    gguf = models / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if gguf.is_file():
        spec = {"name_or_path": str(models), "gguf_file": gguf.name}
        model = build_model(spec, "causal", len(tokenizer), tokenizer.pad_token_id, tokenizer.eos_token_id, None)
        what = "SmolLM2-135M-Instruct (real weights)"
    else:
        model, what = build_shape("smollm2-135m"), "SmolLM2-135M shape (random weights)"
    return model.to(device).eval(), dm.features["test"], candidates, Collator(tokenizer.pad_token_id, "causal"), \
        tokenizer.pad_token_id, what  # fmt: skip


def run_child(docs: int, limit: int, batch_size: int, shared: bool, device: str) -> dict:
    args = [str(docs), str(limit), str(batch_size), "1" if shared else "0", device]
    out = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=1)
    parser.add_argument("--pairs", type=int, default=128)
    parser.add_argument("--whole-pairs", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    args = parse_sized(parser, argv, pairs=4, whole_pairs=2, batch_size=2)
    shared = run_child(args.docs, args.pairs, args.batch_size, True, args.device)
    whole = run_child(args.docs, args.whole_pairs, args.batch_size, False, args.device)
    result = {
        "what": "Re-DocRED test pairs scored over 97 labels (label_scoring, chunked candidate stage)",
        "machine": machine(),
        "device": args.device,
        "batch_size": args.batch_size,
        "shared_prefix": shared,
        "whole_prompts": whole,
        "speedup": shared["pairs_per_s"] / whole["pairs_per_s"],
        "test_pass_hours_at_this_rate": 198_670 / shared["pairs_per_s"] / 3600,
    }
    print(
        f"Re-DocRED, {shared['model']}, {args.device}: document prefix once {shared['pairs_per_s']:.2f} pairs/s "
        f"({shared['pairs']} pairs, peak RSS {shared['peak_rss_mb']:.0f} MB), whole prompts "
        f"{whole['pairs_per_s']:.2f} pairs/s ({whole['pairs']} pairs, peak {whole['peak_rss_mb']:.0f} MB) -> "
        f"{result['speedup']:.1f}x; the 198,670-pair test pass: {result['test_pass_hours_at_this_rate']:.1f} h"
    )
    merge_results(RESULTS / ("gpu.json" if args.device == "cuda" else "cpu.json"), "docred_pairs", result)
    return result


if __name__ == "__main__":
    main()
