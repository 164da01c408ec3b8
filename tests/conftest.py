"""Shared fixtures. Real data and models come from $ATLANTIS_DATA_DIR / $ATLANTIS_MODELS_DIR (the Makefile
points them at ../shared when it exists); tests that need them skip, saying why, when they are absent."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

if "PYTEST_XDIST_WORKER" in os.environ:
    # One thread per worker (and per subprocess it starts): two workers on two cores, no oversubscription.
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)


def job_config(*overrides: str) -> dict:
    """A job's config as run.py composes it (without the hydra node), resolved to plain values."""
    from atlantis.experiment.config import compose_job

    return compose_job(*overrides)


def learning_seeds() -> list[int]:
    """Seeds a learning test runs with: 0 by default; ATLANTIS_LEARNING_SEEDS=0,1,2,3,4 (docs/testing.md) to see the spread."""
    return [int(s) for s in os.environ.get("ATLANTIS_LEARNING_SEEDS", "0").split(",")]


def _data_dir(subdir: str, what: str) -> Path:
    root = os.environ.get("ATLANTIS_DATA_DIR")
    if not (root and (Path(root) / subdir).is_dir()):
        pytest.skip(f"real {what} files not found: set ATLANTIS_DATA_DIR to a folder holding {subdir}/")
    return Path(root) / subdir


@pytest.fixture(scope="session")
def redocred_dir() -> Path:
    return _data_dir("redocred", "Re-DocRED")


@pytest.fixture(scope="session")
def ade_dir() -> Path:
    return _data_dir("ade", "ADE")


@pytest.fixture(scope="session")
def semeval_dir() -> Path:
    return _data_dir("semeval2010_task8", "SemEval")


@pytest.fixture(scope="session")
def conll04_dir() -> Path:
    return _data_dir("conll04", "CoNLL04")


@pytest.fixture(scope="session")
def models_dir() -> Path:
    root = os.environ.get("ATLANTIS_MODELS_DIR")
    if not root or not Path(root).is_dir():
        pytest.skip("offline model files not found: set ATLANTIS_MODELS_DIR (e.g. ../shared/models)")
    return Path(root)


@pytest.fixture(scope="session")
def perl() -> str:
    exe = shutil.which("perl")
    if exe is None:
        pytest.skip("perl is not installed: the official SemEval scorer needs it")
    return exe


def step_losses(run_dir: Path) -> dict[str, str]:
    """{step: training loss} of the steps a run trained (its csv log), in the order it trained them."""
    rows = csv.DictReader((run_dir / "csv" / "metrics.csv").open())
    return {row["step"]: row["train/loss"] for row in rows if row["train/loss"]}
