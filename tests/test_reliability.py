"""Sweeps that survive what real sweeps meet: a failing job, a killed job, a rerun."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO, step_losses

DEMO = ["experiment=demo", "dataset.reader.sizes=[200,40,40]", "trainer.enable_progress_bar=false"]


def env_for(tmp_path):
    return dict(os.environ, ATLANTIS_OUTPUT_DIR=str(tmp_path / "out"), ATLANTIS_CACHE_DIR=str(tmp_path / "cache"))


@pytest.mark.slow
def test_a_failing_job_does_not_stop_the_sweep(tmp_path):
    # noise_kind=file with a missing predictions file fails one job; the other runs to the end.
    (tmp_path / "weak.jsonl").write_text('{"id": "train-0", "label": "Other"}\n')
    command = [
        sys.executable,
        "run.py",
        "-m",
        *DEMO,
        "trainer.max_epochs=1",
        "noise_kind=file",
        f"noise_kind.predictions_file={tmp_path / 'missing.jsonl'},{tmp_path / 'weak.jsonl'}",
    ]
    result = subprocess.run(command, cwd=REPO, env=env_for(tmp_path), capture_output=True, text=True)
    assert result.returncode != 0
    (sweep,) = (tmp_path / "out" / "multiruns").glob("*/*")
    summary = json.loads((sweep / "summary.json").read_text())
    assert summary["counts"] == {"done": 1, "skipped": 0, "failed": 1, "incomplete": 0}
    failed = next(sweep / j["job"] for j in summary["jobs"] if j["status"] == "failed")
    failure = json.loads((failed / "failure.json").read_text())
    assert "weak-label predictions file not found" in failure["error"] and "Traceback" in failure["traceback"]
    assert "multirun summary" in result.stdout and "1 done" in result.stdout and "1 failed" in result.stdout


@pytest.mark.slow
def test_killed_training_resumes_and_a_finished_job_is_skipped(tmp_path):
    command = [sys.executable, "run.py", *DEMO, "trainer.max_epochs=4", "seed=3"]
    env = env_for(tmp_path)
    proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    last = None
    while time.time() < deadline and proc.poll() is None:
        found = list((tmp_path / "out" / "state").glob("*/checkpoints/last.ckpt"))
        if found:
            last = found[0]
            break
        time.sleep(0.1)
    assert last is not None, "no last.ckpt was written"
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not list((tmp_path / "out" / "state").glob("*/metrics.json")), "the job finished before it was killed"

    # verbose: Lightning's own restore line, which the console drops otherwise (the pipeline names the file)
    resumed = subprocess.run([*command, "verbose=true"], cwd=REPO, env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    output = resumed.stdout + resumed.stderr
    assert f"resuming interrupted training from {last}" in output
    assert f"Restoring states from the checkpoint path at {last}" in output
    runs = sorted((tmp_path / "out" / "runs").glob("*/*"))
    metrics = json.loads((runs[-1] / "metrics.json").read_text())
    assert len(metrics["val/history"]) == 4 and [h["epoch"] for h in metrics["val/history"]] == [0, 1, 2, 3]
    # ... and ends as the same job run without a stop (the random states travel in the checkpoint).
    whole = subprocess.run(command, cwd=REPO, env=env_for(tmp_path / "whole"), capture_output=True, text=True)
    assert whole.returncode == 0, whole.stderr[-2000:]
    (whole_run,) = (tmp_path / "whole" / "out" / "runs").glob("*/*")
    uninterrupted = json.loads((whole_run / "metrics.json").read_text())
    assert uninterrupted["val/history"] == metrics["val/history"]
    assert uninterrupted["test/f1_official"] == metrics["test/f1_official"]
    resumed_losses, whole_losses = step_losses(runs[-1]), step_losses(whole_run)
    assert resumed_losses and resumed_losses == {k: v for k, v in whole_losses.items() if k in resumed_losses}

    again = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    assert again.returncode == 0 and "skipping: this job completed earlier" in again.stdout + again.stderr
    skipped = json.loads((sorted((tmp_path / "out" / "runs").glob("*/*"))[-1] / "metrics.json").read_text())
    assert skipped["skipped"]["reason"] == "completed earlier"
    assert skipped["test/f1_official"] == metrics["test/f1_official"]


def test_a_skipped_job_loses_nothing_when_the_first_folder_is_deleted(tmp_path):
    # As a user would: run, delete the first run's folder, run again: the skipped job's folder is complete.
    import shutil

    from atlantis.experiment.pipeline import run_job
    from tests.conftest import job_config
    from tests.methods.test_compose import TINY

    cfg = job_config(
        *TINY, "method=atlantis", "noise=0.3", f"paths.output_dir={tmp_path}", f"paths.cache_dir={tmp_path / 'c'}"
    )
    metrics = run_job(cfg, tmp_path / "first")
    written = sorted(p.name for p in (tmp_path / "first").iterdir() if not p.is_symlink() and p.name != "run.log")
    assert "csv" in written  # a folder too: a rerun into the same sweep folder finds its files linked to the state
    assert run_job(cfg, tmp_path / "first")["skipped"]["reason"] == "completed earlier"
    shutil.rmtree(tmp_path / "first")
    again = run_job(cfg, tmp_path / "second")
    assert again["skipped"]["reason"] == "completed earlier"
    assert sorted(p.name for p in (tmp_path / "second").iterdir()) == written
    assert {"predictions.jsonl", "weights.jsonl", "weights.png", "confusion_matrix.csv"} <= set(written)
    # When even the state's copy is gone, the job runs again instead of leaving metrics only.
    shutil.rmtree(tmp_path / "second")
    shutil.rmtree(next((tmp_path / "state").iterdir()) / "artifacts")
    third = run_job(cfg, tmp_path / "third")
    assert "skipped" not in third and (tmp_path / "third" / "predictions.jsonl").is_file()
    assert third["test/f1_official"] == metrics["test/f1_official"]


def test_cached_frozen_outputs_share_the_job_and_its_references(tmp_path):
    # top_layers.cache_lower changes how fast the same parameters train, not what they become: a job run with it
    # is the job run without it (same key, so skipped), and its cross-fitted references are cache hits.
    from atlantis.experiment.jobs import job_key
    from atlantis.experiment.pipeline import run_job
    from tests.conftest import job_config
    from tests.methods.test_compose import TINY

    common = [*TINY, "model.kind=causal", "method=atlantis_crossfit", "method/params=top_layers"]
    common += ["method.params.n=1", "reference.folds=2", "noise=0.3"]
    common += [f"paths.output_dir={tmp_path}", f"paths.cache_dir={tmp_path / 'c'}"]
    plain, cached = job_config(*common), job_config(*common, "method.params.cache_lower=true")
    assert cached["method"]["params"]["cache_lower"] is True and job_key(plain) == job_key(cached)
    assert job_key(plain) != job_key(job_config(*common[:-2], "method.params.n=2", *common[-2:]))

    first = run_job(plain, tmp_path / "first")
    references = sorted((tmp_path / "c").rglob("references/*"))
    again = run_job(cached, tmp_path / "second")
    assert again["skipped"]["reason"] == "completed earlier"
    assert again["test/f1_official"] == first["test/f1_official"]
    # Another job with cached frozen outputs trains (with them) on the references the plain job made.
    tempered = run_job(
        job_config(*common, "method.params.cache_lower=true", "method.weights.temperature=2.0"), tmp_path / "t"
    )
    assert "skipped" not in tempered and (tmp_path / "t" / "predictions.jsonl").is_file()
    assert len(references) == 2 and sorted((tmp_path / "c").rglob("references/*")) == references


def test_a_reference_can_train_other_parameters_than_the_method(tmp_path):
    # reference.params: a stronger reference (every block) for a method that trains its top block only (unset: the
    # method's policy).
    import json

    import torch
    from transformers import AutoModelForCausalLM

    from atlantis.experiment.jobs import job_key
    from atlantis.experiment.pipeline import run_job
    from tests.conftest import job_config
    from tests.methods.test_compose import TINY

    common = [*TINY, "model.kind=causal", "method=atlantis_crossfit", "method/params=top_layers"]
    common += ["method.params.n=1", "reference.folds=2", "noise=0.3"]
    common += [f"paths.output_dir={tmp_path}", f"paths.cache_dir={tmp_path / 'c'}"]
    default = job_config(*common)
    full = job_config(*common, "reference.params={_target_:atlantis.methods.params.FullParams}")
    assert default["reference"]["params"] is None and job_key(default) != job_key(full)

    run_job(default, tmp_path / "top")
    run_job(full, tmp_path / "full")
    fold0 = {}
    for manifest in (tmp_path / "c").rglob("references/*/manifest.json"):
        spec = json.loads(manifest.read_text())["spec"]
        if spec.get("fold") == 0:
            fold0.setdefault(spec["role"]["training"]["params"]["_target_"].rsplit(".", 1)[-1], []).append(
                manifest.parent
            )
    assert sorted(fold0) == ["FullParams", "TopLayers"] and all(len(v) == 1 for v in fold0.values())
    # Same seed, same start: the lowest block moved only in the reference that trained every parameter.
    top, every = (AutoModelForCausalLM.from_pretrained(fold0[k][0]).state_dict() for k in ("TopLayers", "FullParams"))
    lowest = [name for name in top if ".layers.0." in name]
    assert lowest and not all(torch.equal(top[name], every[name]) for name in lowest)


def test_a_completed_job_keeps_the_checkpoints_it_is_told_to(tmp_path):

    from tests.methods.test_compose import run_tiny

    def kept(keep):
        run_tiny(tmp_path / keep, f"keep_checkpoints={keep}", "trainer.max_steps=-1")  # an epoch: validated
        (state,) = (tmp_path / keep / "state").iterdir()
        return sorted(p.name.split("-")[0].removesuffix(".ckpt") for p in (state / "checkpoints").glob("*.ckpt"))

    assert kept("all") == ["best", "last"]
    assert kept("best") == ["best"]  # the default: last.ckpt only serves resuming
    assert kept("none") == []
    # A rerun skips the finished job with everything it wrote, and applies its own keep_checkpoints.
    again, run_dir = run_tiny(tmp_path / "all", "keep_checkpoints=none", "trainer.max_steps=-1")
    assert again["skipped"]["reason"] == "completed earlier" and (run_dir / "predictions.jsonl").is_file()
    assert not list((tmp_path / "all" / "state").glob("*/checkpoints/*.ckpt"))  # the skip applied the new setting
    with pytest.raises(ValueError, match="keep_checkpoints must be one of"):
        run_tiny(tmp_path / "typo", "keep_checkpoints=last")
    assert not (tmp_path / "typo" / "state").exists()  # refused before anything ran


@pytest.mark.slow
def test_two_command_lines_into_one_sweep_folder_keep_both_jobs(tmp_path):
    # one option apart, the same job number and name: the second line's job gets the folder, the first's outputs
    # move beside it (the report reads folders: before, it saw the second job only)
    sweep = tmp_path / "sweep"
    line = [sys.executable, "run.py", "-m", *DEMO, "trainer.max_epochs=1", f"hydra.sweep.dir={sweep}"]
    for lr in ("1e-3", "2e-3"):
        result = subprocess.run([*line, f"trainer.lr={lr}"], cwd=REPO, env=env_for(tmp_path), capture_output=True)
        assert result.returncode == 0, result.stderr[-3000:]
    folders = sorted(p.parent for p in sweep.rglob("metrics.json"))
    assert [f.name.split("~")[0] for f in folders] == [folders[0].name] * 2
    settings = [json.loads((f / "metrics.json").read_text())["settings"] for f in folders]
    assert sorted(s["trainer"]["lr"] for s in settings) == [0.001, 0.002]
    assert json.loads((folders[0] / "metrics.json").read_text())["settings"]["trainer"]["lr"] == 0.002  # the last
    assert (folders[1] / "predictions.jsonl").is_file()  # the first job's outputs moved whole
