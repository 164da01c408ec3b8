"""SSR-PU (Wang et al., EMNLP 2022): positive-unlabelled learning for relations left unannotated, on label-set scores.

Per relation r, over a batch: positives P_r = examples labelled r, unlabelled U_r = every other example (NA
included). With the ranking score s_r = log q_r − log q_NA (the relation's label score against the negative
label's) and the squared loss ℓ(s, y) = ¼ (y·s − m)²:

    π_o = e·π_l (prior shift: e times the labelled prior),  π_u = (π_o − π_l) / (1 − π_l),  w = √((1 − π_o)/π_o)
    R⁻ = (1 − π_o)/(1 − π_u) · mean_U ℓ(s, −1) − π_u (1 − π_o)/(1 − π_u) · mean_P ℓ(s, −1)
    R⁺ = π_o · w · mean_P ℓ(s, +1)
    risk = R⁻ + R⁺, or −γ R⁻ when R⁻ < β (the non-negative correction); the loss is Σ_r risk_r.

As coded in www-Ye/SSR-PU (`model.py`, isrank=1, margin 0.25, β = 0, γ = 1; e = 3 for incomplete DocRED).
Prediction keeps every relation whose score is above the negative label's (the threshold rule:
atlantis.models.decoding.relations_above_threshold, which every document-level job uses).

Here every training instance carries one label: a pair with two relations is two instances, and each counts
as unlabelled for the other's relation (SSR-PU's multi-hot rows would not). The priors are the instance shares.
"""

from __future__ import annotations

import torch

from atlantis.methods.base import Loss

EPS = 1e-6


def squared_loss(s: torch.Tensor, y: float, margin: float) -> torch.Tensor:
    return 0.25 * (y * s - margin) ** 2


def _mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Column means of `values` [B, C] over the rows where `mask` [B, C] holds; 0 where none does."""
    count = mask.sum(dim=0)
    return (values * mask).sum(dim=0) / count.clamp(min=1)


def ssr_pu_risk(
    scores: torch.Tensor,
    positive: torch.Tensor,
    negative_index: int,
    prior_labelled: torch.Tensor,
    prior_shift: float = 3.0,
    margin: float = 0.25,
    beta: float = 0.0,
    gamma: float = 1.0,
) -> torch.Tensor:
    """Σ_r risk_r (a scalar) from label scores [B, C], observed labels `positive` [B, C] (bool) and the labelled
    priors π_l [C]; the negative label's column is the threshold and carries no risk of its own."""
    keep = torch.ones(scores.shape[1], dtype=torch.bool, device=scores.device)
    keep[negative_index] = False
    s = (scores - scores[:, negative_index : negative_index + 1])[:, keep]
    pos = positive[:, keep].to(s.dtype)
    unl = 1.0 - pos
    pi_l = prior_labelled.to(s.device, s.dtype)[keep].clamp(EPS, 1 - EPS)
    pi_o = (prior_shift * pi_l).clamp(EPS, 1 - EPS)
    pi_u = ((pi_o - pi_l) / (1 - pi_l)).clamp(min=0.0)
    w = torch.sqrt((1 - pi_o) / pi_o)
    negative_on_positives = _mean(squared_loss(s, -1.0, margin), pos)
    risk_negative = (1 - pi_o) / (1 - pi_u) * _mean(squared_loss(s, -1.0, margin), unl) - (
        pi_u * (1 - pi_o) / (1 - pi_u) * negative_on_positives
    )
    risk_positive = pi_o * w * _mean(squared_loss(s, 1.0, margin), pos)
    risk = torch.where(risk_negative < beta, -gamma * risk_negative, risk_negative + risk_positive)
    return risk.sum()


class SSRPULoss(Loss):
    """`method/loss=ssr_pu`: SSR-PU's risk on every label's score instead of the target's NLL.

    Each step scores all C labels of every example (C forward passes of the target side: about C× an SFT
    step). Priors π_l are each label's share of the training instances, fixed before training. The risk has no
    per-example weights, so it composes with `weights=unit` only."""

    uses_weights = False

    def __init__(self, prior_shift: float = 3.0, margin: float = 0.25, beta: float = 0.0, gamma: float = 1.0):
        if prior_shift < 1:
            raise ValueError(
                f"prior_shift (e) must be >= 1 (the true prior is e x the labelled one), got {prior_shift}"
            )
        self.prior_shift, self.margin, self.beta, self.gamma = prior_shift, margin, beta, gamma
        self.prior_labelled: torch.Tensor | None = None

    def prepare(self, data) -> None:
        counts = torch.zeros(len(data.labels), dtype=torch.float64)
        for feature in data.features:
            counts[feature["label_index"]] += 1
        self.prior_labelled = counts / max(1, len(data.features))

    def __call__(self, module, batch: dict) -> tuple[torch.Tensor, dict]:
        negative = module.hparams.negative_label
        if negative not in module.labels:
            raise ValueError("SSR-PU's loss needs the dataset's negative label as its threshold")
        scores = module.label_scores(batch)
        real = ~batch["padding"].to(scores.device) if "padding" in batch else slice(None)
        if not scores[real].shape[0]:  # a share that only pads: no example, no risk (and a graph for DDP)
            return scores.sum() * 0.0, {}
        return self.risk(scores[real], batch["label_index"].to(scores.device)[real], module.labels.index(negative)), {}

    def risk(self, scores: torch.Tensor, label_index: torch.Tensor, negative_index: int) -> torch.Tensor:
        if self.prior_labelled is None:
            raise RuntimeError("SSR-PU priors are unset: prepare(data) runs before training")
        positive = torch.nn.functional.one_hot(label_index, scores.shape[1]).bool()
        return ssr_pu_risk(
            scores, positive, negative_index, self.prior_labelled, self.prior_shift, self.margin, self.beta, self.gamma
        )
