"""Gold loss correction (GLC; Hendrycks et al., NeurIPS 2018): estimate the label corruption from a trusted
seed, then train through it.

1. A model trained on the weak labels is run on the trusted examples: Ĉ[i, j] = mean of its p(ỹ = j | x) over
   the trusted examples whose gold label is i, an estimate of p(weak label j | true label i).
2. The model trained is a classifier over the label set (softmax of every candidate label's sequence log-prob):
   a weak example's loss is −log Σ_i p(i | x) Ĉ[i, ỹ] (the forward-corrected likelihood of its weak label), a
   trusted example's the plain −log p(y | x).
The weak-label model is a base fine-tuned on the weak examples only (never the trusted ones): by default the small
base, as the job's reference trains (cheap: the estimate needs a model of the noise, not the strongest model);
`estimator=large`, the large base trained as the job trains it, the same network as in Hendrycks et al.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from atlantis.methods.base import Loss
from atlantis.signals.scoring import label_set_posterior

log = logging.getLogger(__name__)


def corruption_matrix(weak_model_probs: np.ndarray, gold: np.ndarray, n_classes: int) -> np.ndarray:
    """Ĉ [C, C]: row i the mean of the weak-label model's probabilities [K, C] over the trusted examples of gold
    class i; a class without a trusted example gets the identity row (its labels are taken as given)."""
    probs = np.asarray(weak_model_probs, dtype=np.float64)
    matrix = np.eye(n_classes)
    for i in range(n_classes):
        rows = probs[np.asarray(gold) == i]
        if len(rows):
            matrix[i] = rows.mean(axis=0)
    return matrix


def realised_corruption(clean: np.ndarray, given: np.ndarray, n_classes: int) -> np.ndarray:
    """C [C, C]: row i the share of the weak examples of clean class i given each label, the matrix Ĉ estimates
    (known only where the clean labels are, as in a study); a class without a weak example gets the identity row."""
    counts = np.zeros((n_classes, n_classes))
    np.add.at(counts, (np.asarray(clean), np.asarray(given)), 1)
    totals = counts.sum(axis=1, keepdims=True)
    return np.where(totals > 0, counts / np.maximum(totals, 1), np.eye(n_classes))


def corruption_report(estimated: np.ndarray, realised: np.ndarray, n_trusted: int) -> dict:
    """How far Ĉ is from the corruption the weak labels have: mean diagonals, and each row's total variation
    distance (half its L1 gap, in [0, 1]) averaged over classes."""
    return {
        "n_trusted": n_trusted,
        "mean_diagonal_estimated": float(np.diag(estimated).mean()),
        "mean_diagonal_realised": float(np.diag(realised).mean()),
        "mean_row_tv_distance": float(0.5 * np.abs(estimated - realised).sum(axis=1).mean()),
        "estimated": np.round(estimated, 4).tolist(),
        "realised": np.round(realised, 4).tolist(),
    }


def glc_example_loss(
    label_scores: torch.Tensor, observed: torch.Tensor, trusted: torch.Tensor, corruption: torch.Tensor
) -> torch.Tensor:
    """[B] −log Σ_i p(i|x) Ĉ[i, ỹ] for weak rows, −log p(y|x) for trusted rows; p = softmax of the label scores
    [B, C], `observed` [B] the given label, `trusted` [B] bool, `corruption` Ĉ [C, C]."""
    log_p = torch.log_softmax(label_scores.float(), dim=1)
    log_c = torch.log(corruption.to(log_p.device, log_p.dtype).clamp(min=1e-12))
    corrected = torch.logsumexp(log_p + log_c[:, observed].T, dim=1)  # log p(ỹ | x) through the noise
    plain = log_p.gather(1, observed[:, None]).squeeze(1)
    return -torch.where(trusted.to(log_p.device), plain, corrected)


class GLCLoss(Loss):
    """`method/loss=glc`: the corrected loss above, weighted per example like the NLL (sum_i w_i ℓ_i / |B|).
    Needs trusted.per_class > 0. Each step scores all C labels (about C× an SFT step, as SSR-PU)."""

    CORRUPTIONS = ("estimated", "realised")
    ESTIMATORS = ("small", "large")

    def __init__(self, corruption: str = "estimated", estimator: str = "small"):
        """`corruption`: `estimated` (GLC: Ĉ from the trusted seed) or `realised`, an oracle for studies only: the
        weak labels' own corruption matrix, read from their clean labels, which bounds what a better estimate of
        Ĉ could give. `estimator`: the base whose fine-tune on the weak labels estimates Ĉ (`small` or `large`)."""
        if corruption not in self.CORRUPTIONS:
            raise ValueError(f"GLC's corruption must be one of {self.CORRUPTIONS}, got {corruption!r}")
        if estimator not in self.ESTIMATORS:
            raise ValueError(f"GLC's estimator must be one of {self.ESTIMATORS}, got {estimator!r}")
        self.source, self.estimator = corruption, estimator
        self.corruption: torch.Tensor | None = None
        self.trusted_ids: set[str] = set()

    def prepare(self, data) -> dict:
        if not data.trusted:
            raise ValueError(
                "GLC estimates the label corruption on a trusted seed, and this job has none: set trusted.per_class=k "
                "(k gold-labelled examples per class)"
            )
        table = data.signals.trusted_label_sets_from_weak_model(self.estimator)  # by id (that model's encoding)
        scored = [f for f in data.trusted if f["id"] in table]
        probs = np.exp(label_set_posterior(np.array([table[f["id"]] for f in scored])))
        gold = np.array([f["label_index"] for f in scored])
        matrix = corruption_matrix(probs, gold, len(data.labels))
        self.trusted_ids = data.trusted_ids()
        index = {label: i for i, label in enumerate(data.labels)}
        weak = [e for e in data.examples if e.id not in self.trusted_ids]
        clean, given = ([index[getattr(e, k)] for e in weak] for k in ("clean_label", "label"))
        realised = realised_corruption(clean, given, len(data.labels))
        report = corruption_report(matrix, realised, len(gold))
        log.info(
            "GLC: corruption matrix from %d trusted examples (%s weak-label model), mean diagonal %.3f (the weak "
            "labels' own: %.3f; mean row distance %.3f)", len(gold), self.estimator, report["mean_diagonal_estimated"],
            report["mean_diagonal_realised"], report["mean_row_tv_distance"],
        )  # fmt: skip
        if self.source == "realised":
            log.info("GLC trains through the weak labels' realised corruption matrix (an oracle), not the estimate")
        self.corruption = torch.tensor(realised if self.source == "realised" else matrix, dtype=torch.float32)
        return {**report, "used": self.source, "estimator": self.estimator}

    def __call__(self, module, batch: dict) -> tuple[torch.Tensor, dict]:
        if self.corruption is None:
            raise RuntimeError("GLC's corruption matrix is unset: prepare(data) runs before training")
        scores = module.label_scores(batch)
        observed = batch["label_index"].to(scores.device)
        trusted = torch.tensor([i in self.trusted_ids for i in batch["ids"]], dtype=torch.bool, device=scores.device)
        losses = glc_example_loss(scores, observed, trusted, self.corruption)
        # the observed label's mean token NLL, for the weights slot's per-step rules (small-loss, ...)
        n_targets = (batch["labels"] != -100).sum(dim=1).to(scores.device)
        nll = -scores.gather(1, observed[:, None]).squeeze(1) / n_targets.clamp(min=1)
        weights = module.batch_weights(nll, n_targets, batch).to(losses.device, losses.dtype)
        loss = (weights * losses).sum() / module.loss_denominator(batch)
        return loss, {"train/glc_loss": losses.detach().mean()}
