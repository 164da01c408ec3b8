"""The `weights` slot: a loss weight per training example, fixed before training or recomputed per step."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np
import torch

from atlantis.methods.base import Weights
from atlantis.methods.normalise import TERMS, log_weights, normalise_weights
from atlantis.utils.distributed import gather_batch


@dataclass
class WeightSet:
    weights: dict[str, float]  # by example id, mean 1 over the trained examples
    scores: dict[str, np.ndarray] = field(default_factory=dict)  # the log-prob terms behind them, per example


class UnitWeights(Weights):
    """Every example weighs 1 (plain SFT): the base class's hooks as they are."""


def padding_rows(batch: dict, like: torch.Tensor) -> torch.Tensor:
    """[B] the rows that only fill a rank's empty share of a global batch (never real examples)."""
    padding = batch.get("padding")
    return (
        padding.to(like.device)
        if padding is not None
        else torch.zeros(like.shape[0], dtype=torch.bool, device=like.device)
    )


class ImportanceWeights(Weights):
    """ATLANTIS: log W = Σ ± log p_role(y|x) over `terms` (large +, small −, reference +), then normalised.

    reduction: sum (sequence log-prob), mean (per token) or label_set (posterior over the label set);
    per_class: mean 1 within each observed label; temperature: log W / τ; clip: [lo, hi], then mean 1 again;
    ratio_exponent α: W = (p_b^L / p_b^S)^α · p_r (the ratio's terms alone scaled in log space).
    Weights are normalised over the examples trained on (a selected subset, if any).
    """

    def __init__(
        self,
        terms=("large", "small", "reference"),
        reduction: str = "sum",
        per_class: bool = False,
        temperature: float = 1.0,
        clip=None,
        ratio_exponent: float = 1.0,
    ):
        unknown = set(terms) - set(TERMS)
        if unknown or not terms:
            raise ValueError(f"weight terms must be some of {list(TERMS)}, got {list(terms)}")
        self.terms, self.reduction = tuple(terms), reduction
        self.per_class, self.temperature, self.clip = per_class, temperature, clip
        self.ratio_exponent = float(ratio_exponent)

    def example_weights(self, data) -> WeightSet:
        data.signals.check_comparable(self.terms, self.reduction)
        positions = data.signal_positions()
        scores = {t: data.signals.sequence_logprobs(t, self.reduction)[positions] for t in self.terms}
        log_w = log_weights(scores, self.terms, self.ratio_exponent)
        labels = [f["label_index"] for f in data.features]
        w = normalise_weights(log_w, labels, self.per_class, self.temperature, self.clip)
        ids = [f["id"] for f in data.features]
        return WeightSet(dict(zip(ids, w.tolist(), strict=True)), {"log_weight": log_w, **scores})


class IwSftWeights(Weights):
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

    def step_weight(self, nll: torch.Tensor, n_targets: torch.Tensor, batch: dict, **_) -> torch.Tensor:
        logp_now = -nll * n_targets
        return torch.exp(logp_now - batch["start_logp"].to(logp_now.dtype)).clamp(*self.clip)


class SmallLossWeights(Weights):
    """Small-loss selection (Co-teaching's rule, one model): in every batch only the fraction
    R(T) = 1 - forget_rate * min(T / T_k, 1) with the smallest sequence loss trains; T in epochs (fractional),
    T_k = `num_gradual` epochs (default 0.3 x max_epochs: presets run 3-8 epochs, not Co-teaching's 200).
    The kept examples' loss is averaged over the kept ones (weight B / kept), at least one is kept; an example
    weight from elsewhere multiplies in, but the choice is made on the unweighted loss.
    """

    def __init__(self, forget_rate: float = 0.2, num_gradual: float | None = None, exponent: float = 1.0):
        if not 0 <= forget_rate < 1:
            raise ValueError(f"forget_rate must be in [0, 1), got {forget_rate}")
        self.forget_rate, self.num_gradual, self.exponent = forget_rate, num_gradual, exponent
        self.checked = False  # the batch size is checked on the first step

    def keep_rate(self, epoch: float, max_epochs: int = 10) -> float:
        gradual = self.num_gradual if self.num_gradual is not None else 0.3 * max_epochs
        ramp = min(epoch / gradual, 1.0) if gradual > 0 else 1.0
        return 1.0 - self.forget_rate * ramp**self.exponent

    def step_weight(self, nll, n_targets, batch, *, epoch: float = 0.0, max_epochs: int = 10, **_) -> torch.Tensor:
        # Under DDP the rule ranks the whole global batch, as one process would, and keeps this rank's share; a
        # padding row (a share left empty, or a gold example that weighs 1) ranks last and counts for nothing.
        sequence_loss = (nll * n_targets).masked_fill(padding_rows(batch, nll), float("inf"))  # Co-teaching's loss
        sequence_loss, mine = gather_batch(sequence_loss)
        size = int(torch.isfinite(sequence_loss).sum())
        if not self.checked:  # once, on a full batch: a short last one (or one of gold rows) may keep them all
            self.checked = True
            rows = sequence_loss.numel()
            if rows - round((1 - self.forget_rate) * rows) < 1:
                raise ValueError(
                    f"small-loss with forget_rate {self.forget_rate} drops nothing from batches of {rows}: it "
                    "chooses within each micro-batch (gradient accumulation does not help); raise trainer.batch_size"
                )
        if size == 0:  # every row weighs 1 elsewhere (gold) or is padding: nothing to choose among
            return torch.zeros_like(nll)
        keep = max(1, round(self.keep_rate(epoch, max_epochs) * size))
        kept = torch.argsort(sequence_loss, stable=True)[:keep]
        mask = torch.zeros_like(sequence_loss)
        mask[kept] = size / keep
        return mask[mine]


class LossTruncationWeights(Weights):
    """Loss truncation (Kang & Hashimoto, ACL 2020; ddkang/loss_dropper): drop the examples whose sequence
    loss (mean over its target tokens, as the reference code) is above the (1 - drop_rate) percentile of the last `recompute` losses seen; nothing is dropped
    before `min_count` losses were seen; the cut-off is recomputed every `recompute` losses. Dropped rows
    count as zeros in the batch mean. min_count = recompute = min(10000, N) by default (N: training set).
    A batch is judged by the cut-off computed from the losses before it.
    The loss buffer lives in memory: a resumed run starts it again (no drop for its first min_count losses).
    """

    def __init__(self, drop_rate: float = 0.2, min_count: int | None = None, recompute: int | None = None):
        if not 0 <= drop_rate < 1:
            raise ValueError(f"drop_rate must be in [0, 1), got {drop_rate}")
        self.drop_rate, self.min_count, self.recompute = drop_rate, min_count, recompute
        self.seen, self.buffer, self.cutoff = 0, None, None

    def columns(self, data) -> dict[str, dict[str, float]]:
        n = min(10000, len(data.features))  # the training set is known here, before the first step
        self.min_count = self.min_count if self.min_count is not None else n
        self.recompute = self.recompute if self.recompute is not None else n
        return {}

    def step_weight(self, nll, n_targets, batch, **_) -> torch.Tensor:
        if self.min_count is None or self.recompute is None:
            raise ValueError("loss truncation needs min_count and recompute (columns(data) sets them from N)")
        # Every rank keeps the same buffer: the stream of the global batches' losses, in one process's order.
        joined, mine = gather_batch(nll.detach().float().masked_fill(padding_rows(batch, nll), float("inf")))
        sequence_loss = joined.cpu()  # per sequence, its mean token loss (as loss_dropper)
        mask = torch.ones_like(nll)
        if self.cutoff is not None:
            mask = (sequence_loss[mine] < self.cutoff).to(nll.dtype).to(nll.device)
        if self.buffer is None:
            self.buffer = deque(maxlen=self.recompute)
        for value in sequence_loss[torch.isfinite(sequence_loss)].tolist():  # one at a time, as loss_dropper does
            self.buffer.append(value)
            self.seen += 1
            if self.seen >= self.min_count and self.seen % self.recompute == 0:
                self.cutoff = float(np.percentile(self.buffer, 100 * (1 - self.drop_rate)))
        return mask
