"""Shared set-up for the benchmarks: models at real shapes (random weights), real or synthetic examples."""

from __future__ import annotations

import json
import os
import platform
import resource
import time
from pathlib import Path

import lightning as L
import torch

RESULTS = Path(__file__).resolve().parent / "results"

# Real architectures, randomly initialised: speed does not depend on the weights' values.
SHAPES = {
    "smollm2-135m": dict(
        model_type="llama",
        vocab_size=49152,
        hidden_size=576,
        intermediate_size=1536,
        num_hidden_layers=30,
        num_attention_heads=9,
        num_key_value_heads=3,
        tie_word_embeddings=True,
        rope_theta=100000.0,
    ),
    "qwen2-0.5b": dict(
        model_type="qwen2",
        vocab_size=151936,
        hidden_size=896,
        intermediate_size=4864,
        num_hidden_layers=24,
        num_attention_heads=14,
        num_key_value_heads=2,
        tie_word_embeddings=True,
        rope_theta=1000000.0,
    ),
    "qwen2-1.5b": dict(
        model_type="qwen2",
        vocab_size=151936,
        hidden_size=1536,
        intermediate_size=8960,
        num_hidden_layers=28,
        num_attention_heads=12,
        num_key_value_heads=2,
        tie_word_embeddings=True,
        rope_theta=1000000.0,
    ),
    "qwen2-7b": dict(
        model_type="qwen2",
        vocab_size=152064,
        hidden_size=3584,
        intermediate_size=18944,
        num_hidden_layers=28,
        num_attention_heads=28,
        num_key_value_heads=4,
        tie_word_embeddings=False,
        rope_theta=1000000.0,
    ),
}
# `--toy` runs: SmolLM2's architecture and vocabulary (its tokenizer's ids fit), two thin blocks. Code paths, not speed.
SHAPES["toy"] = dict(SHAPES["smollm2-135m"], hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                     num_attention_heads=2, num_key_value_heads=1)  # fmt: skip
# A `--toy` run (the smallest size: every code path in seconds; the tests run each script so) is not a
# measurement: it writes its results only to $ATLANTIS_BENCH_RESULTS_DIR, never to benchmarks/results.
TOY = {"on": False}


def parse_sized(parser, argv, **toy):
    """parse_args with a `--toy` flag that sets these smallest-size defaults (explicit options still win)."""
    parser.add_argument("--toy", action="store_true", help=f"smallest size, not a measurement: {toy or 'as is'}")
    args = parser.parse_args(argv)
    if args.toy:
        parser.set_defaults(**toy)
        args = parser.parse_args(argv)
        TOY["on"] = True
    return args


def build_shape(name: str, dtype=torch.float32, device="cpu", seed: int = 0):
    from transformers import AutoConfig, AutoModelForCausalLM

    spec = dict(SHAPES[name])
    config = AutoConfig.for_model(spec.pop("model_type"), max_position_embeddings=4096, **spec)
    config._attn_implementation = "sdpa"
    torch.manual_seed(seed)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    return model.eval()


def count_params(model, non_embedding: bool = True) -> int:
    total = sum(p.numel() for p in model.parameters())
    if non_embedding:
        total -= model.get_input_embeddings().weight.numel()
    return total


def tokenizer_and_examples(n_train: int, directed: bool = True, seed: int = 0):
    """SmolLM2's tokenizer and SemEval examples when the files are there, else the built-in set."""
    from atlantis.data.semeval import SemEvalReader
    from atlantis.data.splits import build_splits
    from atlantis.data.synthetic import SyntheticReader
    from atlantis.models.loading import load_tokenizer

    data_dir, models_dir = os.environ.get("ATLANTIS_DATA_DIR"), os.environ.get("ATLANTIS_MODELS_DIR")
    smollm = Path(models_dir or "-") / "smollm2-135m-instruct-gguf"
    if data_dir and (Path(data_dir) / "semeval2010_task8").is_dir() and smollm.is_dir():
        splits = SemEvalReader(directed=directed).load(seed)
        splits.train = splits.train[:n_train]
        return load_tokenizer(str(smollm)), splits, "semeval + SmolLM2 tokenizer (chat template)"
    splits = build_splits(SyntheticReader([n_train, 10, 10]), seed=seed)
    return load_tokenizer("builtin"), splits, "synthetic + built-in tokenizer"


def datamodule(tokenizer, splits, kind="causal", batch_size=16):
    from atlantis.data.datamodule import RelationDataModule

    dm = RelationDataModule(splits, tokenizer, kind, batch_size=batch_size, eval_batch_size=batch_size)
    dm.setup()
    return dm


def timed(fn, repeats: int = 1) -> tuple[float, object]:
    """Best wall time of `repeats` calls (seconds) and the last result."""
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


class StepTimer(L.Callback):
    """Wall time of every training step inside a Lightning Trainer (GPU work synchronised first)."""

    def __init__(self, skip: int = 0):
        self.skip, self.times = skip, []

    @staticmethod
    def _sync() -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    def on_train_batch_start(self, *args, **kwargs):
        self._sync()
        self._start = time.perf_counter()

    def on_train_batch_end(self, *args, **kwargs):
        self._sync()
        self.times.append(time.perf_counter() - self._start)

    def mean(self) -> float:
        """Mean step time after the first `skip` (warm-up) steps."""
        times = self.times[self.skip :]
        return sum(times) / len(times)


def peak_rss_mb() -> float:
    """This process's resident-memory high-water mark (VmHWM) in MB."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> bool:
    """Start a new high-water mark (Linux: writing 5 to clear_refs); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def cpu_matmul_gflops(n: int = 1536, repeats: int = 5) -> float:
    """Measured float32 matmul rate of this CPU with torch's threads: the ceiling for CPU scoring."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    seconds, _ = timed(lambda: a @ b, repeats)
    return 2 * n**3 / seconds / 1e9


def machine() -> dict:
    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def merge_results(path: Path, key: str, value) -> None:
    """Update one entry of a results JSON file (atomically), keeping the others; $ATLANTIS_BENCH_RESULTS_DIR
    takes the file instead when set (a toy run writes nowhere else)."""
    from atlantis.utils.io import atomic_write_json

    if os.environ.get("ATLANTIS_BENCH_RESULTS_DIR"):
        path = Path(os.environ["ATLANTIS_BENCH_RESULTS_DIR"]) / path.name
    elif TOY["on"]:
        print(f"(--toy: {key} not written to {path}; set ATLANTIS_BENCH_RESULTS_DIR to keep it)")
        return

    data = json.loads(path.read_text()) if path.is_file() else {}
    data[key] = value
    data["machine"] = machine()
    atomic_write_json(path, data)
    print(f"written: {path} ({key})")


def fit_steps(module, batches, skip: int = 0, accelerator: str = "cpu", precision: str = "32-true"):
    """Lightning fit over exactly these batches (no validation, logging or checkpoints) on one device, each step
    timed."""
    timer = StepTimer(skip)
    trainer = L.Trainer(
        max_steps=len(batches),
        precision=precision,
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        gradient_clip_val=1.0,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        callbacks=[timer],
        accelerator=accelerator,
    )
    trainer.fit(module, train_dataloaders=torch.utils.data.DataLoader(batches, batch_size=None))
    return timer, trainer
