"""Is a weight set a good noise detector? AUROC, clean vs corrupted means, ESS, per-class mass, histogram."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torchmetrics.functional.classification import binary_auroc

from atlantis.methods.normalise import effective_sample_size


def clean_auroc(weights: Sequence[float], is_noisy: Sequence[bool]) -> float | None:
    """AUROC of the weight as a clean-vs-corrupted detector (1.0: every clean example outweighs every
    corrupted one; 0.5: no better than chance). None when only one group is present."""
    clean = torch.from_numpy(1 - np.asarray(is_noisy, dtype=np.int64))
    if clean.min() == clean.max():
        return None
    return float(binary_auroc(torch.from_numpy(np.asarray(weights, dtype=np.float64)), clean))


def weight_diagnostics(weights: Sequence[float], labels: Sequence[str], is_noisy: Sequence[bool]) -> dict:
    w = np.asarray(weights, dtype=np.float64)
    noisy = np.asarray(is_noisy, dtype=bool)
    labels = np.asarray(labels)
    per_class = {}
    for label in np.unique(labels):
        mask = labels == label
        per_class[str(label)] = {
            "frequency": float(mask.mean()),
            "mass": float(w[mask].sum() / w.sum()),
            "mean_weight": float(w[mask].mean()),
        }
    return {
        "n": int(w.size),
        "auroc_clean_vs_noisy": clean_auroc(w, noisy),
        "mean_weight_clean": float(w[~noisy].mean()) if (~noisy).any() else None,
        "mean_weight_noisy": float(w[noisy].mean()) if noisy.any() else None,
        "ess": effective_sample_size(w),
        "ess_fraction": effective_sample_size(w) / w.size,
        "min": float(w.min()),
        "max": float(w.max()),
        "quantiles": {q: float(np.quantile(w, float(q))) for q in ("0.01", "0.1", "0.5", "0.9", "0.99")},
        "per_class": per_class,
    }


def plot_weights(path: Path, weights, labels, is_noisy, title: str) -> None:
    """Histogram of log10 weights for clean and corrupted examples, and mass vs frequency per class."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    w = np.asarray(weights, dtype=np.float64)
    noisy = np.asarray(is_noisy, dtype=bool)
    log_w = np.log10(np.clip(w, 1e-12, None))
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    bins = np.linspace(log_w.min(), log_w.max() + 1e-9, 40)
    left.hist(log_w[~noisy], bins=bins, alpha=0.6, label=f"clean ({(~noisy).sum()})")
    if noisy.any():
        left.hist(log_w[noisy], bins=bins, alpha=0.6, label=f"corrupted ({noisy.sum()})")
    left.set_xlabel("log10 weight (below 1e-12 drawn at -12)")
    left.set_ylabel("examples")
    left.legend()
    diag = weight_diagnostics(w, labels, noisy)
    classes = list(diag["per_class"])
    x = np.arange(len(classes))
    right.bar(x - 0.2, [diag["per_class"][c]["frequency"] for c in classes], 0.4, label="frequency")
    right.bar(x + 0.2, [diag["per_class"][c]["mass"] for c in classes], 0.4, label="weight mass")
    right.set_xticks(x, classes, rotation=60, ha="right", fontsize=7)
    right.legend()
    auroc = diag["auroc_clean_vs_noisy"]
    fig.suptitle(
        f"{title} | ESS {diag['ess']:.0f}/{diag['n']} | AUROC " + ("n/a" if auroc is None else f"{auroc:.3f}")
    )
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
