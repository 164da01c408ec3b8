"""A console a person can read: each log line once, no library deprecation noise, no advertising."""

from __future__ import annotations

import logging
import os
import warnings

LIBRARY_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric")
# Library notices that say nothing about the run.
_NOISE = ("💡 Tip", "litlogger", "LitLogger")


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(token in message for token in _NOISE)


def quiet_libraries() -> None:
    """Call after the logging set-up (Hydra's): libraries' own handlers would print every line a second time."""
    import lightning  # noqa: F401  (its import adds the handlers removed here)

    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    for handler in logging.getLogger().handlers:
        handler.addFilter(_DropNoise())
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
