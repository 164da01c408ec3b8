"""W&B without network or key never fails a run."""

import wandb

from atlantis.experiment.wandb import finish_wandb, make_wandb_logger

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
        assert "noise:0.2" in logger.experiment.tags and logger.experiment.name == CFG["run_name"]
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
