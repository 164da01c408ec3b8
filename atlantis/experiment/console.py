"""A console a person can read: each log line once, no library deprecation noise, no advertising."""

from __future__ import annotations

import logging
import os
import warnings

LIBRARY_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric")
# Library notices that say nothing about the run.
_NOISE = ("💡 Tip", "litlogger", "LitLogger")


# Lightning's lines that repeat for every job and reference fit and say nothing a person acts on (`verbose=true`
# shows them): the device lines, the stepping-batches estimate, rank and seed notices, the end-of-fit notice.
_CHATTER = (
    "GPU available:", "TPU available:", "HPU available:", "LOCAL_RANK:", "Seed set to",
    "Loading `train_dataloader` to estimate number of stepping batches", "`Trainer.fit` stopped:",
    # the pipeline logs which checkpoint it resumes from or tests with
    "Restoring states from the checkpoint path", "Loaded model weights from the checkpoint",
)  # fmt: skip


class _DropNoise(logging.Filter):
    def __init__(self, tokens) -> None:
        super().__init__()
        self.tokens = tuple(tokens)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(token in message for token in self.tokens)


def quiet_libraries(verbose: bool = False) -> None:
    """Call after the logging set-up (Hydra's): libraries' own handlers would print every line a second time.
    Unless `verbose`, Lightning's per-job chatter is dropped too; warnings and errors always show."""
    import lightning  # noqa: F401  (its import adds the handlers removed here)

    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    for handler in logging.getLogger().handlers:
        handler.addFilter(_DropNoise(_NOISE if verbose else _NOISE + _CHATTER))
    # Deprecations inside the libraries are theirs to fix; the user cannot act on them.
    for category in (DeprecationWarning, FutureWarning, PendingDeprecationWarning):
        warnings.filterwarnings("ignore", category=category)
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    # References train without validation by design (signals/reference.py).
    warnings.filterwarnings("ignore", message=r".*defined a `validation_step` but have no `val_dataloader`.*")
    # Epoch metrics are computed from every rank's gathered records (RelationLM.gather_records): nothing to reduce.
    warnings.filterwarnings("ignore", message=r".*when logging on epoch level in distributed setting.*")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    if not verbose:
        hf_logging.disable_progress_bar()  # "Loading weights", "Writing model shards": every model load and save
        # The GGUF reader imports tqdm itself, past that switch: it gets transformers' own, which obeys it.
        from transformers import modeling_gguf_pytorch_utils

        modeling_gguf_pytorch_utils.tqdm = hf_logging.tqdm
        # a short epoch logs less often than log_every_n_steps: Lightning says so for every job
        warnings.filterwarnings("ignore", message=r".*is smaller than the logging interval.*")
