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
    assert shown(root_handler, "atlantis.experiment.pipeline", logging.INFO, "test metrics: {...}")
    assert shown(root_handler, lightning, logging.WARNING, "The dataloader does not have many workers")
    assert not shown(root_handler, lightning, logging.INFO, "💡 Tip: For seamless cloud uploads")  # advertising


def test_verbose_is_not_part_of_the_job_key():
    from atlantis.experiment.jobs import RUNTIME_KEYS

    assert "verbose" in RUNTIME_KEYS
