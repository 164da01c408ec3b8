"""The console shows what a person needs: Lightning's per-job chatter is dropped unless verbose=true; warnings
and the run's own lines always show."""

import logging

import pytest

from atlantis.experiment.console import quiet_libraries


@pytest.fixture
def root_handler():
    root = logging.getLogger()
    handler = logging.StreamHandler()
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)


def shown(handler, name: str, level: int, message: str) -> bool:
    record = logging.LogRecord(name, level, __file__, 1, message, None, None)
    return all(f.filter(record) for f in handler.filters)


@pytest.mark.parametrize("verbose", [False, True])
def test_lightning_chatter_is_dropped_unless_verbose(root_handler, verbose):
    quiet_libraries(verbose=verbose)
    lightning = "lightning.pytorch.utilities.rank_zero"
    assert shown(root_handler, lightning, logging.INFO, "GPU available: False, used: False") is verbose
    assert (
        shown(
            root_handler, lightning, logging.INFO, "Loading `train_dataloader` to estimate number of stepping batches."
        )
        is verbose
    )
    restoring = "Restoring states from the checkpoint path at outputs/state/k/checkpoints/best.ckpt"
    assert shown(root_handler, lightning, logging.INFO, restoring) is verbose  # the pipeline names its checkpoint
    assert shown(root_handler, "atlantis.experiment.pipeline", logging.INFO, "test metrics: {...}")
    assert shown(root_handler, lightning, logging.WARNING, "The dataloader does not have many workers")
    assert not shown(root_handler, lightning, logging.INFO, "💡 Tip: For seamless cloud uploads")  # advertising


def test_the_gguf_readers_bar_obeys_the_progress_bar_switch(capsys):
    from transformers import modeling_gguf_pytorch_utils

    quiet_libraries(verbose=False)
    capsys.readouterr()
    list(modeling_gguf_pytorch_utils.tqdm(range(3), desc="Converting and de-quantizing GGUF tensors..."))
    assert "de-quantizing" not in capsys.readouterr().err


def test_verbose_is_not_part_of_the_job_key():
    from atlantis.experiment.jobs import RUNTIME_KEYS

    assert "verbose" in RUNTIME_KEYS


def test_a_job_without_a_progress_bar_logs_each_epoch_of_each_model_it_trains(tmp_path, caplog, monkeypatch):
    from atlantis.experiment.pipeline import run_job
    from atlantis.utils import progress
    from tests.conftest import job_config

    monkeypatch.setattr(progress, "EVERY_S", 0.0)  # every batch is a minute late: each logs its line
    cfg = job_config(
        "dataset=synthetic", "model=tiny", "dataset.reader.sizes=[40,12,12]", "trainer.max_epochs=2",
        "trainer.enable_progress_bar=false", "method=atlantis", "reference=crossfit", "reference.folds=2",
        "reference.max_epochs=1", f"paths.output_dir={tmp_path}", f"paths.cache_dir={tmp_path}/cache",
    )  # fmt: skip
    with caplog.at_level(logging.INFO, logger="atlantis"):
        run_job(cfg, tmp_path / "run")
    lines = [r.getMessage() for r in caplog.records if r.name == "atlantis.models.trainer"]
    trained = [line for line in lines if line.startswith("training: epoch")]
    assert [line.split(",")[0] for line in trained] == ["training: epoch 1/2", "training: epoch 2/2"]
    assert all("val F1 " in line and "train loss " in line and line.endswith(" min") for line in trained)
    assert sum(line.startswith("small model: epoch 1/1") for line in lines) == 2  # the two cross-fitted folds
    assert any(r.getMessage().startswith("testing 12 examples with best-epoch=") for r in caplog.records)
    paced = [r.getMessage() for r in caplog.records if r.name == "atlantis.utils.progress"]
    assert any(line.startswith("training: epoch 1/2: 1/") for line in paced)  # inside the epoch
    assert any(line.startswith("testing: ") and "batches" in line for line in paced)
    assert any(line.startswith("p_r") for line in paced), paced  # the reference's scoring pass
