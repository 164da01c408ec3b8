"""Side computations that must not move the job's random streams."""

from __future__ import annotations

import contextlib
import random

import numpy as np
import torch


@contextlib.contextmanager
def preserved_random_state():
    """Run a block and restore the global random states after it (python, numpy, torch CPU and CUDA).

    A job's data order and dropout come from the global streams seeded at its start; anything computed on the
    way that may instead be read from a cache (a reference fine-tuned, a GGUF checkpoint dequantised) must leave
    them as a cache hit does, or the same seed trains differently on a cold and on a warm cache."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
    devices = list(range(torch.cuda.device_count())) if cuda else []
    with torch.random.fork_rng(devices=devices):
        try:
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)
