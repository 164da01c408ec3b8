"""The one place a Lightning Trainer is built, for the main model and for reference models alike."""

from __future__ import annotations

import logging
import time

import lightning as L
import torch

from atlantis.utils.progress import ProgressLog

log = logging.getLogger(__name__)


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
    what: str = "training",
) -> L.Trainer:
    """A Trainer from a plain `trainer` settings dict (conf/trainer/*.yaml). Without a progress bar, a line per epoch
    (`what` names the model trained) tells a log's reader how far the fit is."""
    accelerator = settings.get("accelerator", "auto")
    progress_bar = settings.get("enable_progress_bar", True)
    callbacks = [*callbacks, *([] if progress_bar else [EpochLog(what)])]
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
        enable_progress_bar=progress_bar,
        enable_model_summary=enable_model_summary,
        deterministic=settings.get("deterministic", False),
        **extra,
    )


class EpochLog(L.Callback):
    """What a progress bar shows, for a log file: one line per training epoch (its number, steps, last training
    loss, validation F1 when it validated, the time so far), and a line a minute inside a long epoch or test."""

    def __init__(self, what: str = "training"):
        self.what = what
        self.start = time.perf_counter()
        self.pace: ProgressLog | None = None

    def on_train_start(self, trainer, pl_module) -> None:
        self.start = time.perf_counter()

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        desc = f"{self.what}: epoch {trainer.current_epoch + 1}/{trainer.max_epochs}"
        self.pace = ProgressLog(desc, trainer.num_training_batches, "batches", log_end=False)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.is_global_zero and self.pace is not None:
            self.pace.update(batch_idx + 1)

    def on_test_start(self, trainer, pl_module) -> None:
        self.pace = ProgressLog("testing", sum(trainer.num_test_batches), "batches")

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if trainer.is_global_zero and self.pace is not None:
            self.pace.update(batch_idx + 1)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero:
            return
        metrics = trainer.callback_metrics
        parts = [f"{self.what}: epoch {trainer.current_epoch + 1}/{trainer.max_epochs}",
                 f"step {trainer.global_step}/{trainer.estimated_stepping_batches}"]  # fmt: skip
        if (loss := metrics.get("train/loss")) is not None:
            parts.append(f"train loss {float(loss):.4f}")
        if (f1 := metrics.get("val/f1")) is not None:
            parts.append(f"val F1 {float(f1):.4f}")
        log.info("%s, %.1f min", ", ".join(parts), (time.perf_counter() - self.start) / 60)
