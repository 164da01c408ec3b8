"""Confident learning (Northcutt et al., 2021) with the `cleanlab` package: out-of-fold label probabilities
from the cross-fitted reference flag the examples whose given label looks wrong.

Used two ways: as a detector beside ATLANTIS's weights (which of the two finds the corrupted labels), and as
`method/select=cleanlab` (drop the flagged examples, then train).
"""

from __future__ import annotations

import numpy as np

from atlantis.methods.base import Select
from atlantis.methods.diagnostics import clean_auroc
from atlantis.signals.scoring import label_set_posterior

FILTERS = (
    "prune_by_noise_rate",
    "prune_by_class",
    "both",
    "confident_learning",
    "predicted_neq_given",
    "low_normalized_margin",
    "low_self_confidence",
)


def out_of_fold_probs(data) -> np.ndarray:
    """[N, C] p(label | x) of the training examples under a reference that never trained on their noisy labels
    (crossfit: each fold held out; trusted: trained on the gold seed only); rows sum to 1.

    Confident learning needs out-of-sample probabilities: a reference that saw an example's (noisy) label
    would have memorised it, so a reference that trained on the noisy labels is refused.
    """
    if not data.signals.reference_out_of_fold:
        name = (data.signals.reference or {}).get("name")
        raise ValueError(
            "confident learning needs out-of-fold probabilities: set reference=crossfit, or reference=trusted with "
            f"a trusted seed (this job's is {name!r})"
        )
    log_probs = label_set_posterior(data.signals.label_set_logprobs("reference"))[data.signal_positions()]
    return np.exp(log_probs)


def flag_label_issues(labels: np.ndarray, probs: np.ndarray, filter_by: str = "prune_by_noise_rate") -> np.ndarray:
    """Boolean mask of the examples cleanlab flags as mislabelled (single process: reproducible)."""
    from cleanlab.filter import find_label_issues

    if filter_by not in FILTERS:
        raise ValueError(f"filter_by must be one of {FILTERS}, got {filter_by!r}")
    return np.asarray(find_label_issues(labels, probs, filter_by=filter_by, n_jobs=1), dtype=bool)


def label_quality(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """cleanlab's label-quality score in [0, 1] (self-confidence): low = likely mislabelled."""
    from cleanlab.rank import get_label_quality_scores

    return np.asarray(get_label_quality_scores(labels, probs), dtype=np.float64)


def flag_stats(flagged: np.ndarray, is_noisy: np.ndarray) -> dict:
    hits = int((flagged & is_noisy).sum())
    precision = hits / flagged.sum() if flagged.any() else None
    recall = hits / is_noisy.sum() if is_noisy.any() else None
    f1 = 2 * precision * recall / (precision + recall) if precision and recall else 0.0
    return {"n_flagged": int(flagged.sum()), "precision": precision, "recall": recall, "f1": f1}


def lowest(scores: np.ndarray, m: int) -> np.ndarray:
    """Mask of the m lowest scores (ties by position)."""
    mask = np.zeros(len(scores), dtype=bool)
    mask[np.argsort(scores, kind="stable")[:m]] = True
    return mask


def detector_report(
    labels: np.ndarray,
    probs: np.ndarray,
    is_noisy: np.ndarray,
    weights: np.ndarray | None = None,
    filter_by: str = "prune_by_noise_rate",
    clean_labels: np.ndarray | None = None,
) -> dict:
    """cleanlab against the known corrupted labels, and ATLANTIS's weights beside it at the same budgets.

    AUROC: the score as a clean-vs-corrupted ranking (same direction as the weight diagnostics); precision@m:
    the m lowest-scored examples, m = the true number of corrupted labels; matched budget: ATLANTIS flags as
    many examples (its lowest weights) as cleanlab's mask holds. With `clean_labels`, the reference's strength:
    how often its top label is the clean one (all examples, and the corrupted ones) and the given one, which
    bounds what any detector reading it can find.
    """
    is_noisy = np.asarray(is_noisy, dtype=bool)
    flagged = flag_label_issues(labels, probs, filter_by)
    quality = label_quality(labels, probs)
    m = int(is_noisy.sum())
    report = {
        "n": len(labels),
        "n_corrupted": m,
        "filter_by": filter_by,
        "cleanlab": {
            "auroc_clean_vs_noisy": clean_auroc(quality, is_noisy),
            **flag_stats(flagged, is_noisy),
            "precision_at_m": flag_stats(lowest(quality, m), is_noisy)["precision"] if m else None,
        },
    }
    if clean_labels is not None:
        top, clean_labels = np.asarray(probs).argmax(axis=1), np.asarray(clean_labels)
        report["reference"] = {
            "top_is_clean": float((top == clean_labels).mean()),
            "top_is_clean_where_corrupted": float((top == clean_labels)[is_noisy].mean()) if m else None,
            "top_is_given": float((top == np.asarray(labels)).mean()),
        }
    if weights is not None:
        weights = np.asarray(weights, dtype=np.float64)
        report["atlantis_weights"] = {
            "auroc_clean_vs_noisy": clean_auroc(weights, is_noisy),
            "precision_at_m": flag_stats(lowest(weights, m), is_noisy)["precision"] if m else None,
            "matched_budget": flag_stats(lowest(weights, int(flagged.sum())), is_noisy),
        }
    return report


class SelectCleanlab(Select):
    """Confident-learning filter: drop the examples cleanlab flags (out-of-fold reference probabilities)."""

    uses_reference = True

    def __init__(self, filter_by: str = "prune_by_noise_rate"):
        if filter_by not in FILTERS:
            raise ValueError(f"filter_by must be one of {FILTERS}, got {filter_by!r}")
        self.filter_by = filter_by

    def __call__(self, data):
        from atlantis.methods.select import Selection, selection_report

        labels = np.array([f["label_index"] for f in data.features])
        probs = out_of_fold_probs(data)
        flagged = flag_label_issues(labels, probs, self.filter_by)
        kept = [f["id"] for f, drop in zip(data.features, flagged, strict=True) if not drop]
        if not kept:
            raise ValueError(f"cleanlab ({self.filter_by}) flagged every one of {len(labels)} training examples")
        noisy = np.array([e.is_noisy for e in data.examples], dtype=bool)
        detector = detector_report(labels, probs, noisy, filter_by=self.filter_by)
        report = selection_report(data, kept, selector="cleanlab", filter_by=self.filter_by, detector=detector)
        return Selection(kept, report)
