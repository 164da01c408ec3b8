"""The line users type: `python run.py -m noise=0.2,0.5 method=sft,atlantis` (with the offline demo)."""

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from tests.conftest import REPO
from tests.wandb_records import offline_run, run_contents


def test_the_users_line_runs_four_jobs_and_reports_them(tmp_path):
    """The exact line, at toy size (the slow test below adds W&B and a rerun)."""
    env = dict(os.environ, ATLANTIS_OUTPUT_DIR=str(tmp_path / "out"), ATLANTIS_CACHE_DIR=str(tmp_path / "cache"))
    command = [sys.executable, "run.py", "-m", "noise=0.2,0.5", "method=sft,atlantis"]
    toy = ["experiment=demo", "dataset.reader.sizes=[40,10,10]", "trainer.max_epochs=1"]
    result = subprocess.run(command + toy, cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = (tmp_path / "out" / "multiruns").glob("*/*")
    methods = sorted(
        (m["config"]["method"], m["config"]["noise"])
        for m in (json.loads(p.read_text()) for p in sweep.glob("*/metrics.json"))
    )
    assert methods == [("atlantis", 0.2), ("atlantis", 0.5), ("sft", 0.2), ("sft", 0.5)]
    assert len(pd.read_csv(sweep / "report.csv")) == 4


@pytest.mark.slow
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
    jobs = sorted(p for p in sweep.iterdir() if (p / ".hydra").is_dir())  # not wandb/: the report run
    assert len(jobs) == 4
    configs = []
    for job in jobs:
        metrics = json.loads((job / "metrics.json").read_text())
        configs.append((metrics["config"]["method"], metrics["config"]["noise"]))
        if metrics["config"]["method"] == "atlantis":
            assert (job / "weights.json").is_file() and (job / "weights.png").is_file()
    assert sorted(configs) == [("atlantis", 0.2), ("atlantis", 0.5), ("sft", 0.2), ("sft", 0.5)]
    check_wandb_runs(sweep, jobs)
    report = subprocess.run(
        [sys.executable, "-m", "atlantis.report", str(sweep)], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert "| atlantis |" in report.stdout
    table = pd.read_csv(sweep / "report.csv")
    assert len(table) == 4
    assert table.loc[table.method == "atlantis", "minus_sft"].notna().all()
    assert (sweep / "report.png").stat().st_size > 1000

    # the same sweep again: every job is restored from its state, and each still reaches W&B as the same run
    again = subprocess.run(command + small, cwd=REPO, env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-3000:]
    first_ids = {offline_run(job)["id"] for job in jobs}
    (rerun,) = set((tmp_path / "out" / "multiruns").glob("*/*")) - {sweep}
    restored = [offline_run(job) for job in sorted(p for p in rerun.iterdir() if (p / "metrics.json").is_file())]
    assert {run["id"] for run in restored} == first_ids  # resumed by the job key, not four new runs
    for run in restored:
        assert run["group"] == rerun.parent.name + "_" + rerun.name
        assert "test/f1_official" in run["summary"] and "test/predictions/nrows" in run["summary"]
        assert "val/f1" not in run["history_keys"]  # its curve was logged when it trained: not twice


def check_wandb_runs(sweep, jobs):
    """One offline W&B run per job, grouped by the multirun, with what a dashboard reads; one report run."""
    runs = [offline_run(job) for job in jobs]
    assert len({run["id"] for run in runs}) == 4
    group = sweep.parent.name + "_" + sweep.name
    for job, run in zip(jobs, runs):
        metrics = json.loads((job / "metrics.json").read_text())
        method, noise = metrics["config"]["method"], metrics["config"]["noise"]
        assert (run["group"], run["job_type"], run["name"]) == (group, method, job.name)
        config = run["config"]
        assert (config["dataset"], config["model"], config["method"], config["noise"], config["seed"]) == (
            "synthetic", "tiny", method, noise, 0
        )  # fmt: skip
        assert config["cfg"]["method"]["name"] == method  # the full resolved config beside the flat keys
        summary = run["summary"]
        assert summary["test/f1_official"] == metrics["test/f1_official"]
        assert summary[f"by_noise/{noise}/test_f1_official"] == metrics["test/f1_official"]
        assert summary["test/per_class/_type"] == "table-file"
        assert summary["test/predictions/nrows"] == metrics["data"]["test"]["n_kept"]
        assert summary["test/confusion_matrix_table/_type"] == "table-file"
        assert "val/f1" in run["history_keys"] and "epoch" in run["history_keys"]
        if method == "atlantis":
            assert "weights_per_class" in config  # every weight option is a flat key
            assert summary["weights/log10_clean/_type"] == "histogram"
            assert summary["weights/log10_corrupted/_type"] == "histogram"
            assert summary["weights/per_class_mass/_type"] == "table-file"
            assert summary["weights/ess_fraction"] == metrics["weights"]["ess_fraction"]
            assert summary["weights/auroc_clean_vs_noisy"] == metrics["weights"]["auroc_clean_vs_noisy"]
    (report_file,) = sweep.glob("wandb/offline-run-*/run-*.wandb")
    report_run = run_contents(report_file)
    assert (report_run["group"], report_run["job_type"]) == (group, "report")
    assert report_run["summary"]["report/table/nrows"] == len(pd.read_csv(sweep / "report.csv"))
    assert report_run["summary"]["report/plot/_type"] == "image-file"

    dry = subprocess.run(
        [sys.executable, "-m", "atlantis.report.wandb", "--entity", "e", "--project", "p", "--sweep", str(sweep),
         "--dry-run"], cwd=REPO, capture_output=True, text=True, check=True,
    )  # fmt: skip
    spec = json.loads(dry.stdout)
    assert spec["filter"] == {"group": group} and spec["groupby"] == ["method"]
    panels = [p for section in spec["sections"] for p in section["panels"]]
    metrics_shown = {m for p in panels for m in p.get("metrics", []) + p.get("y", [])}
    assert {"by_noise/0.2/test_f1_official", "by_noise/0.5/test_f1_official", "val/f1", "weights/ess_fraction",
            "weights/auroc_clean_vs_noisy"} <= metrics_shown  # fmt: skip
    assert all(p["groupby"] == "method" for p in panels if p["type"] in ("bar", "line"))
    assert {p.get("key") for p in panels} >= {"report/table", "report/plot"}
