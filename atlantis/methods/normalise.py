"""ATLANTIS importance weights in log space:  log W = log p_b^L - log p_b^S + log p_r, then normalised."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

TERMS = {"large": 1.0, "small": -1.0, "reference": 1.0}


RATIO_TERMS = ("large", "small")


def log_weights(scores: Mapping[str, np.ndarray], terms: Sequence[str], ratio_exponent: float = 1.0) -> np.ndarray:
    """Sum of the signed log-prob terms: large (+), small (-), reference (+). Never multiplies probabilities.

    ratio_exponent α scales the weak-to-strong ratio's terms alone: W = (p_b^L / p_b^S)^α · p_r (α = 1: the
    paper's; α = 0: the reference alone)."""
    unknown = set(terms) - set(TERMS)
    if unknown or not terms:
        raise ValueError(f"weight terms must be some of {list(TERMS)}, got {list(terms)}")
    scale = {t: ratio_exponent if t in RATIO_TERMS else 1.0 for t in terms}
    total = sum(scale[t] * TERMS[t] * np.asarray(scores[t], dtype=np.float64) for t in terms)
    return np.asarray(total, dtype=np.float64)


def _normalise_log(log_w: np.ndarray) -> np.ndarray:
    """exp(log_w) scaled to mean 1, computed stably (log-sum-exp)."""
    shifted = log_w - log_w.max()
    w = np.exp(shifted)
    return w / w.mean()


def normalise_weights(
    log_w: np.ndarray,
    labels: Sequence[str] | None = None,
    per_class: bool = False,
    temperature: float = 1.0,
    clip: Sequence[float] | None = None,
) -> np.ndarray:
    """Weights with mean 1 over the training set.

    temperature: log W / tau before normalising. per_class: mean 1 within each observed label (so no
    class gains or loses total mass). clip: [lo, hi] after normalising, then renormalised to mean 1.
    """
    log_w = np.asarray(log_w, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(log_w))
    if bad.size:
        raise ValueError(f"non-finite log-weights at positions {bad[:10].tolist()} (of {bad.size})")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    log_w = log_w / temperature
    if per_class:
        if labels is None:
            raise ValueError("per-class normalisation needs the labels")
        labels = np.asarray(labels)
        w = np.empty_like(log_w)
        for label in np.unique(labels):
            mask = labels == label
            w[mask] = _normalise_log(log_w[mask])
    else:
        w = _normalise_log(log_w)
    if clip is not None:
        lo, hi = clip
        if not 0 <= lo < hi:
            raise ValueError(f"clip must be [lo, hi] with 0 <= lo < hi, got {list(clip)}")
        w = np.clip(w, lo, hi)
        w = w / w.mean()
    return w


def effective_sample_size(w: np.ndarray) -> float:
    """ESS = (sum w)^2 / sum w^2: N for uniform weights, 1 when one example holds all the mass."""
    w = np.asarray(w, dtype=np.float64)
    return float(w.sum() ** 2 / (w**2).sum())
