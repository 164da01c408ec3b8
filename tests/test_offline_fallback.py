"""Where the hub is out of reach, the job runs on the embedded demo setting, says so once, and names it."""

import pytest

from atlantis.experiment.pipeline import run_job
from atlantis.utils import hub
from tests.conftest import job_config


def default_job(tmp_path, *overrides):
    return job_config(
        "trainer.enable_progress_bar=false", f"paths.output_dir={tmp_path}", f"paths.cache_dir={tmp_path}", *overrides
    )


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.delenv("ATLANTIS_DATA_DIR", raising=False)


def test_default_job_falls_back_and_names_it(tmp_path, offline):
    cfg = default_job(tmp_path, "offline_trainer.max_epochs=1")
    assert cfg["run_name"] == "synthetic←semeval-tiny←flan_t5-sft-noise0.0-seed0"  # the folder's name
    metrics = run_job(cfg, tmp_path / "run")
    import huggingface_hub.constants

    assert huggingface_hub.constants.HF_HUB_OFFLINE  # the libraries are offline too: no download retries
    assert metrics["fallback"]["model"] == "flan_t5" and metrics["fallback"]["dataset"] == "semeval"
    assert metrics["config"]["model"] == "tiny←flan_t5" and metrics["config"]["dataset"] == "synthetic←semeval"


def test_without_fallback_the_error_stands(tmp_path, offline):
    cfg = default_job(tmp_path, "offline_fallback=false")
    assert cfg["run_name"].startswith("semeval-flan_t5-")
    with pytest.raises(OSError):
        run_job(cfg, tmp_path / "run")


def test_an_unreachable_hub_switches_the_process_offline_once(monkeypatch):
    for name in hub.OFFLINE_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setattr(hub, "_probed", None)
    calls = []
    real = hub._reachable
    monkeypatch.setattr(hub, "_reachable", lambda *a: calls.append(a) or real(*a))
    assert hub.hub_offline() and hub.hub_offline()
    assert len(calls) == 1
    import os

    assert os.environ["HF_HUB_OFFLINE"] == "1"  # child processes (sweep launchers) inherit the answer


def test_a_missing_local_model_folder_is_an_error_not_a_fallback(tmp_path, offline, monkeypatch):
    """Without `make models`, model=smollm2_gemma3 must not quietly train the tiny pair in Gemma's place."""
    monkeypatch.setenv("ATLANTIS_FETCHED_MODELS_DIR", str(tmp_path / "not_fetched"))
    cfg = default_job(tmp_path, "model=smollm2_gemma3")
    assert "tiny" not in cfg["run_name"] and cfg["model"]["name"] == "smollm2_gemma3"
    with pytest.raises(FileNotFoundError, match=r"not_fetched/gemma-3-270m/tokenizer: no such folder.*make models"):
        run_job(cfg, tmp_path / "run")
