"""Which process this is, and the few collectives a job needs, so that N processes give one process's numbers.

A job runs as one process, as ranks that Lightning's launcher starts at the first `fit`/`test` (they re-run the
job's command line from the top), or as ranks started together by an external launcher (SLURM with one task per
device, torchrun). Ranks are read from the environment, as Lightning reads them, so they are known before any
Trainer exists.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

import torch
import torch.distributed as dist


def global_rank() -> int:
    """This process's global rank (0 when not distributed): the keys Lightning reads, and on a node after the first
    that Lightning launched itself (NODE_RANK > 0, no global RANK), never 0."""
    if os.environ.get("RANK") is not None:
        return int(os.environ["RANK"])
    node = int(os.environ.get("NODE_RANK") or 0)
    for key in ("LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK"):
        if os.environ.get(key) is not None:
            rank = int(os.environ[key])
            return rank + node * max(1, torch.cuda.device_count()) if key == "LOCAL_RANK" else rank
    return node * max(1, torch.cuda.device_count())


def local_rank() -> int:
    """This process's rank on its node: which of the node's GPUs it uses."""
    for key in ("LOCAL_RANK", "SLURM_LOCALID"):
        if os.environ.get(key) is not None:
            return int(os.environ[key])
    return 0


def is_global_zero() -> bool:
    return global_rank() == 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def distributed() -> bool:
    return world_size() > 1


def job_device(accelerator: str = "auto") -> torch.device:
    """The device this rank scores on: its own GPU (cuda:<local rank>), or the CPU."""
    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return torch.device("cuda", local_rank() % torch.cuda.device_count())
    return torch.device("cpu")


def processes_per_job(trainer: dict) -> int:
    """How many processes the trainer settings ask for (devices x nodes); `auto` counts the visible GPUs."""
    devices, accelerator = trainer.get("devices", "auto"), trainer.get("accelerator", "auto")
    if isinstance(devices, (list, tuple)):
        count = len(devices)
    elif devices in ("auto", -1, "-1"):
        gpu = accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
        count = torch.cuda.device_count() if gpu else 1  # Lightning's `auto`: every visible GPU, else one CPU
    else:
        count = int(devices)
    return count * int(trainer.get("num_nodes", 1) or 1)


def launched_externally() -> bool:
    """True when every rank was started at once by torchrun or SLURM (one task per device), not by Lightning."""
    from lightning.fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment

    slurm_tasks = int(os.environ.get("SLURM_NTASKS", "1") or 1)
    return TorchElasticEnvironment.detect() or (SLURMEnvironment.detect() and slurm_tasks > 1)


def init_external_process_group(accelerator: str = "auto") -> None:
    """Join the process group now, before any Trainer, when an external launcher started the ranks together, so
    that rank zero can compute the signals while the others wait; Lightning's strategy reuses the group."""
    if not launched_externally() or (dist.is_available() and dist.is_initialized()):
        return
    from lightning.fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment
    from lightning.fabric.utilities.distributed import _init_dist_connection

    environment = TorchElasticEnvironment() if TorchElasticEnvironment.detect() else SLURMEnvironment()
    backend = "nccl" if job_device(accelerator).type == "cuda" else "gloo"
    _init_dist_connection(environment, backend)


def barrier() -> None:
    """Wait for every rank, however long rank zero computes (references can take hours): a barrier without the
    process group's timeout (Lightning's own, on a gloo group of its own)."""
    if distributed():
        from lightning.fabric.utilities.distributed import _InfiniteBarrier

        with _InfiniteBarrier() as wait:
            wait()


def broadcast_from_zero(value):
    """Rank zero's value on every rank (the value itself when not distributed)."""
    if not distributed():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


@contextmanager
def rank_zero_first():
    """Rank zero runs the block first (it computes and caches); the other ranks then run it and read the cache."""
    if not is_global_zero():
        barrier()
    try:
        yield
    finally:
        if is_global_zero():
            barrier()


def gather_objects(items: list) -> list:
    """Every rank's list, concatenated in rank order (the list itself when not distributed)."""
    if not distributed():
        return list(items)
    out: list = [None] * world_size()
    dist.all_gather_object(out, list(items))
    return [item for part in out for item in part]


def gather_batch(values: torch.Tensor) -> tuple[torch.Tensor, slice]:
    """This rank's per-example values joined with the other ranks' share of the same global batch.

    Returns (values of the whole global batch in rank order, this rank's slice of it). Each rank holds a
    contiguous share of the global batch (atlantis.data.sampling.ShardedBatchSampler), so rank order is batch
    order and a rule over the batch (small-loss keeps the smallest losses) sees what one process would see.
    """
    if not distributed():
        return values, slice(0, values.shape[0])
    sizes = [None] * world_size()
    dist.all_gather_object(sizes, int(values.shape[0]))
    width = max(sizes)
    padded = torch.zeros(width, dtype=values.dtype, device=values.device)
    padded[: values.shape[0]] = values
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded)
    joined = torch.cat([p[:n] for p, n in zip(parts, sizes, strict=True)])
    start = sum(sizes[: dist.get_rank()])
    return joined, slice(start, start + values.shape[0])
