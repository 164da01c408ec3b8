"""The `select` slot: which training examples a method trains on."""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from atlantis.methods.base import Select
from atlantis.methods.fisher import greedy_logdet

log = logging.getLogger(__name__)


@dataclass
class Selection:
    ids: list[str]  # in pick order
    report: dict | None = None  # written to selection.json when present
    gains: list[float] = field(default_factory=list)


def resolve_budget(budget: int | float, n: int) -> int:
    """A count (int) or a fraction of n (float in (0, 1])."""
    if isinstance(budget, float) and budget <= 1.0:
        if budget <= 0:
            raise ValueError(f"budget fraction must be in (0, 1], got {budget}")
        return int(round(budget * n))
    if int(budget) < 0:
        raise ValueError(f"budget must be >= 0, got {budget}")
    return min(int(budget), n)


def selection_report(data, ids: list[str], **extra) -> dict:
    """Class mix and share of corrupted labels in the subset against the full training set."""
    by_id = {e.id: e for e in data.examples}
    chosen = [by_id[i] for i in ids]
    full_mix, sub_mix = Counter(e.label for e in data.examples), Counter(e.label for e in chosen)
    return {
        "n_selected": len(ids),
        "n_train": len(data.examples),
        "noise_rate_selected": float(np.mean([e.is_noisy for e in chosen])) if chosen else None,
        "noise_rate_full": float(np.mean([e.is_noisy for e in data.examples])),
        "class_share": {
            label: {"selected": sub_mix[label] / max(len(chosen), 1), "full": full_mix[label] / len(data.examples)}
            for label in sorted(full_mix)
        },
        **extra,
        "ids": ids,
    }


class SelectAll(Select):
    """Every training example."""

    def __call__(self, data) -> Selection:
        return Selection([f["id"] for f in data.features])


class SelectRandom(Select):
    """A seeded uniform sample of `budget` examples (count or fraction): FisherSFT's baseline."""

    def __init__(self, budget: int | float = 0.25):
        self.budget = budget

    def __call__(self, data) -> Selection:
        ids = [f["id"] for f in data.features]
        n = resolve_budget(self.budget, len(ids))
        order = np.random.default_rng(data.seed).permutation(len(ids))[:n]
        picked = [ids[i] for i in order]
        return Selection(picked, selection_report(data, picked, selector="random", budget=self.budget))


class SelectFisher(Select):
    """FisherSFT: the `budget` examples whose last-layer embeddings maximise log det(λI + Σ X_iᵀ X_i).

    role: whose embeddings (the large base by default, the model that is fine-tuned); tokens: `target` (every
    supervised position) or `first` (the position predicting the first label token: prompt-only, immune to
    label noise); lambda_rel: λ relative to an average example's ‖X_i‖²/d.
    """

    def __init__(
        self,
        budget: int | float = 0.25,
        lambda_rel: float = 1.0,
        tokens: str = "target",
        role: str = "large",
        lazy: bool = True,
        refresh_every: int = 256,
    ):
        self.budget, self.lambda_rel, self.tokens, self.role = budget, lambda_rel, tokens, role
        self.lazy, self.refresh_every = lazy, refresh_every

    def __call__(self, data) -> Selection:
        blocks = data.signals.embeddings(self.role, self.tokens)
        n = resolve_budget(self.budget, len(blocks))
        start = time.perf_counter()
        result = greedy_logdet(blocks, n, self.lambda_rel, self.lazy, self.refresh_every)
        seconds = time.perf_counter() - start
        picked = [data.signals.ids[i] for i in result.order]
        log.info(
            "FisherSFT: %d of %d examples in %.1f s (%d gain evaluations)", n, len(blocks), seconds, result.evaluations
        )
        report = selection_report(
            data,
            picked,
            selector="fisher",
            budget=self.budget,
            role=self.role,
            tokens=self.tokens,
            lambda_rel=self.lambda_rel,
            lam=result.lam,
            logdet=result.logdet,
            seconds=seconds,
            evaluations=result.evaluations,
            embedding_dim=int(blocks[0].shape[1]),
            gains=result.gains,
        )
        return Selection(picked, report, result.gains)
