"""Where the hub is out of reach, the default job runs on the embedded demo setting and says so."""

import pytest

from atlantis.experiment.pipeline import run_job
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


def test_default_job_falls_back_and_records_it(tmp_path, offline):
    metrics = run_job(
        default_job(tmp_path, "dataset.max_train_examples=100", "offline_trainer.max_epochs=1"), tmp_path / "run"
    )
    assert metrics["fallback"]["model"] == "flan_t5" and metrics["fallback"]["dataset"] == "semeval"
    assert metrics["config"]["model"] == "tiny" and metrics["config"]["dataset"] == "synthetic"


def test_without_fallback_the_error_stands(tmp_path, offline):
    with pytest.raises(OSError):
        run_job(default_job(tmp_path, "offline_fallback=false"), tmp_path / "run")
