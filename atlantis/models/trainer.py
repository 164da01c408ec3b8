"""The one place a Lightning Trainer is built, for the main model and for reference models alike."""

from __future__ import annotations

import lightning as L
import torch


def default_precision(accelerator: str = "auto") -> str:
    on_gpu = torch.cuda.is_available() and accelerator in ("auto", "gpu", "cuda")
    return "bf16-mixed" if on_gpu else "32-true"


def make_trainer(
    settings: dict,
    *,
    callbacks=(),
    logger=False,
    default_root_dir=None,
    strategy="auto",
    validate: bool = True,
    enable_model_summary: bool = True,
) -> L.Trainer:
    """A Trainer from a plain `trainer` settings dict (conf/trainer/*.yaml)."""
    accelerator = settings.get("accelerator", "auto")
    extra = {} if validate else {"limit_val_batches": 0}
    if validate:
        extra.update(
            val_check_interval=settings.get("val_check_interval"),
            check_val_every_n_epoch=settings.get("check_val_every_n_epoch", 1),
        )
    return L.Trainer(
        max_epochs=settings["max_epochs"],
        max_steps=settings.get("max_steps", -1),
        accumulate_grad_batches=settings.get("accumulate_grad_batches", 1),
        gradient_clip_val=settings.get("gradient_clip_val", 1.0),
        precision=settings.get("precision") or default_precision(accelerator),
        accelerator=accelerator,
        devices=settings.get("devices", "auto"),
        num_nodes=settings.get("num_nodes", 1),
        strategy=strategy,
        # The datamodule shards the global batches and the evaluation splits itself (atlantis.data.sampling), so
        # that N processes see one process's batches and score every example once.
        use_distributed_sampler=False,
        num_sanity_val_steps=0,
        log_every_n_steps=settings.get("log_every_n_steps", 10),
        callbacks=list(callbacks),
        logger=logger,
        enable_checkpointing=any(isinstance(c, L.pytorch.callbacks.ModelCheckpoint) for c in callbacks),
        default_root_dir=default_root_dir,
        enable_progress_bar=settings.get("enable_progress_bar", True),
        enable_model_summary=enable_model_summary,
        deterministic=settings.get("deterministic", False),
        **extra,
    )
