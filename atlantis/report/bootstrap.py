"""Paired bootstrap of a metric difference over test examples and seeds, from the runs' predictions.jsonl.

Two runs of one seed share the test set (and the noise draw), so each replicate resamples the test examples
once per seed and scores both methods on the same resample; seeds are resampled too when there are several.
The metrics are recomputed from label counts, vectorised over the replicates, exactly as
atlantis.eval.metrics.classification_report computes them (tested against it).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

METRICS = ("f1_official", "f1_macro", "f1_micro", "accuracy")
NEGATIVE_NAMES = ("Other", "no_relation", "no relation")
_DIRECTION = re.compile(r"\(e[12],e[12]\)$")


class Predictions:
    """A run's test predictions as label indices over the labels it saw (-1: invalid), ordered by example id."""

    def __init__(self, ids: list[str], gold: list[str], predicted: list[str | None], negative: str | None = None):
        order = np.argsort(ids, kind="stable")
        self.ids = [ids[i] for i in order]
        self.labels = sorted({*gold, *(p for p in predicted if p is not None)})
        index = {label: i for i, label in enumerate(self.labels)}
        self.gold = np.array([index[gold[i]] for i in order])
        self.pred = np.array([index[predicted[i]] if predicted[i] is not None else -1 for i in order])
        self.negative = negative if negative is not None else next((n for n in NEGATIVE_NAMES if n in index), None)

    @classmethod
    def read(cls, run_dir: Path, negative: str | None = None) -> Predictions | None:
        """None when the run has no classification predictions (end-to-end extraction, older runs)."""
        path = Path(run_dir) / "predictions.jsonl"
        if not path.is_file():
            return None
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if not rows or not all(isinstance(r.get("gold"), str) for r in rows):
            return None
        return cls([r["id"] for r in rows], [r["gold"] for r in rows], [r.get("predicted") for r in rows], negative)

    def aligned(self, other: Predictions) -> Predictions:
        """These predictions re-indexed on the labels of both runs (so two runs' label indices agree)."""
        names = sorted({*self.labels, *other.labels})
        if self.ids != other.ids:
            raise ValueError("paired runs must hold the same test examples")
        out = Predictions.__new__(Predictions)
        remap = np.array([names.index(label) for label in self.labels])
        out.ids, out.labels, out.negative = self.ids, names, self.negative or other.negative
        out.gold = remap[self.gold]
        out.pred = np.where(self.pred >= 0, remap[np.maximum(self.pred, 0)], -1)
        return out


def _counts(keys: np.ndarray, n_boot: int, width: int) -> np.ndarray:
    """[n_boot, width] counts of `keys` [n_boot, n] (values in [0, width); -1 ignored)."""
    offsets = np.arange(n_boot)[:, None] * width
    valid = keys >= 0
    flat = (keys + offsets)[valid]
    return np.bincount(flat, minlength=n_boot * width).reshape(n_boot, width).astype(float)


def _f1(tp, predicted, actual):
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / np.maximum(predicted, 1), 0.0)
        recall = np.where(actual > 0, tp / np.maximum(actual, 1), 0.0)
        return np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)


def metric_on_samples(p: Predictions, sample: np.ndarray, metric: str) -> np.ndarray:
    """[n_boot] values of `metric` on each row of `sample` ([n_boot, n] example indices)."""
    if metric not in METRICS:
        raise ValueError(f"example-level bootstrap supports {METRICS}, not {metric!r}")
    n_boot, n_labels = sample.shape[0], len(p.labels)
    gold, pred = p.gold[sample], p.pred[sample]
    if metric == "accuracy":
        return (gold == pred).mean(axis=1)
    if metric == "f1_official":  # SemEval's scorer: undirected classes, direction-aware hits, invalid skipped
        classes = sorted({_DIRECTION.sub("", label) for label in p.labels})
        to_class = np.array([classes.index(_DIRECTION.sub("", label)) for label in p.labels])
        directed = any(_DIRECTION.search(label) for label in p.labels)
        gold_c = to_class[gold]
        pred_c = np.where(pred >= 0, to_class[np.maximum(pred, 0)], -1)
        hit = (pred == gold) if directed else (pred_c == gold_c)
        width = len(classes)
        tp = _counts(np.where(hit & (pred >= 0), pred_c, -1), n_boot, width)
        f1 = _f1(tp, _counts(pred_c, n_boot, width), answer := _counts(gold_c, n_boot, width))
        keep = (answer > 0) & (np.array([c != p.negative for c in classes]))[None, :]
        return np.where(keep.any(axis=1), (f1 * keep).sum(axis=1) / np.maximum(keep.sum(axis=1), 1), 0.0)
    tp = _counts(np.where(pred == gold, gold, -1), n_boot, n_labels)
    predicted, actual = _counts(pred, n_boot, n_labels), _counts(gold, n_boot, n_labels)
    if metric == "f1_macro":  # sklearn's: over the labels present in gold or predictions
        present = (actual + predicted) > 0
        return (_f1(tp, predicted, actual) * present).sum(axis=1) / np.maximum(present.sum(axis=1), 1)
    positive = np.array([label != p.negative for label in p.labels])[None, :]
    micro_tp = (tp * positive).sum(axis=1)
    micro_p = micro_tp / np.maximum((predicted * positive).sum(axis=1), 1)
    micro_r = micro_tp / np.maximum((actual * positive).sum(axis=1), 1)
    return np.where(micro_p + micro_r > 0, 2 * micro_p * micro_r / np.maximum(micro_p + micro_r, 1e-12), 0.0)


def paired_bootstrap(
    pairs: list[tuple[Predictions, Predictions]], metric: str, n_boot: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """Mean over seeds of metric(a) - metric(b), and its 95 % interval, resampling test examples within each
    seed (both methods on the same resample) and the seeds themselves."""
    rng = np.random.default_rng(seed)
    per_seed, observed = [], []
    for a, b in pairs:
        a, b = a.aligned(b), b.aligned(a)
        full = np.arange(len(a.ids))[None, :]
        observed.append(float(metric_on_samples(a, full, metric)[0] - metric_on_samples(b, full, metric)[0]))
        sample = rng.integers(0, len(a.ids), size=(n_boot, len(a.ids)))
        per_seed.append(metric_on_samples(a, sample, metric) - metric_on_samples(b, sample, metric))
    diffs = np.stack(per_seed, axis=1)  # [n_boot, seeds]
    if diffs.shape[1] > 1:
        chosen = rng.integers(0, diffs.shape[1], size=diffs.shape)
        diffs = np.take_along_axis(diffs, chosen, axis=1)
    boots = diffs.mean(axis=1)
    return float(np.mean(observed)), *np.percentile(boots, [2.5, 97.5]).tolist()


def main(argv: list[str] | None = None) -> int:
    """`python -m atlantis.report.bootstrap RUN_A RUN_B`: metric(A) - metric(B) with its paired 95 % interval
    (runs of one seed: the same test examples, resampled together)."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("run_a", type=Path)
    parser.add_argument("run_b", type=Path)
    parser.add_argument("--metric", default="f1_official", choices=METRICS)
    args = parser.parse_args(argv)
    a, b = Predictions.read(args.run_a), Predictions.read(args.run_b)
    missing = [str(run) for run, p in ((args.run_a, a), (args.run_b, b)) if p is None]
    if missing:
        parser.error(f"no classification predictions.jsonl in {', '.join(missing)}")
    diff, lo, hi = paired_bootstrap([(a, b)], args.metric)
    print(
        f"{args.metric}: A - B = {diff:+.4f} [{lo:+.4f}, {hi:+.4f}] (95 % paired bootstrap over {len(a.ids)} examples)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
