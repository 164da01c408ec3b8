"""The line users type: `python run.py -m noise=0.2,0.5 method=sft,atlantis` (with the offline demo)."""

import json
import os
import subprocess
import sys

import pandas as pd

from tests.conftest import REPO


def test_multirun_four_jobs_and_report(tmp_path):
    env = dict(os.environ, ATLANTIS_OUTPUT_DIR=str(tmp_path / "out"), ATLANTIS_CACHE_DIR=str(tmp_path / "cache"))
    command = [sys.executable, "run.py", "-m", "noise=0.2,0.5", "method=sft,atlantis", "experiment=demo"]
    small = ["dataset.reader.sizes=[200,40,40]", "trainer.max_epochs=2", "trainer.enable_progress_bar=false"]
    small.append("logger=wandb")  # no key, no network: offline, one W&B run per job
    env.pop("WANDB_API_KEY", None)
    env.pop("WANDB_MODE", None)
    result = subprocess.run(command + small, cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = (tmp_path / "out" / "multiruns").glob("*/*")
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert len(jobs) == 4
    configs = []
    for job in jobs:
        metrics = json.loads((job / "metrics.json").read_text())
        configs.append((metrics["config"]["method"], metrics["config"]["noise"]))
        if metrics["config"]["method"] == "atlantis":
            assert (job / "weights.json").is_file() and (job / "weights.png").is_file()
    assert sorted(configs) == [("atlantis", 0.2), ("atlantis", 0.5), ("sft", 0.2), ("sft", 0.5)]
    wandb_runs = [list((job / "wandb").glob("offline-run-*")) for job in jobs]
    assert all(len(runs) == 1 for runs in wandb_runs), wandb_runs
    assert len({runs[0].name for runs in wandb_runs}) == 4
    report = subprocess.run(
        [sys.executable, "-m", "atlantis.report", str(sweep)], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert "| atlantis |" in report.stdout
    table = pd.read_csv(sweep / "report.csv")
    assert len(table) == 4
    assert table.loc[table.method == "atlantis", "minus_sft"].notna().all()
    assert (sweep / "report.png").stat().st_size > 1000
