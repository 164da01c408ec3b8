"""preserved_random_state: a side computation (a reference fitted, a checkpoint dequantised) leaves the job's random
streams as a cache hit would, so the same seed trains the same on a cold and on a warm cache."""

import random
import subprocess
import sys

import numpy as np
import pytest
import torch

from atlantis.utils.random_state import preserved_random_state


def draws() -> tuple:
    return torch.rand(3).tolist(), np.random.rand(3).tolist(), [random.random() for _ in range(3)]


def test_a_block_that_draws_leaves_every_cpu_stream_as_it_found_it():
    torch.manual_seed(3), np.random.seed(3), random.seed(3)
    expected = draws()
    torch.manual_seed(3), np.random.seed(3), random.seed(3)
    with preserved_random_state():
        torch.manual_seed(11)  # a fit seeds itself and draws
        draws()
    assert draws() == expected


def test_a_block_that_first_initialises_cuda_leaves_it_seeded_as_a_first_use_would(monkeypatch):
    """Without a GPU: CUDA mocked as available and seeded lazily (not initialised); the block initialises it."""
    initialised, seeded = [False], []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: initialised[0])
    monkeypatch.setattr(torch.cuda, "manual_seed_all", seeded.append)
    torch.manual_seed(5)  # queues CUDA's seed (here: recorded)
    seeded.clear()
    with preserved_random_state():
        initialised[0] = True  # the fit moved a model to the GPU
    assert seeded == [5]
    with preserved_random_state():  # initialised before: its state was saved and restored, nothing reseeded
        pass
    assert seeded == [5]


def test_a_block_that_never_touches_cuda_does_not_initialise_it(monkeypatch):
    seeded = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    monkeypatch.setattr(torch.cuda, "manual_seed_all", seeded.append)
    with preserved_random_state():
        torch.rand(2)
    assert seeded == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU: CUDA's lazy seeding")
def test_on_a_gpu_the_streams_after_a_block_that_initialised_cuda_match_a_fresh_process():
    first_use = "import torch; torch.manual_seed(7); print(torch.rand(4, device='cuda').tolist())"
    after_block = (
        "import torch; from atlantis.utils.random_state import preserved_random_state; torch.manual_seed(7)\n"
        "with preserved_random_state():\n    torch.manual_seed(1); torch.rand(9, device='cuda')\n"
        "print(torch.rand(4, device='cuda').tolist())"
    )
    outputs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
               for code in (first_use, after_block)]  # fmt: skip
    assert outputs[0] == outputs[1]
