"""The reference model p_r: the small base fine-tuned on the training set, a named checkpoint, or k-fold
cross-fitted models (each example scored by a model that never saw it)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import lightning as L
import numpy as np
import torch

from atlantis.data.datamodule import FeatureDataset
from atlantis.models.module import RelationLM

log = logging.getLogger(__name__)
REFERENCE_KINDS = ("finetune", "pretrained", "crossfit")


def finetune_small(
    make_module: Callable[[], RelationLM],
    features: list[dict],
    collate,
    batch_size: int,
    max_epochs: int,
    accumulate_grad_batches: int = 1,
    seed: int = 0,
    precision: str | None = None,
):
    """Fine-tune a fresh small-base module on `features` with unit weights; returns the HF model."""
    L.seed_everything(seed, workers=True)
    module = make_module()
    loader = torch.utils.data.DataLoader(
        FeatureDataset([dict(f, weight=1.0) for f in features]),
        batch_size=batch_size,
        shuffle=True,
        collate_fn=collate,
    )
    on_gpu = torch.cuda.is_available()
    trainer = L.Trainer(
        max_epochs=max_epochs,
        accumulate_grad_batches=accumulate_grad_batches,
        gradient_clip_val=1.0,
        precision=precision or ("bf16-mixed" if on_gpu else "32-true"),
        logger=False,
        enable_checkpointing=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        enable_model_summary=False,
    )
    trainer.fit(module, train_dataloaders=loader)
    return module.model


def crossfit_folds(n: int, k: int, seed: int) -> list[np.ndarray]:
    """k disjoint index sets covering range(n), seeded."""
    if not 2 <= k <= n:
        raise ValueError(f"crossfit needs 2 <= folds <= number of examples ({n}), got {k}")
    return np.array_split(np.random.default_rng(seed).permutation(n), k)
