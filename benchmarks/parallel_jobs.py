"""How to spend the cores: one job with every thread, or several jobs at once with fewer threads each.

    python -m benchmarks.parallel_jobs [--model gemma3|smollm2] [--steps 6] [--batch-size 8] [--score-n 32]

A study on this machine is a queue of independent jobs (a Hydra multirun), each a training run then a test pass.
Whether two of them should run side by side (`launcher=joblib launcher.n_jobs=2`, one torch thread each) or one
after another with both threads is a question of how well torch's CPU kernels scale with threads at these shapes,
so it is measured, not assumed. Each layout runs the same work in each of its processes, in separate processes
started together (they load the model and take one warm-up step, then start the timed work at the same moment):

- training: `--steps` AdamW steps of the top 8 blocks (as the studies train), logits at the target positions;
- scoring: one no-grad pass over `--score-n` prompts, batch 8 (a test or validation pass, a scoring table).

Layouts: one process with all cores' threads; one process with one thread (alone); N processes with one thread
each, at once. The figure that decides is the throughput (steps, resp. prompts, per minute summed over the
processes) of N one-thread processes against one N-thread process. The load average before is recorded: another
process on these cores skews every number here. Speed does not depend on the weights' values, so `--model`
falls back to random weights at the model's shape where its files are missing (the result says which).

Results: benchmarks/results/cpu.json, key parallel_jobs (parallel_jobs_<model>).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import RESULTS, build_shape, machine, merge_results, parse_sized, peak_rss_mb
from benchmarks.gemma_step import target_logits_nll

TOP_BLOCKS = 8


def load(model_name: str):
    """(model, tokenizer, what it is): the real model where its files are here, else its shape at random."""
    from atlantis.models.loading import load_tokenizer
    from benchmarks.params_step import LOADERS

    if model_name == "toy":
        return build_shape("toy"), load_tokenizer("builtin"), "random weights, toy shape (not a measurement)"
    try:
        return LOADERS[model_name]()
    except SystemExit as missing:  # gemma_dir's "run `make models`"
        if model_name != "gemma3":
            raise
        print(f"{missing}; timing random weights at Gemma-3-270M's shape", flush=True)
        return gemma3_shape(), load_tokenizer("builtin"), "random weights, Gemma-3-270M shape"


def gemma3_shape():
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    config = Gemma3TextConfig(
        vocab_size=262144, hidden_size=640, intermediate_size=2048, num_hidden_layers=18, num_attention_heads=4,
        num_key_value_heads=1, head_dim=256, sliding_window=512, max_position_embeddings=32768,
    )  # fmt: skip
    torch.manual_seed(0)
    return Gemma3ForCausalLM(config).float()


def worker(args) -> None:
    """One process of a layout: load, warm up, say ready, wait for the common start, time, write the times."""
    torch.set_num_threads(args.threads)
    from atlantis.methods.params import freeze_lower_layers
    from benchmarks.params_step import semeval_batches

    out = Path(args.worker)
    model, tokenizer, what = load(args.model)
    n_batches = max(args.steps, -(-args.score_n // args.batch_size))
    batches, _, data = semeval_batches(tokenizer, n_batches, args.batch_size)
    freeze_lower_layers(model, TOP_BLOCKS)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def step(batch) -> None:
        target_logits_nll(model, batch).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    model.train()
    step(batches[0])  # warm-up: first-call allocations and kernel choices are not timed
    (out.parent / f"{out.stem}.ready").touch()
    while not (out.parent / "go").exists():
        time.sleep(0.05)
    start = time.perf_counter()
    for i in range(args.steps):
        step(batches[i % len(batches)])
    train_s = time.perf_counter() - start
    model.eval()
    start = time.perf_counter()
    with torch.no_grad():
        for i in range(0, args.score_n, args.batch_size):
            target_logits_nll(model, batches[(i // args.batch_size) % len(batches)])
    score_s = time.perf_counter() - start
    result = {"train_s": train_s, "score_s": score_s, "what": what, "data": data, "peak_rss_mb": peak_rss_mb()}
    out.write_text(json.dumps(result))


def run_layout(args, processes: int, threads: int, folder: Path) -> dict:
    """`processes` workers of `threads` threads each, their timed work started at the same moment."""
    folder.mkdir()
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    outs = [folder / f"worker{i}.json" for i in range(processes)]
    command = [sys.executable, "-m", "benchmarks.parallel_jobs", "--model", args.model, "--threads", str(threads)]
    command += ["--steps", str(args.steps), "--batch-size", str(args.batch_size), "--score-n", str(args.score_n)]
    children = [subprocess.Popen([*command, "--worker", str(out)], env=env) for out in outs]
    while not all((folder / f"{out.stem}.ready").exists() for out in outs):
        if any(child.poll() not in (None, 0) for child in children):
            raise SystemExit(f"a worker of the layout {processes} x {threads} threads failed")
        time.sleep(0.1)
    (folder / "go").touch()
    if any(child.wait() != 0 for child in children):
        raise SystemExit(f"a worker of the layout {processes} x {threads} threads failed")
    runs = [json.loads(out.read_text()) for out in outs]
    return {
        "processes": processes,
        "threads_each": threads,
        "train_step_s": [r["train_s"] / args.steps for r in runs],
        "score_prompt_s": [r["score_s"] / args.score_n for r in runs],
        # throughput of the layout: every process's work over the slowest one's time
        "train_steps_per_min": 60 * processes * args.steps / max(r["train_s"] for r in runs),
        "score_prompts_per_min": 60 * processes * args.score_n / max(r["score_s"] for r in runs),
        "peak_rss_mb": [r["peak_rss_mb"] for r in runs],
        "what": runs[0]["what"],
        "data": runs[0]["data"],
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", choices=["gemma3", "smollm2", "toy"], default="gemma3")
    parser.add_argument("--steps", type=int, default=6, help="timed training steps per process")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--score-n", type=int, default=32, help="prompts scored per process")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1, help="the side-by-side layout's")
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parse_sized(parser, argv, model="toy", steps=2, batch_size=2, score_n=4, processes=2)
    if args.worker:
        worker(args)
        return {}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="parallel-jobs-") as tmp:
        layouts = {
            "one job, all threads": run_layout(args, 1, args.processes, Path(tmp) / "all"),
            "one job, one thread": run_layout(args, 1, 1, Path(tmp) / "one"),
            f"{args.processes} jobs at once, one thread each": run_layout(args, args.processes, 1, Path(tmp) / "n"),
        }
    one, side = layouts["one job, all threads"], layouts[f"{args.processes} jobs at once, one thread each"]
    result = {
        "what": "throughput of one job with every thread against several one-thread jobs at once",
        "model": one["what"],
        "data": one["data"],
        "shape": {"batch": args.batch_size, "top_blocks_trained": TOP_BLOCKS},
        "steps": args.steps,
        "score_n": args.score_n,
        "layouts": layouts,
        "side_by_side_over_one_job": {
            "training": side["train_steps_per_min"] / one["train_steps_per_min"],
            "scoring": side["score_prompts_per_min"] / one["score_prompts_per_min"],
        },
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "machine": machine(),
    }
    merge_results(RESULTS / "cpu.json", f"parallel_jobs_{args.model}", result)
    print(f"\n{result['model']}, {result['data']}; batch {args.batch_size}, top {TOP_BLOCKS} blocks trained; "
          f"load average {load_before[0]:.2f} before")  # fmt: skip
    print("| layout | training step, s (each process) | training steps / min | scoring prompts / min |")
    print("|---|---:|---:|---:|")
    for name, layout in layouts.items():
        steps = ", ".join(f"{s:.2f}" for s in layout["train_step_s"])
        print(f"| {name} | {steps} | {layout['train_steps_per_min']:.1f} | {layout['score_prompts_per_min']:.1f} |")
    ratio = result["side_by_side_over_one_job"]
    print(f"side by side / one job: training {ratio['training']:.2f}x, scoring {ratio['scoring']:.2f}x")
    return result


if __name__ == "__main__":
    main()
