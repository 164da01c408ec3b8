"""The reference model p_r: the small base fine-tuned on the training set, a named checkpoint, k-fold
cross-fitted models (each example scored by a model that never saw it), or the small base fine-tuned on a
trusted seed of gold labels (atlantis.data.trusted)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import lightning as L
import numpy as np
import torch

from atlantis.data.datamodule import FeatureDataset
from atlantis.models.trainer import make_trainer

log = logging.getLogger(__name__)
REFERENCE_KINDS = ("finetune", "pretrained", "crossfit", "trusted")


def finetune_small(make_module: Callable, features: list[dict], collate, settings: dict, seed: int = 0):
    """Fine-tune a fresh small-base module on `features` with unit weights; returns the HF model.

    settings: the trainer settings (batch_size, max_epochs, accumulate_grad_batches, ...)."""
    L.seed_everything(seed, workers=True)
    module = make_module()
    loader = torch.utils.data.DataLoader(
        FeatureDataset([dict(f, weight=1.0) for f in features]),
        batch_size=settings["batch_size"],
        shuffle=True,
        collate_fn=collate,
    )
    module.params_policy.prepare(module, loader)
    # One process (rank zero computes the references; the job's strategy and devices are for the main model).
    trainer = make_trainer(
        dict(settings, devices=1, num_nodes=1), validate=False, enable_model_summary=False, what="small model"
    )
    trainer.fit(module, train_dataloaders=loader)
    return module.params_policy.merge(module.model)  # adapters are folded in: the cache holds a plain model


def crossfit_folds(n: int, k: int, seed: int) -> list[np.ndarray]:
    """k disjoint index sets covering range(n), seeded."""
    if not 2 <= k <= n:
        raise ValueError(f"crossfit needs 2 <= folds <= number of examples ({n}), got {k}")
    return np.array_split(np.random.default_rng(seed).permutation(n), k)
