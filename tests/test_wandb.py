"""W&B without network or key never fails a run."""

import json
import shutil

import wandb

from atlantis.experiment.wandb import (
    RUN_RECORD,
    finish_wandb,
    flat_config,
    log_job_outputs,
    log_restored_job,
    make_wandb_logger,
    run_id,
)
from tests.wandb_records import offline_run

CFG = {
    "logger": {"name": "wandb", "project": "atlantis-test", "mode": None},
    "dataset": {"name": "synthetic"},
    "model": {"name": "tiny"},
    "method": {"name": "sft"},
    "noise": 0.2,
    "seed": 0,
    "run_name": "synthetic-tiny-sft-noise0.2-seed0",
}


def test_offline_without_a_key(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    logger = make_wandb_logger(CFG, tmp_path)
    try:
        assert logger.experiment.settings.mode == "offline"
        assert "noise:0.2" in logger.experiment.tags and logger.experiment.name == tmp_path.name  # the job folder
        logger.log_metrics({"train/loss": 1.0})
    finally:
        finish_wandb()
    assert list((tmp_path / "wandb").glob("offline-run-*"))  # `wandb sync` can upload it later


def test_a_failing_online_start_falls_back_to_offline(tmp_path, monkeypatch):
    calls = []
    real_init = wandb.init

    def flaky_init(*args, **kwargs):
        calls.append(kwargs.get("mode"))
        if kwargs.get("mode") == "online":
            raise wandb.errors.CommError("network unreachable")
        return real_init(*args, **kwargs)

    monkeypatch.setattr(wandb, "init", flaky_init)
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    logger = make_wandb_logger(CFG, tmp_path)
    try:
        assert calls == ["online", "offline"]
        assert logger.experiment.settings.mode == "offline"
    finally:
        finish_wandb()


def test_no_wandb_at_all_still_returns(tmp_path, monkeypatch):
    def broken_init(*args, **kwargs):
        raise RuntimeError("wandb is broken here")

    monkeypatch.setattr(wandb, "init", broken_init)
    assert make_wandb_logger(CFG, tmp_path) is None


def test_tags_name_what_ran_and_the_method_slots(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    cfg = dict(
        CFG,
        fallback={"dataset": "semeval", "model": "flan_t5"},
        method={"name": "atlantis", "select": {"_target_": "atlantis.methods.select.SelectFisher"}},
    )
    logger = make_wandb_logger(cfg, tmp_path)
    try:
        tags = set(logger.experiment.tags)
    finally:
        finish_wandb()
    assert {"dataset:synthetic←semeval", "model:tiny←flan_t5", "method:atlantis", "select:SelectFisher"} <= tags


def job_folder(tmp_path):
    """A job's outputs as write_outputs leaves them: metrics, predictions, weights."""
    run_dir = tmp_path / "3_synthetic-tiny-atlantis-noise0.5-seed0"
    run_dir.mkdir()
    labels = ["A", "B", "Other"]
    rows = [{"id": i, "text": f"sentence {i}", "gold": labels[i % 3], "predicted": labels[(i * i) % 3], "raw": ""}
            for i in range(12)]  # fmt: skip
    (run_dir / "predictions.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    weights = [{"id": i, "weight": 0.1 + i, "is_noisy": i % 4 == 0} for i in range(20)]
    (run_dir / "weights.jsonl").write_text("\n".join(json.dumps(r) for r in weights) + "\n")
    per_class = {"A": {"frequency": 0.5, "mass": 0.7, "mean_weight": 1.4}, "B": {"frequency": 0.5, "mass": 0.3}}
    (run_dir / "weights.json").write_text(json.dumps({"per_class": per_class}))
    metrics = {
        "test/f1_official": 0.25,
        "val/best_f1": 0.3,
        "val/history": [{"epoch": 0, "step": 3, "f1": 0.2}, {"epoch": 1, "step": 6, "f1": 0.3}],
        "test/per_class": {"A": {"precision": 0.5, "recall": 0.25, "f1": 0.33}},
        "noise": {"rate": 0.5, "kind": "uniform"},
        "weights": {"ess_fraction": 0.4, "auroc_clean_vs_noisy": 0.7},
        "train/step_weighting": [{"epoch": 0, "dropped": 3, "dropped_precision": 0.67}],
    }
    return run_dir, metrics


def test_a_restored_job_gets_its_run_with_its_outputs_and_curve_once(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    run_dir, metrics = job_folder(tmp_path)
    state = tmp_path / "state"
    cfg = dict(CFG, logger=dict(CFG["logger"], group="g"), method={"name": "atlantis", "weights": {"per_class": True}})
    log_restored_job(cfg, run_dir, "job-key-1", state, metrics)
    run = offline_run(run_dir)
    assert (run["id"], run["group"], run["job_type"], run["name"]) == (run_id("job-key-1"), "g", "atlantis",
                                                                          run_dir.name)  # fmt: skip
    assert run["config"]["weights_per_class"] is True and run["config"]["noise"] == 0.2
    summary = run["summary"]
    assert summary["test/f1_official"] == 0.25 and summary["by_noise/0.5/test_f1_official"] == 0.25
    assert summary["weights/ess_fraction"] == 0.4 and summary["weights/auroc_clean_vs_noisy"] == 0.7
    assert summary["test/predictions/nrows"] == 12 and summary["test/per_class/nrows"] == 1
    assert summary["weights/per_class_mass/nrows"] == 2 and summary["train/step_weighting/nrows"] == 1
    assert summary["test/confusion_matrix_table/_type"] == "table-file"
    assert sum(summary["weights/log10_corrupted/values"]) == 5  # the corrupted examples' histogram
    assert sum(summary["weights/log10_clean/values"]) == 15
    assert "val/f1" in run["history_keys"]
    assert json.loads((state / RUN_RECORD).read_text())["id"] == run_id("job-key-1")
    # restored again (the same sweep rerun): the same run, and its curve is not logged a second time
    shutil.rmtree(run_dir / "wandb")
    log_restored_job(cfg, run_dir, "job-key-1", state, metrics)
    again = offline_run(run_dir)
    assert again["id"] == run["id"] and "val/f1" not in again["history_keys"]


def test_run_ids_follow_the_job_key():
    assert run_id("a") == run_id("a") != run_id("b")
    assert len(run_id("a")) <= 64 and run_id("a").isalnum()


def test_wandb_failing_inside_a_log_call_does_not_fail_the_job(tmp_path, caplog):
    class BrokenRun:
        @property
        def summary(self):
            raise RuntimeError("W&B backend died")

    run_dir, metrics = job_folder(tmp_path)
    assert log_job_outputs(BrokenRun(), run_dir, metrics) is None
    assert "W&B backend died" in caplog.text


def test_flat_config_has_what_a_report_groups_by():
    cfg = dict(
        CFG,
        noise_kind={"name": "llm_like"},
        reference={"name": "crossfit"},
        model={"name": "smollm2_gemma3", "small": {"name_or_path": "/m/smol", "gguf_file": "S.gguf"},
               "large": {"name_or_path": "/m/gemma"}},
        method={"name": "atlantis", "weights": {"_target_": "x.ImportanceWeights", "per_class": True,
                                                "terms": ["large", "small", "reference"]}},
    )  # fmt: skip
    flat = flat_config(cfg)
    assert flat["model"] == "smollm2_gemma3" and flat["model_small"] == "S.gguf" and flat["model_large"] == "gemma"
    assert (flat["noise_kind"], flat["reference"], flat["weights_class"]) == (
        "llm_like",
        "crossfit",
        "ImportanceWeights",
    )
    assert flat["weights_per_class"] is True and flat["weights_terms"] == "large,small,reference"


def test_the_dashboard_builds_offline_with_every_panel():
    from atlantis.report.wandb import build_report, build_workspace, dashboard_spec

    spec = dashboard_spec("e", "p", "g", [0.5, 0.2])
    workspace = build_workspace(spec)
    workspace._to_model()  # the wire format W&B saves; no network needed for a workspace
    titles = [p.title for s in workspace.sections for p in s.panels if getattr(p, "title", None)]
    assert titles[:2] == ["test official F1, noise 0.2 (mean ± sd over seeds)",
                          "test official F1, noise 0.5 (mean ± sd over seeds)"]  # fmt: skip
    report = build_report(spec)
    grids = [b for b in report.blocks if type(b).__name__ == "PanelGrid"]
    assert "Config('noise') == 0.2" in grids[0].runsets[0].filters
    assert grids[0].panels[0].metrics == ["test/f1_official"]


def test_flat_config_names_a_reference_only_for_a_method_that_reads_it():
    def flat(method: dict) -> dict:
        return flat_config(dict(CFG, reference={"name": "trusted"}, method=method))

    assert flat({"name": "sft", "weights": {"terms": []}})["reference"] is None  # one SFT row whatever `reference=`
    assert (
        flat({"name": "cleanlab", "select": {"_target_": "atlantis.methods.confident.SelectCleanlab"}})["reference"]
        == "trusted"
    )
    assert flat({"name": "ref_only", "weights": {"terms": ["reference"]}})["reference"] == "trusted"
