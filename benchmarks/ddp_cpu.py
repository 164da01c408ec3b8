"""One demo job on 1 and on 2 CPU processes (DDP over gloo): the same numbers, and the wall time of each.

python -m benchmarks.ddp_cpu [--kind causal] [--epochs 8] [--threads 1]

Each run is the user's command line (`python run.py experiment=demo ... strategy=ddp trainer.devices=N`) in a
fresh output folder, timed from start to exit (model init, signals, training, test). Every process gets
`--threads` torch threads, so on a 2-core machine 2 processes of 1 thread use what 1 process of 2 threads would.
The causal tiny pair has no dropout: its two runs should agree to the last digit; seq2seq (T5) has dropout,
drawn per process, so its runs agree in distribution only.
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

from benchmarks.common import RESULTS, merge_results, parse_sized

REPO = Path(__file__).resolve().parents[1]
SCORES = ("test/f1_official", "test/f1_macro", "val/best_f1", "test/checkpoint")


def run(devices: int, kind: str, epochs: int, threads: int, out: Path) -> dict:
    folder = out / f"devices{devices}"
    command = [
        sys.executable, "run.py", "experiment=demo", f"model.kind={kind}", "noise=0.2", "method=atlantis",
        f"trainer.max_epochs={epochs}", "trainer.accelerator=cpu", f"trainer.devices={devices}",
        "trainer.enable_progress_bar=false", f"paths.output_dir={folder}", f"paths.cache_dir={folder / 'cache'}",
        f"hydra.run.dir={folder / 'run'}", *(["strategy=ddp"] if devices > 1 else []),
    ]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    start = time.perf_counter()
    subprocess.run(command, cwd=REPO, env=env, check=True, capture_output=True)
    seconds = time.perf_counter() - start
    metrics = json.loads((folder / "run" / "metrics.json").read_text())
    return {"seconds": round(seconds, 1), "phases": metrics["run"]["seconds"], **{k: metrics[k] for k in SCORES}}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kind", default="causal", choices=["causal", "seq2seq"])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    args = parse_sized(parser, argv, epochs=1)
    with tempfile.TemporaryDirectory() as tmp:
        one = run(1, args.kind, args.epochs, args.threads, Path(tmp))
        two = run(2, args.kind, args.epochs, args.threads, Path(tmp))
    same = all(one[k] == two[k] for k in SCORES)
    out = {
        "what": f"demo job (tiny {args.kind} pair, noise 0.2, atlantis, {args.epochs} epochs) on 1 vs 2 CPU processes",
        "threads_per_process": args.threads,
        "cpus": os.cpu_count(),
        "one_process": one,
        "two_processes": two,
        "wall_ratio_two_over_one": round(two["seconds"] / one["seconds"], 2),
        "identical_scores": same,
    }
    print(f"{out['what']}, {args.threads} thread(s) per process, {os.cpu_count()} CPUs")
    print(f"{'':>12} {'wall s':>7} {'fit s':>6} " + " ".join(f"{k:>17}" for k in SCORES))
    for name, r in (("1 process", one), ("2 processes", two)):
        cells = " ".join(f"{r[k]!s:>17}"[:17] for k in SCORES)
        print(f"{name:>12} {r['seconds']:>7} {r['phases'].get('fit', 0):>6} {cells}")
    print(f"2 / 1 wall time: {out['wall_ratio_two_over_one']}; scores identical: {same}")
    merge_results(RESULTS / "cpu.json", f"ddp_cpu_{args.kind}", out)
    return out


if __name__ == "__main__":
    main()
