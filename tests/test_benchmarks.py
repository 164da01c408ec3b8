"""Every benchmark script runs at its smallest size (`--toy`) and writes the figures its full run records.

A toy run is no measurement (tiny shapes, a handful of examples): this checks that `make bench` and each
script's documented command still work, not their numbers. Results go to a temporary folder
($ATLANTIS_BENCH_RESULTS_DIR), never to benchmarks/results.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from tests.conftest import REPO

FETCHED = os.environ.get("ATLANTIS_FETCHED_MODELS_DIR", str(REPO / "models"))
GEMMA = os.path.join(FETCHED, "gemma-3-270m", "gemma-3-270m-q4_k_m.gguf")
SMOLLM2 = os.path.join(os.environ.get("ATLANTIS_MODELS_DIR", "-"), "smollm2-135m-instruct-gguf")
REDOCRED = os.path.join(os.environ.get("ATLANTIS_DATA_DIR", "-"), "redocred")

# script -> (its entry in cpu.json, keys the entry must have), marks
SCRIPTS = [
    ("scoring_speed", "scoring", {"speedup", "max_abs_diff", "baseline_s", "ours_s"}, []),
    ("label_scoring_speed", "label_scoring", {"speedup", "max_abs_diff", "n_labels"}, []),
    ("scoring_memory", "memory", {"scoring_peak_rss_mb", "runs"}, []),
    ("padding_waste", "padding_waste", {"batch_size", "data"}, []),
    ("fisher_selection", "fisher", {"budget", "subset"}, []),
    ("step_overhead", "step_overhead_detail", {"ratio_max"}, []),
    ("parallel_jobs", "parallel_jobs_toy", {"layouts", "side_by_side_over_one_job"}, []),
    ("run_cpu", "scoring_speedup", None, [pytest.mark.slow]),  # the four above again, then the summary
    ("ddp_cpu", "ddp_cpu_causal", {"identical_scores", "wall_ratio_two_over_one", "one_process"}, [pytest.mark.slow]),
    ("docred_pairs", "docred_pairs", {"device", "batch_size", "speedup"}, [pytest.mark.slow, pytest.mark.skipif(
        not (os.path.isdir(SMOLLM2) and os.path.isdir(REDOCRED)),
        reason="needs SmolLM2 and Re-DocRED: ATLANTIS_MODELS_DIR and ATLANTIS_DATA_DIR (../shared)")]),
    ("params_step", "params_step", {"steps", "batch_size"}, [pytest.mark.slow]),
    ("gemma_step", "gemma_step", None, [pytest.mark.slow, pytest.mark.skipif(
        not os.path.isfile(GEMMA), reason=f"needs Gemma-3-270M at {GEMMA}: run `make models`")]),
]  # fmt: skip


def run_script(name: str, tmp_path, *extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, ATLANTIS_BENCH_RESULTS_DIR=str(tmp_path), ATLANTIS_CACHE_DIR=str(tmp_path / "cache"))
    command = [sys.executable, "-m", f"benchmarks.{name}", "--toy", *extra]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{' '.join(command)}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.mark.parametrize(
    "name,entry,keys,own_process",
    [pytest.param(n, e, k, any(x.name == "slow" for x in m), marks=m, id=n) for n, e, k, m in SCRIPTS],
)  # fmt: skip
def test_benchmark_runs_at_toy_size(name, entry, keys, own_process, tmp_path, monkeypatch):
    if own_process:
        run_script(name, tmp_path)  # the slow ones in their own process, as `python -m benchmarks.<name>` runs
    else:  # in this process: the libraries are imported already (seconds, not a process start)
        import importlib

        from benchmarks import common

        monkeypatch.setenv("ATLANTIS_BENCH_RESULTS_DIR", str(tmp_path))
        monkeypatch.setitem(common.TOY, "on", False)
        importlib.import_module(f"benchmarks.{name}").main(["--toy"])
    results = json.loads((tmp_path / "cpu.json").read_text())
    assert entry in results and "machine" in results
    if keys:
        assert keys <= set(results[entry]), sorted(results[entry])


@pytest.mark.slow
def test_gpu_check_runs_its_cpu_smoke(tmp_path):
    run_script("gpu_check", tmp_path, "--strategies", "none", "--out", str(tmp_path / "gpu_check.json"))
    assert json.loads((tmp_path / "gpu_check.json").read_text())


@pytest.mark.skipif(
    not torch.cuda.is_available(), reason="benchmarks/gpu_throughput.py times CUDA kernels: needs a GPU"
)
def test_gpu_throughput_runs_at_toy_size(tmp_path):
    run_script("gpu_throughput", tmp_path, "--only", "train", "--out", str(tmp_path / "gpu.json"))
    assert json.loads((tmp_path / "gpu.json").read_text())


def test_a_toy_run_never_writes_the_committed_results(monkeypatch, capsys):
    from benchmarks import common, padding_waste

    committed = REPO / "benchmarks" / "results" / "cpu.json"
    before = committed.read_bytes() if committed.is_file() else None
    monkeypatch.delenv("ATLANTIS_BENCH_RESULTS_DIR", raising=False)
    monkeypatch.setitem(common.TOY, "on", False)
    padding_waste.main(["--toy"])
    assert "not written" in capsys.readouterr().out
    assert (committed.read_bytes() if committed.is_file() else None) == before
