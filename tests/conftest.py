"""Shared fixtures. Real data and models come from $ATLANTIS_DATA_DIR / $ATLANTIS_MODELS_DIR (the Makefile
points them at ../shared when it exists); tests that need them skip, saying why, when they are absent."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _env_dir(variable: str, subdir: str) -> Path | None:
    root = os.environ.get(variable)
    if root and (Path(root) / subdir).is_dir():
        return Path(root) / subdir
    return None


@pytest.fixture(scope="session")
def semeval_dir() -> Path:
    path = _env_dir("ATLANTIS_DATA_DIR", "semeval2010_task8")
    if path is None:
        pytest.skip("real SemEval files not found: set ATLANTIS_DATA_DIR to a folder holding semeval2010_task8/")
    return path


@pytest.fixture(scope="session")
def conll04_dir() -> Path:
    path = _env_dir("ATLANTIS_DATA_DIR", "conll04")
    if path is None:
        pytest.skip("real CoNLL04 files not found: set ATLANTIS_DATA_DIR to a folder holding conll04/")
    return path


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
