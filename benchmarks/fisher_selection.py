"""FisherSFT selection speed: 2,000 of SemEval's 8,000 training examples from cached SmolLM2 embeddings.

Embeddings are the real ones (SmolLM2-135M, d = 576, every supervised position) when ../shared is there,
computed once through the signals cache; else random at the same shape (say so). Lazy greedy is timed at
the full size; plain greedy, whose cost is about n·N gain evaluations, is timed on a subset against lazy
greedy on the same subset (same picks, checked), and the full-size plain cost is extrapolated from its
measured evaluations per second.

    python -m benchmarks.fisher_selection            # results -> benchmarks/results/cpu.json ("fisher")
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from atlantis.methods.fisher import greedy_logdet
from benchmarks.common import RESULTS, merge_results, parse_sized

# The short plain prompt of sweeps/smollm2_cpu_study.yaml.
STUDY_PROMPT = "{sentence}\nThe relation between {head} and {tail} is:"


def real_embeddings(n: int) -> list[np.ndarray] | None:
    data_dir, models_dir = os.environ.get("ATLANTIS_DATA_DIR"), os.environ.get("ATLANTIS_MODELS_DIR")
    if not (data_dir and models_dir and (Path(models_dir) / "smollm2-135m-instruct-gguf").is_dir()):
        return None
    from atlantis.data.tokenization import target_ids
    from atlantis.experiment.config import compose_job as job_config
    from atlantis.experiment.pipeline import build_datamodule, build_method, build_signals
    from atlantis.experiment.resolvers import register_resolvers
    from atlantis.models.loading import load_tokenizer

    register_resolvers()
    cfg = job_config(
        "model=smollm2",
        "dataset=semeval",
        "dataset.reader.directed=false",
        "dataset.reader.val_size=1",  # all 8,000 training sentences but one (the reader must carve a validation set)
        f"dataset.max_train_examples={n}",
        "prompt.use_chat_template=false",
        "trainer.eval_batch_size=32",
    )
    cfg["prompt"]["template"] = STUDY_PROMPT
    tokenizer = load_tokenizer(cfg["model"]["tokenizer"])
    dm = build_datamodule(cfg, tokenizer)
    dm.setup()
    cands = [target_ids(tokenizer, dm.builder, label) for label in dm.labels]
    signals = build_signals(cfg, dm, tokenizer, cands, build_method(cfg))
    return signals.embeddings("large", "target")


def random_embeddings(n: int, d: int = 576, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(int(rng.integers(3, 9)), d)).astype(np.float32) for _ in range(n)]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=8000)
    parser.add_argument("--budget", type=int, default=2000)
    parser.add_argument("--plain-n", type=int, default=1000, help="subset size for the plain-greedy timing")
    parser.add_argument("--plain-budget", type=int, default=250)
    parser.add_argument("--random", action="store_true", help="random embeddings even if real ones are available")
    args = parse_sized(parser, argv, n=200, budget=20, plain_n=50, plain_budget=10, random=True)

    start = time.perf_counter()
    blocks = None if args.random else real_embeddings(args.n)
    source = "SmolLM2-135M on SemEval train (target positions)" if blocks is not None else "random, same shape"
    if blocks is None:
        blocks = random_embeddings(args.n)
    embed_seconds = time.perf_counter() - start
    d, m = blocks[0].shape[1], float(np.mean([len(b) for b in blocks]))
    print(
        f"embeddings: {len(blocks)} examples, d = {d}, mean m = {m:.2f} ({source}; {embed_seconds:.0f} s incl. cache)"
    )

    start = time.perf_counter()
    lazy = greedy_logdet(blocks, args.budget, lazy=True)
    lazy_seconds = time.perf_counter() - start
    print(f"lazy greedy {args.budget}/{len(blocks)}: {lazy_seconds:.1f} s, {lazy.evaluations} gain evaluations")

    sub = blocks[: args.plain_n]
    start = time.perf_counter()
    lazy_sub = greedy_logdet(sub, args.plain_budget, lazy=True)
    lazy_sub_seconds = time.perf_counter() - start
    start = time.perf_counter()
    plain_sub = greedy_logdet(sub, args.plain_budget, lazy=False)
    plain_sub_seconds = time.perf_counter() - start
    same = plain_sub.order == lazy_sub.order
    speedup = plain_sub_seconds / lazy_sub_seconds
    per_eval = plain_sub_seconds / plain_sub.evaluations
    plain_full_estimate = per_eval * sum(len(blocks) - i for i in range(args.budget))
    print(
        f"subset {args.plain_budget}/{args.plain_n}: plain {plain_sub_seconds:.1f} s ({plain_sub.evaluations} evals), "
        f"lazy {lazy_sub_seconds:.2f} s ({lazy_sub.evaluations} evals): {speedup:.0f}x, same picks: {same}"
    )
    print(f"plain greedy at {args.budget}/{len(blocks)}, extrapolated: {plain_full_estimate / 60:.0f} min")
    result = {
        "source": source,
        "n": len(blocks),
        "d": d,
        "mean_m": m,
        "budget": args.budget,
        "lazy_seconds": lazy_seconds,
        "lazy_evaluations": lazy.evaluations,
        "subset": {"n": args.plain_n, "budget": args.plain_budget},
        "subset_plain_seconds": plain_sub_seconds,
        "subset_lazy_seconds": lazy_sub_seconds,
        "subset_speedup": speedup,
        "subset_same_picks": same,
        "plain_full_estimate_seconds": plain_full_estimate,
        "goal": "lazy greedy 2000/8000 < 60 s on 2 CPU cores",
    }
    merge_results(RESULTS / "cpu.json", "fisher", result)
    return result


if __name__ == "__main__":
    main()
