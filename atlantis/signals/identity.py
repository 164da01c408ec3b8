"""What a model *is*, for cache keys: a hub id, a tiny config, or the content digest of local files.

Local paths must not enter a key: the same files reached through another path (a moved checkout, a symlink,
../shared vs an absolute path) are the same model. A folder's digest is computed once and remembered by each
file's size and mtime, so later lookups cost a stat per file.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from atlantis.signals.cache import cache_key, file_sha256
from atlantis.utils.io import atomic_write_json
from atlantis.utils.tree import map_strings, string_leaves

# The job key is a hash of the resolved settings (less the runtime-only ones of experiment.jobs) and this version. Bump it when
# keys must change meaning: every earlier job then runs again instead of being taken for a finished one.
JOB_KEY_VERSION = 3  # 3: local paths enter as what they hold (portable_settings)
MODEL_FILES = (".json", ".safetensors", ".bin", ".gguf", ".model", ".txt", ".tiktoken")


_DIGESTS: dict[tuple, str] = {}  # this process's digests, by (folder, file, sizes and mtimes)


def content_digest(path: str | Path, memo_dir: str | Path | None = None, only: str | None = None) -> str:
    """SHA-256 over a local model's files (or the one file `only`), memoised by (size, mtime) in this process and
    under `memo_dir`."""
    root = Path(path)
    files = [root / only] if only else sorted(p for p in root.iterdir() if p.is_file() and p.suffix in MODEL_FILES)
    stats = {p.name: [p.stat().st_size, p.stat().st_mtime_ns] for p in files}
    seen = (str(root.resolve()), only, json.dumps(stats, sort_keys=True))
    if seen in _DIGESTS:
        return _DIGESTS[seen]
    memo_path = None
    if memo_dir is not None:
        where = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
        memo_path = Path(memo_dir) / "digests" / f"{where}-{only or 'dir'}.json"
        if memo_path.is_file():
            try:
                memo = json.loads(memo_path.read_text())
                if memo["stats"] == stats:
                    _DIGESTS[seen] = memo["digest"]
                    return memo["digest"]
            except (ValueError, KeyError):
                pass
    total = hashlib.sha256()
    for p in files:
        total.update(f"{p.name}:{file_sha256(p)}\n".encode())
    digest = _DIGESTS[seen] = total.hexdigest()[:32]
    if memo_path is not None:
        atomic_write_json(memo_path, {"stats": stats, "digest": digest})
    return digest


def model_identity(spec: dict, memo_dir: str | Path | None = None) -> dict:
    """A model spec ({'name_or_path', 'gguf_file', 'tiny'}) as a path-free identity."""
    name = str(spec.get("name_or_path"))
    if name == "tiny":
        return {"tiny": spec.get("tiny")}
    if os.path.isdir(name):
        return {"local": content_digest(name, memo_dir, spec.get("gguf_file")), "gguf_file": spec.get("gguf_file")}
    return {"hub": name, "gguf_file": spec.get("gguf_file")}


def local_identity(path: str | Path, memo_dir: str | Path | None = None) -> dict:
    """A local folder or file as what it holds (its name and content digest), not where it is."""
    path = Path(path)
    if path.is_dir():
        return {"local": path.name, "digest": content_digest(path, memo_dir)}
    return {"local": path.name, "digest": content_digest(path.parent, memo_dir, only=path.name)}


# ---- job keys (atlantis.experiment.jobs: a job's state folder; the report's kept runs) ----
def settings_key(settings: dict) -> str:
    """The job key of a job's settings (job_settings), under this code's JOB_KEY_VERSION."""
    return cache_key({"settings": portable_settings(settings), "version": JOB_KEY_VERSION})


def portable_settings(settings: dict) -> dict:
    """Settings with every local path (a model or tokenizer folder, a label file) replaced by what it holds (its name
    and content digest): the same files reached from another checkout, worktree or machine are the same job, and
    a job's state is found there. A path that is not on this machine stays as it is. The recorded settings keep the
    paths, for a person to read."""

    def portable(value: str):
        if "/" in value and os.path.exists(value):
            return local_identity(value, os.environ.get("ATLANTIS_CACHE_DIR"))  # digests remembered there too
        return value

    return map_strings(settings, portable)


def run_job_key(metrics: dict) -> str | None:
    """A run's job key under this code: the one it recorded (same JOB_KEY_VERSION), else (runs from before keys
    were recorded) its settings hashed here, which needs the files they name; None when neither can be had."""
    recorded, settings = metrics.get("job_key") or {}, metrics.get("settings")
    if recorded.get("version") == JOB_KEY_VERSION:
        return recorded["key"]
    if isinstance(settings, dict) and all(os.path.exists(value) for value in local_paths(settings)):
        return settings_key(settings)
    return None


def local_paths(settings: dict) -> list[str]:
    """The absolute paths a job's settings name."""
    return [value for value in string_leaves(settings) if os.path.isabs(value)]
