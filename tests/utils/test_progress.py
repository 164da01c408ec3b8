"""Long passes say how far they are: a line a minute in a log file, the end of a long pass, nothing for a short one."""

import logging

import pytest

from atlantis.utils import progress as progress_module
from atlantis.utils.progress import ProgressLog, progress


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def lines(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "atlantis.utils.progress"]


def test_a_long_pass_logs_at_most_once_an_interval_and_its_end(caplog):
    clock = Clock()
    pace = ProgressLog("scoring", 10, "batches", every_s=60, clock=clock)
    with caplog.at_level(logging.INFO, logger="atlantis"):
        for done in range(1, 11):
            clock.now += 25  # a batch every 25 s: lines after batches 3 (75 s), 6 (150 s), 9 (225 s), and the end
            pace.update(done)
    assert lines(caplog) == [
        "scoring: 3/10 batches, 1.2 min, ~2.9 min left",
        "scoring: 6/10 batches, 2.5 min, ~1.7 min left",
        "scoring: 9/10 batches, 3.8 min, ~0.4 min left",
        "scoring: 10/10 batches, 4.2 min",
    ]


def test_a_short_pass_logs_nothing_and_log_end_off_leaves_the_end_to_the_caller(caplog):
    clock = Clock()
    short = ProgressLog("scoring", 3, "batches", every_s=60, clock=clock)
    silent_end = ProgressLog("training: epoch 1/3", 2, "batches", every_s=60, log_end=False, clock=clock)
    with caplog.at_level(logging.INFO, logger="atlantis"):
        for done in (1, 2, 3):
            clock.now += 1
            short.update(done)
        for done in (1, 2):
            clock.now += 100
            silent_end.update(done)
    assert lines(caplog) == ["training: epoch 1/3: 1/2 batches, 1.7 min, ~1.7 min left"]


@pytest.mark.parametrize("terminal", [False, True])
def test_progress_yields_every_item_in_order_with_a_bar_only_on_a_terminal(monkeypatch, capsys, caplog, terminal):
    monkeypatch.setattr("sys.stderr.isatty", lambda: terminal)
    monkeypatch.setattr(progress_module, "EVERY_S", 0.0)
    with caplog.at_level(logging.INFO, logger="atlantis"):
        assert list(progress(iter("abc"), "scoring", "batches", total=3)) == ["a", "b", "c"]
    assert bool(lines(caplog)) is not terminal
    if not terminal:
        assert lines(caplog)[-1].startswith("scoring: 3/3 batches")


def test_only_rank_zero_reports(monkeypatch, caplog):
    monkeypatch.setattr(progress_module, "EVERY_S", 0.0)
    monkeypatch.setattr("sys.stderr.isatty", lambda: False)
    monkeypatch.setenv("RANK", "1")
    with caplog.at_level(logging.INFO, logger="atlantis"):
        assert list(progress([1, 2], "scoring", "batches")) == [1, 2]
    assert lines(caplog) == []
