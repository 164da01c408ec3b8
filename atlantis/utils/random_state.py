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
    states = random_states()
    # CUDA seeds lazily: seeded but not yet initialised, its state cannot be read without initialising it (on
    # every rank's first device). A block that initialises it leaves it seeded as a first use would find it.
    lazily_seeded, seed = torch.cuda.is_available() and not torch.cuda.is_initialized(), torch.initial_seed()
    try:
        yield
    finally:
        set_random_states(states)
        if lazily_seeded and torch.cuda.is_initialized():
            torch.cuda.manual_seed_all(seed)


def random_states() -> dict:
    """The global random states as plain values and tensors (a checkpoint loaded weights-only accepts them)."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    version, python_state, python_gauss = random.getstate()
    cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if cuda else [],
        "numpy": [name, keys.tolist(), pos, has_gauss, gauss],
        "python": [version, list(python_state), python_gauss],
    }


def set_random_states(states: dict) -> None:
    """Restore what `random_states` saved."""
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    name, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    version, python_state, python_gauss = states["python"]
    random.setstate((version, tuple(python_state), python_gauss))
