"""The `weights` slot: a loss weight per training example, fixed before training or recomputed per step."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from atlantis.methods.normalise import TERMS, log_weights, normalise_weights


@dataclass
class WeightSet:
    weights: dict[str, float]  # by example id, mean 1 over the trained examples
    scores: dict[str, np.ndarray] = field(default_factory=dict)  # the log-prob terms behind them, per example


class UnitWeights:
    """Every example weighs 1 (plain SFT)."""

    def example_weights(self, data) -> WeightSet | None:
        return None

    def columns(self, data) -> dict[str, dict[str, float]]:
        return {}

    def step_weighting(self):
        return None


class ImportanceWeights(UnitWeights):
    """ATLANTIS: log W = Σ ± log p_role(y|x) over `terms` (large +, small −, reference +), then normalised.

    reduction: sum (sequence log-prob), mean (per token) or label_set (posterior over the label set);
    per_class: mean 1 within each observed label; temperature: log W / τ; clip: [lo, hi], then mean 1 again.
    Weights are normalised over the examples trained on (a selected subset, if any).
    """

    def __init__(
        self,
        terms=("large", "small", "reference"),
        reduction: str = "sum",
        per_class: bool = False,
        temperature: float = 1.0,
        clip=None,
    ):
        unknown = set(terms) - set(TERMS)
        if unknown or not terms:
            raise ValueError(f"weight terms must be some of {list(TERMS)}, got {list(terms)}")
        self.terms, self.reduction = tuple(terms), reduction
        self.per_class, self.temperature, self.clip = per_class, temperature, clip

    def example_weights(self, data) -> WeightSet:
        positions = data.signal_positions()
        scores = {t: data.signals.sequence_logprobs(t, self.reduction)[positions] for t in self.terms}
        log_w = log_weights(scores, self.terms)
        labels = [f["label_index"] for f in data.features]
        w = normalise_weights(log_w, labels, self.per_class, self.temperature, self.clip)
        ids = [f["id"] for f in data.features]
        return WeightSet(dict(zip(ids, w.tolist(), strict=True)), {"log_weight": log_w, **scores})


class IwSftWeights(UnitWeights):
    """iw-SFT: each sequence weighted by p_θ(y|x) / p_θ0(y|x), the model's own gap to its frozen start,
    recomputed every step from the training forward pass and clamped to `clip`."""

    def __init__(self, clip=(0.1, 10.0)):
        lo, hi = clip
        if not 0 <= lo < hi:
            raise ValueError(f"clip must be [lo, hi] with 0 <= lo < hi, got {list(clip)}")
        self.clip = (float(lo), float(hi))

    def columns(self, data) -> dict[str, dict[str, float]]:
        start = data.signals.sequence_logprobs("large", "sum")[data.signal_positions()]
        return {"start_logp": dict(zip([f["id"] for f in data.features], start.tolist(), strict=True))}

    def step_weighting(self):
        return self

    def step_weight(self, nll: torch.Tensor, n_targets: torch.Tensor, batch: dict) -> torch.Tensor:
        logp_now = -nll * n_targets
        return torch.exp(logp_now - batch["start_logp"].to(logp_now.dtype)).clamp(*self.clip)
