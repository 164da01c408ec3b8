"""Content-addressed cache for reference checkpoints and score tables.

Keys hash everything an entry depends on. Entries are written to a temporary folder and renamed into
place, with a manifest holding each file's SHA-256; an entry whose manifest is missing or does not
match is treated as absent and rebuilt.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from atlantis.utils.random_state import preserved_random_state

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"


# How the trained parameters are computed, not what they are: top_layers.cache_lower gives the same losses and
# gradients as the full pass (tests/models/test_module.py), so job and reference keys leave it out and a job
# run with it reuses the state and cached references of one run without it.
RUNTIME_PARAMS_KEYS = ("cache_lower",)


def result_params(params: dict) -> dict:
    """A params policy's options less those that only change how fast it trains."""
    return {k: v for k, v in params.items() if k not in RUNTIME_PARAMS_KEYS}


def cache_key(spec: dict) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:24]


def folder_beside(folder: Path, job_key: str) -> Path:
    """`<folder>~<job key>`: where a job's outputs go when its folder holds another job's (run folders, kept runs)."""
    return folder.with_name(f"{folder.name}~{job_key[:8]}")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def entry_lock(path: Path, label: str):
    """An exclusive lock on `path` (created if absent) for the block, across processes on this file system."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for another job that is computing %s", label)
            fcntl.flock(handle, fcntl.LOCK_EX)
        except OSError as error:  # a file system without locks (Lustre without -o flock, some NFS): build unlocked
            log.warning("no lock on %s (%s): jobs that need %s at once would each compute it", path, error, label)
            yield
            return
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class ArtifactCache:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.events: list[dict] = []  # what each lookup did: hit, computed or rebuilt (corrupt)

    def entry_dir(self, kind: str, spec: dict) -> Path:
        return self.root / kind / cache_key(spec)

    def work_dir(self, kind: str, spec: dict) -> Path:
        """Where a long build of this entry keeps its progress (a fit's checkpoints) until the entry is in place:
        a build stopped half-way resumes from it, and the entry's completion removes it."""
        return self.root / kind / f".{cache_key(spec)}.work"

    def _valid(self, path: Path) -> bool:
        manifest_path = path / MANIFEST
        if not manifest_path.is_file():
            return False
        try:
            manifest = json.loads(manifest_path.read_text())
            return all(file_sha256(path / name) == digest for name, digest in manifest["files"].items())
        except (OSError, ValueError, KeyError, TypeError):
            return False

    def get_or_create(self, kind: str, spec: dict, build: Callable[[Path], None], name: str | None = None) -> Path:
        """The folder of a complete entry; `build(tmp_dir)` writes its files when it is absent or corrupt.
        One process builds an entry at a time (jobs of a joblib or SLURM sweep sharing the cache): another that
        needs it waits, then reads it, instead of fitting the same reference into the same work folder."""
        path = self.entry_dir(kind, spec)
        label = name or kind
        if (hit := self._hit(path, label)) is not None:
            return hit
        with entry_lock(self.root / ".locks" / f"{kind}-{path.name}.lock", label):  # beside, not among, the entries
            if (hit := self._hit(path, label)) is not None:  # built by the process we waited for
                return hit
            return self._build(kind, spec, build, path, label)

    def _hit(self, path: Path, label: str) -> Path | None:
        if path.exists() and self._valid(path):
            log.info("cache hit: %s (%s)", label, path)
            self.events.append({"name": label, "key": path.name, "event": "hit"})
            return path
        return None

    def _build(self, kind: str, spec: dict, build: Callable[[Path], None], path: Path, label: str) -> Path:
        if path.exists():
            log.warning("cache entry %s is incomplete or corrupt; rebuilding it", path)
            shutil.rmtree(path, ignore_errors=True)
            event = "rebuilt"
        else:
            event = "computed"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.tmp-"))
        try:
            with preserved_random_state():  # computed or read, the job's random streams go on the same
                build(tmp)
            files = {p.name: file_sha256(p) for p in sorted(tmp.iterdir()) if p.is_file()}
            (tmp / MANIFEST).write_text(json.dumps({"spec": spec, "files": files}, indent=1, default=str))
            if path.exists():  # another job finished the same entry first: keep theirs
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                os.replace(tmp, path)
            shutil.rmtree(self.work_dir(kind, spec), ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.events.append({"name": label, "key": path.name, "event": event})
        return path

    def get_or_compute_json(self, kind: str, spec: dict, compute: Callable[[], object], name: str | None = None):
        """A JSON-serialisable value, computed once per spec."""
        holder = {}

        def build(tmp: Path) -> None:
            holder["value"] = compute()
            (tmp / "value.json").write_text(json.dumps(holder["value"]))

        path = self.get_or_create(kind, spec, build, name)
        if "value" in holder:
            return holder["value"]
        return json.loads((path / "value.json").read_text())
