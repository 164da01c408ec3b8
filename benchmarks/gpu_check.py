"""One job of the framework on one GPU with each Lightning strategy (none, ddp, fsdp, deepspeed) at a small real
shape: wall time, test F1, best validation F1, peak GPU memory and how it ended, per strategy.

    python -m benchmarks.gpu_check [--strategies none ddp fsdp deepspeed] [--epochs 2] [--out FILE]
    python -m benchmarks.gpu_check --cpu-smoke     # this CPU: tiny shapes, the strategies that run on a CPU

Each job is `run_job` in this process on the offline demo (`experiment=demo`: the synthetic 5-class task, the
built-in tokenizer, SFT; no network), with the large model of the pair a randomly initialised Qwen2-style decoder
at a small real shape (12 layers, hidden 768, MLP 3072, 12 heads / 4 KV heads: 104 M parameters), bf16-mixed,
on 1 device, 2,000 training examples, 2 epochs at lr 3e-4 with 6 % warm-up (measured on a CPU, fp32: this shape
reaches test F1 1.0 in one epoch of 800 examples; at width 768 the demo's 2e-3 reached 0.92 in 3 epochs, 2 blocks);
it trains, keeps its best checkpoint and tests it, as any job does: a strategy that breaks training scores ~0. Expected on an H200: about 3 minutes for all four. The peak is
torch.cuda.max_memory_allocated, reset before each job (--cpu-smoke: the process's peak RSS, reset the same way
where Linux allows). On one process FSDP runs unsharded (torch switches FULL_SHARD to NO_SHARD at world size 1)
and DDP has nothing to reduce: this checks that each strategy runs the whole job and what it costs on one GPU,
not what sharding saves.

A strategy whose package is missing (deepspeed: `uv sync --extra deepspeed`) is reported 'not installed'; one that
needs CUDA is 'skipped' on a CPU; one that fails is reported with its error and the others still run. Exit status
1 if any strategy that ran failed. Results go to --out (JSON, written after every job) and a table to stdout.

On a machine that has torch, lightning and transformers but not the project's environment, the job also needs
hydra-core, omegaconf and antlr4-python3-runtime on the path (and for DeepSpeed: deepspeed, hjson, pydantic).
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import logging
import os
import shutil
import tempfile
import time
import traceback
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the demo needs no hub; the lent GPU machine reaches none

STRATEGIES = ("none", "ddp", "fsdp", "deepspeed")
NEEDS_CUDA = {"fsdp", "deepspeed"}  # Lightning and torch refuse FSDP on a CPU; Lightning refuses DeepSpeed there
NEEDS_PACKAGE = {"deepspeed": "deepspeed"}

# The large model's shape (conf/config.yaml model_tiny_sizes): 12 layers, hidden 768, as a small real decoder.
REAL_SHAPE = {"hidden_size": 768, "intermediate_size": 3072, "num_layers": 12, "num_heads": 12, "num_kv_heads": 4}
REAL_DATA = (2000, 200, 200)  # synthetic train / validation / test examples: 125 steps an epoch at batch 16
REAL_TRAINER = {"lr": 3.0e-4, "warmup_ratio": 0.06}
SMOKE_DATA = (64, 32, 32)


def job_overrides(args, strategy: str, work: Path) -> list[str]:
    """The job's overrides: the offline demo, a causal pair, this strategy, on one device, in its own folders."""
    sizes = SMOKE_DATA if args.cpu_smoke else REAL_DATA
    overrides = [
        "experiment=demo",
        "model.kind=causal",
        "method=sft",
        f"dataset.reader.sizes=[{','.join(str(n) for n in sizes)}]",
        f"trainer.max_epochs={args.epochs}",
        f"trainer.accelerator={'cpu' if args.cpu_smoke else 'gpu'}",
        "trainer.devices=1",
        "trainer.enable_progress_bar=false",
        f"paths.output_dir={work / strategy / 'outputs'}",
        f"paths.cache_dir={work / 'cache'}",
        "resume=false",
    ]
    if not args.cpu_smoke:
        overrides += [f"model_tiny_sizes.large.causal.{k}={v}" for k, v in REAL_SHAPE.items()]
        overrides += [f"trainer.{k}={v}" for k, v in REAL_TRAINER.items()]
    if args.lr is not None:
        overrides.append(f"trainer.lr={args.lr}")
    if strategy != "none":
        overrides.append(f"strategy={strategy}")
    return overrides


def large_model_params(cfg: dict) -> int:
    """Parameters of the job's large model, built on the meta device (no memory, no time)."""
    import torch

    from atlantis.models.loading import build_model, load_tokenizer

    tokenizer = load_tokenizer(cfg["model"]["tokenizer"])
    with torch.device("meta"):
        model = build_model(
            cfg["model"]["large"], cfg["model"]["kind"], len(tokenizer), tokenizer.pad_token_id, tokenizer.eos_token_id
        )
    return sum(p.numel() for p in model.parameters())


def unavailable(strategy: str, cuda: bool) -> tuple[str, str] | None:
    """(status, why) when this strategy cannot run here, else None."""
    package = NEEDS_PACKAGE.get(strategy)
    if package and importlib.util.find_spec(package) is None:
        return "not installed", f"the {package} package is missing (uv sync --extra {package})"
    if strategy in NEEDS_CUDA and not cuda:
        return "skipped", "needs CUDA"
    return None


def memory_reset(cuda: bool) -> float:
    """Free what the last job left and start a new peak; the memory still held (GiB, or MB of RSS on a CPU)."""
    gc.collect()
    if cuda:
        import torch

        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        return torch.cuda.memory_allocated() / 2**30
    from benchmarks.common import peak_rss_mb, reset_peak_rss

    reset_peak_rss()
    return peak_rss_mb()


def memory_peak(cuda: bool) -> float:
    if cuda:
        import torch

        return torch.cuda.max_memory_allocated() / 2**30
    from benchmarks.common import peak_rss_mb

    return peak_rss_mb()


def run_strategy(args, strategy: str, work: Path, cuda: bool) -> dict:
    from atlantis.experiment.config import compose_job
    from atlantis.experiment.pipeline import run_job

    row = {"strategy": strategy}
    if (why := unavailable(strategy, cuda)) is not None:
        row["status"], row["note"] = why
        return row
    overrides = job_overrides(args, strategy, work)
    row["overrides"] = overrides
    row["memory_before"] = memory_reset(cuda)
    run_dir = work / strategy / "run"
    start = time.perf_counter()
    try:
        cfg = compose_job(*overrides)
        row["params_large"] = large_model_params(cfg)
        metrics = run_job(cfg, run_dir)
        row["status"] = "ok"
    except Exception as err:  # reported, and the next strategy runs
        row["status"] = "failed"
        row["error"] = f"{type(err).__name__}: {err}".strip()
        row["traceback"] = traceback.format_exc()
        traceback.clear_frames(err.__traceback__)  # let go of the job's model before the next one
        metrics = None
        written = run_dir / "metrics.json"
        if written.is_file():  # it failed after writing its metrics (e.g. while pruning checkpoints)
            import json

            metrics = json.loads(written.read_text())
            row["note"] = "failed after writing metrics.json"
    row["wall_s"] = time.perf_counter() - start
    row["memory_peak"] = memory_peak(cuda)
    if metrics is not None:
        row["test/f1_official"] = metrics.get("test/f1_official")
        row["val/best_f1"] = metrics.get("val/best_f1")
        row["test/checkpoint"] = metrics.get("test/checkpoint")
    return row


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("torch", "lightning", "transformers", "deepspeed"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def table(rows: list[dict], cuda: bool) -> str:
    unit = "peak GPU GiB" if cuda else "peak RSS MB"
    spec = ".2f" if cuda else ".0f"
    lines = [
        f"| strategy | status | wall s | test/f1_official | val/best_f1 | {unit} | note |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        note = r.get("error") or r.get("note") or ""
        if r.get("error") and r.get("note"):
            note = f"{r['note']}: {r['error']}"
        note = note.splitlines()[0][:160] if note else ""
        lines.append(
            f"| {r['strategy']} | {r['status']} | {fmt(r.get('wall_s'), '.1f')} | {fmt(r.get('test/f1_official'), '.4f')}"
            f" | {fmt(r.get('val/best_f1'), '.4f')} | {fmt(r.get('memory_peak'), spec)} | {note.replace('|', '/')} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES), help=f"any of {' '.join(STRATEGIES)}")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs of each job (2; --cpu-smoke: 1)")
    parser.add_argument("--lr", type=float, default=None, help="learning rate (3e-4; --cpu-smoke: trainer/tiny's)")
    parser.add_argument("--out", default=None, help="results JSON (benchmarks/results/gpu_check.json, or $OUT/)")
    parser.add_argument(
        "--cpu-smoke", "--toy", action="store_true", help="on this CPU: tiny shapes, 1 epoch, small data"
    )
    parser.add_argument("--keep-work", action="store_true", help="keep the jobs' folders (checkpoints) and say where")
    args = parser.parse_args(argv)
    args.strategies = ["none" if s == "auto" else s for s in args.strategies]
    unknown = sorted(set(args.strategies) - set(STRATEGIES))
    if unknown:
        parser.error(f"unknown strategies {unknown}: choose from {' '.join(STRATEGIES)}")
    if args.epochs is None:
        args.epochs = 1 if args.cpu_smoke else 2
    name = "gpu_check_cpu_smoke.json" if args.cpu_smoke else "gpu_check.json"
    out = Path(args.out or Path(os.environ.get("OUT") or Path(__file__).resolve().parent / "results") / name)

    import torch

    from atlantis.utils.io import atomic_write_json
    from benchmarks.common import machine

    cuda = torch.cuda.is_available() and not args.cpu_smoke
    if not cuda and not args.cpu_smoke:
        raise SystemExit("no GPU here: this check needs CUDA (or run it with --cpu-smoke)")
    for noisy in ("lightning.pytorch", "lightning.fabric", "atlantis"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if cuda:
        ones = torch.ones(256, 256, device="cuda")
        (ones @ ones).sum().item()  # the CUDA context and cuBLAS before the first job, not in its wall time
        del ones

    work = Path(tempfile.mkdtemp(prefix="atlantis-gpu-check-"))
    result = {
        "machine": machine(),
        "versions": versions(),
        "mode": "cpu-smoke" if args.cpu_smoke else "gpu",
        "large_model": None if args.cpu_smoke else dict(REAL_SHAPE, kind="causal (Qwen2)"),
        "trainer": {} if args.cpu_smoke else dict(REAL_TRAINER, **({"lr": args.lr} if args.lr is not None else {})),
        "epochs": args.epochs,
        "data": list(SMOKE_DATA if args.cpu_smoke else REAL_DATA),
        "memory_unit": "GiB allocated (torch.cuda)" if cuda else "MB peak RSS",
        "rows": [],
    }
    start = time.perf_counter()
    try:
        for strategy in args.strategies:
            print(f"\n=== gpu_check: strategy {strategy} ===", flush=True)
            row = run_strategy(args, strategy, work, cuda)
            result["rows"].append(row)
            result["total_s"] = time.perf_counter() - start
            atomic_write_json(out, result)  # after every job: a run cut short keeps what it finished
            summary = {k: row.get(k) for k in ("status", "wall_s", "test/f1_official", "val/best_f1", "memory_peak")}
            print(f"=== gpu_check: {strategy}: {summary} {row.get('error', '')}".rstrip(), flush=True)
    finally:
        if args.keep_work:
            print(f"jobs' folders kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    failed = [r["strategy"] for r in result["rows"] if r["status"] == "failed"]
    for r in result["rows"]:
        if r["status"] == "failed":
            print(f"\n--- {r['strategy']} failed: the traceback's last lines ---")
            print("\n".join(r["traceback"].rstrip().splitlines()[-12:]))
    where = torch.cuda.get_device_name(0) if cuda else "CPU smoke (tiny shapes)"
    print(f"\n{where}, {args.epochs} epoch(s), {result['total_s']:.0f} s in all, {result['versions']}; results: {out}")
    print(table(result["rows"], cuda))  # last: the part of the output a reader sees first
    if failed:
        print(f"FAILED: {' '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
