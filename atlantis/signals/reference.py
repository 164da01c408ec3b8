"""The reference model p_r: the small base fine-tuned on the training set, a named checkpoint, k-fold
cross-fitted models (each example scored by a model that never saw it), or the small base fine-tuned on a
trusted seed of gold labels (atlantis.data.trusted)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import lightning as L
import numpy as np
import torch

from atlantis.data.datamodule import FeatureDataset
from atlantis.models.trainer import make_trainer

log = logging.getLogger(__name__)
REFERENCE_KINDS = ("finetune", "pretrained", "crossfit", "trusted")


def finetune(
    make_module: Callable,
    features: list[dict],
    collate,
    settings: dict,
    seed: int = 0,
    work_dir: Path | None = None,
    what: str = "small model",
):
    """Fine-tune a fresh module (`make_module()`: a small-base reference, or GLC's weak-label model) on `features`
    with unit weights; returns the HF model.

    settings: the trainer settings (batch_size, max_epochs, accumulate_grad_batches, ...). With `work_dir`, the fit
    saves a checkpoint there at every epoch's end and starts from the last one it finds: a fit stopped in its third
    epoch (a cross-fitted fold on 4,000 sentences is hours on a CPU) goes on from the second's end, exactly as an
    uninterrupted one would (the module's checkpoint holds the random states of the next epoch's order)."""
    L.seed_everything(seed, workers=True)
    module = make_module()
    loader = torch.utils.data.DataLoader(
        FeatureDataset([dict(f, weight=1.0) for f in features]),
        batch_size=settings["batch_size"],
        shuffle=True,
        collate_fn=collate,
    )
    module.params_policy.prepare(module, loader)
    callbacks, resume_from = [], None
    if work_dir is not None:
        checkpoint = EpochCheckpoint(work_dir)
        callbacks.append(checkpoint)
        if checkpoint.path.is_file():
            resume_from = str(checkpoint.path)
            log.info("%s: resuming from %s", what, resume_from)
    # One process (rank zero computes the references; the job's strategy and devices are for the main model).
    trainer = make_trainer(
        dict(settings, devices=1, num_nodes=1),
        callbacks=callbacks,
        validate=False,
        enable_model_summary=False,
        what=what,
    )
    trainer.fit(module, train_dataloaders=loader, ckpt_path=resume_from, weights_only=True)
    return module.params_policy.merge(module.model)  # adapters are folded in: the cache holds a plain model


class EpochCheckpoint(L.Callback):
    """`last.ckpt` in `folder` at the end of every training epoch, written whole or not at all (a temporary file,
    renamed): a piece killed while it writes keeps the epoch before."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / "last.ckpt"

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".partial")
        trainer.save_checkpoint(partial, weights_only=False)  # the optimizer and loops too: a fit resumes from it
        os.replace(partial, self.path)


def crossfit_folds(n: int, k: int, seed: int) -> list[np.ndarray]:
    """k disjoint index sets covering range(n), seeded."""
    if not 2 <= k <= n:
        raise ValueError(f"crossfit needs 2 <= folds <= number of examples ({n}), got {k}")
    return np.array_split(np.random.default_rng(seed).permutation(n), k)
