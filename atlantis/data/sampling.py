"""Batches that do not depend on the number of processes.

`trainer.batch_size` is the global batch. Every epoch draws the same global batches from the seed on one process
or on N; each process takes a contiguous share of each (sizes differ by at most one) and the loss divides by
the global batch size, so the gradient DDP averages is the one-process gradient of the same examples. Lightning's
DistributedSampler would instead give each rank its own permutation and per-rank batches of `batch_size`, and pad
evaluation with duplicates.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple

import torch
from torch.utils.data import Sampler


class ShardKey(NamedTuple):
    """An example of this rank's share of a global batch: its index, the global batch's size, and whether the row
    only fills a share left empty (a last batch smaller than the world; the row weighs 0)."""

    index: int
    global_size: int
    padding: bool = False


class GlobalBatches(Sampler[list[int]]):
    """The epoch's global batches: a seeded permutation (seed + epoch) cut into `batch_size` pieces, or, with
    `lengths`, batches of similar length (shuffled mega-batches of `batch_size * group`, each sorted by length,
    split, and the batches shuffled): less padding, still random. `set_epoch` (Lightning calls it) picks the order."""

    def __init__(
        self, n: int, batch_size: int, seed: int = 0, shuffle: bool = True, lengths: Sequence[int] | None = None
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.n, self.batch_size, self.seed, self.shuffle = n, batch_size, seed, shuffle
        self.lengths = list(lengths) if lengths is not None else None
        self.group = 50
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[list[int]]:
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(self.n, generator=g).tolist() if self.shuffle else list(range(self.n))
        if self.lengths is None:
            yield from (order[i : i + self.batch_size] for i in range(0, self.n, self.batch_size))
            return
        size = self.batch_size * self.group
        batches = []
        for start in range(0, self.n, size):
            chunk = sorted(order[start : start + size], key=lambda i: -self.lengths[i])
            batches += [chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size)]
        for b in torch.randperm(len(batches), generator=g).tolist():
            yield batches[b]

    def __len__(self) -> int:
        if self.lengths is None:
            return -(-self.n // self.batch_size)
        size = self.batch_size * self.group
        full, rest = divmod(self.n, size)
        return full * self.group + -(-rest // self.batch_size)


def share(batch: list[int], world: int, rank: int) -> list[ShardKey]:
    """Rank `rank`'s contiguous share of a global batch; one padding row when the share would be empty."""
    base, extra = divmod(len(batch), world)
    start = rank * base + min(rank, extra)
    mine = batch[start : start + base + (rank < extra)]
    if not mine:
        return [ShardKey(batch[0], len(batch), padding=True)]
    return [ShardKey(i, len(batch)) for i in mine]


class ShardedBatchSampler(Sampler[list[ShardKey]]):
    """This rank's share of every global batch of `sampler` (a GlobalBatches, reachable as `.sampler` so that
    Lightning's set_epoch reaches it)."""

    def __init__(self, sampler: GlobalBatches, world: int = 1, rank: int = 0):
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} outside a world of {world}")
        self.sampler, self.world, self.rank = sampler, world, rank

    def __iter__(self) -> Iterator[list[ShardKey]]:
        for batch in self.sampler:
            yield share(batch, self.world, self.rank)

    def __len__(self) -> int:
        return len(self.sampler)


class EvalShard(Sampler[int]):
    """Rank `rank`'s examples of an evaluation split (every `world`-th one), repeated at the end up to ceil(n /
    world) so that every rank runs as many batches (FSDP's forward is a collective; a rank with no batch would
    skip the epoch's gather). The records are gathered and deduplicated by index before any metric, so each
    example counts exactly once."""

    def __init__(self, n: int, world: int = 1, rank: int = 0):
        self.n, self.world, self.rank = n, world, rank

    def __iter__(self) -> Iterator[int]:
        own = list(range(self.rank, self.n, self.world)) or [self.rank % max(self.n, 1)]
        width = -(-self.n // self.world) if self.n else 0
        return iter((own + own[-1:] * width)[:width])

    def __len__(self) -> int:
        return -(-self.n // self.world) if self.n else 0
