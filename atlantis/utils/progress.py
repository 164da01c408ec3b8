"""Progress of long passes: a bar on a terminal, a line a minute in a log file (a bar's carriage returns turn a
log into one unreadable line, and a log with no lines for 40 minutes looks like a hang)."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator

from tqdm.auto import tqdm

from atlantis.utils.distributed import is_global_zero

log = logging.getLogger(__name__)
EVERY_S = 60.0  # seconds between two lines of one pass


class ProgressLog:
    """Logs `desc: done/total unit, minutes, minutes left` at most once every `every_s` seconds, and at the end of
    a pass that lasted longer than that (a pass of a few seconds needs no progress) unless `log_end` is off (the
    caller logs its own summary)."""

    def __init__(
        self,
        desc: str,
        total: int,
        unit: str,
        every_s: float | None = None,
        log_end: bool = True,
        clock=time.monotonic,
    ):
        self.desc, self.total, self.unit, self.log_end, self.clock = desc, total, unit, log_end, clock
        self.every_s = EVERY_S if every_s is None else every_s
        self.start = self.last = clock()

    def update(self, done: int) -> None:
        now = self.clock()
        if done >= self.total and not self.log_end:
            return
        finished_long = done >= self.total and now - self.start >= self.every_s
        if not finished_long and now - self.last < self.every_s:
            return
        self.last = now
        minutes = (now - self.start) / 60
        left = f", ~{minutes * (self.total - done) / done:.1f} min left" if 0 < done < self.total else ""
        log.info("%s: %d/%d %s, %.1f min%s", self.desc, done, self.total, self.unit, minutes, left)


def progress(items: Iterable, desc: str, unit: str, total: int | None = None) -> Iterator:
    """Yield `items` with a tqdm bar when stderr is a terminal, else with a `ProgressLog`; on rank zero only (every
    rank scores its own part at once)."""
    total = len(items) if total is None else total
    if not is_global_zero():
        yield from items
        return
    if sys.stderr.isatty():
        yield from tqdm(items, desc=desc, unit=unit, total=total, leave=False)
        return
    pace = ProgressLog(desc, total, unit)
    for done, item in enumerate(items, start=1):
        yield item
        pace.update(done)
