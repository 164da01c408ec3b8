"""Relation-classification metrics: the official SemEval-2010 Task 8 score and the usual F1 family.

Predictions are label indices, with -1 for an invalid (unparseable) output: it is wrong for its gold
class and counts toward no predicted class (the official scorer's "skipped" examples).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import torch
from torchmetrics.functional.classification import multiclass_confusion_matrix

INVALID = -1
_DIRECTION = re.compile(r"\(e[12],e[12]\)$")


def _undirected(label: str) -> str:
    return _DIRECTION.sub("", label)


def confusion_matrix(gold: Sequence[int], pred: Sequence[int], n_labels: int) -> torch.Tensor:
    """[gold, predicted] counts over n_labels + 1 columns; the last column holds invalid outputs."""
    gold_t = torch.as_tensor(list(gold), dtype=torch.long)
    pred_t = torch.as_tensor(list(pred), dtype=torch.long)
    pred_t = torch.where(pred_t == INVALID, torch.full_like(pred_t, n_labels), pred_t)
    if len(gold_t) == 0:
        return torch.zeros(n_labels + 1, n_labels + 1, dtype=torch.long)
    return multiclass_confusion_matrix(pred_t, gold_t, num_classes=n_labels + 1)


def semeval_official_f1(
    gold: Sequence[str], pred: Sequence[str | None], directed: bool = True, negative: str = "Other"
) -> float:
    """Macro-F1 (0-1) as the official Perl scorer v1.2 computes it, excluding `negative`.

    directed=True: "(9+1)-way evaluation with directionality taken into account" (the official score);
    directed=False: the "directionality ignored" figure. `None` predictions are skipped examples.
    Arithmetic follows the scorer (percentages per class, averaged over the non-negative gold classes).
    """
    tp: Counter = Counter()
    proposed: Counter = Counter()
    answer = Counter(_undirected(g) for g in gold)
    for g, p in zip(gold, pred, strict=True):
        if p is None:
            continue
        p_rel = _undirected(p)
        proposed[p_rel] += 1
        if (p == g) if directed else (p_rel == _undirected(g)):
            tp[p_rel] += 1
    classes = [c for c in answer if c != negative]
    if not classes:
        return 0.0
    macro = 0.0
    for c in classes:
        precision = 0.0 if proposed[c] == 0 else 100.0 * tp[c] / proposed[c]
        recall = 100.0 * tp[c] / answer[c]
        macro += 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return macro / len(classes) / 100.0


def classification_report(
    gold: Sequence[int], pred: Sequence[int], labels: Sequence[str], negative: str | None = None
) -> dict:
    """All metrics of one prediction set; label strings come from `labels` (index -> name)."""
    n = len(labels)
    cm = confusion_matrix(gold, pred, n)
    counts = cm[:n].double()  # gold rows of real labels
    tp = counts.diagonal()[:n]
    predicted = counts[:, :n].sum(dim=0)
    actual = counts.sum(dim=1)
    precision = torch.where(predicted > 0, tp / predicted.clamp(min=1), torch.zeros_like(tp))
    recall = torch.where(actual > 0, tp / actual.clamp(min=1), torch.zeros_like(tp))
    f1 = torch.where(precision + recall > 0, 2 * precision * recall / (precision + recall).clamp(min=1e-12), 0 * tp)
    # sklearn's macro average: over labels that occur in gold or predictions.
    present = (actual + predicted) > 0
    macro = f1[present].mean().item() if present.any() else 0.0
    positive = torch.tensor([label != negative for label in labels])
    micro_tp = tp[positive].sum()
    micro_p = micro_tp / predicted[positive].sum().clamp(min=1)
    micro_r = micro_tp / actual[positive].sum().clamp(min=1)
    micro = (2 * micro_p * micro_r / (micro_p + micro_r)).item() if micro_p + micro_r > 0 else 0.0
    gold_names = [labels[g] for g in gold]
    pred_names = [labels[p] if p != INVALID else None for p in pred]
    directed = any(_DIRECTION.search(label) for label in labels)
    official = semeval_official_f1(gold_names, pred_names, directed=directed, negative=negative or "")
    n_invalid = sum(p == INVALID for p in pred)
    return {
        "f1_official": official,
        "f1_macro": macro,
        "f1_micro": micro,
        "accuracy": (tp.sum() / max(len(gold), 1)).item(),
        "invalid_rate": n_invalid / max(len(gold), 1),
        "n": len(gold),
        "per_class": {
            label: {
                "precision": precision[i].item(),
                "recall": recall[i].item(),
                "f1": f1[i].item(),
                "support": int(actual[i].item()),
            }
            for i, label in enumerate(labels)
        },
        "confusion_matrix": cm.tolist(),
    }
