"""The example-level paired bootstrap: its metrics equal classification_report's; its interval is paired."""

import json

import numpy as np
import pytest

from atlantis.eval.metrics import classification_report
from atlantis.report.bootstrap import METRICS, Predictions, metric_on_samples, paired_bootstrap

DIRECTED = ["Cause-Effect(e1,e2)", "Cause-Effect(e2,e1)", "Member-Collection(e1,e2)", "Other"]


@pytest.mark.parametrize("labels", [DIRECTED, ["Adverse-Effect", "no_relation"], ["A", "B", "C", "Other"]])
def test_every_metric_equals_the_classification_report_on_random_resamples(labels):
    rng = np.random.default_rng(0)
    n = 60
    gold = rng.integers(0, len(labels), n)
    pred = np.where(rng.random(n) < 0.1, -1, np.where(rng.random(n) < 0.6, gold, rng.integers(0, len(labels), n)))
    negative = labels[-1]
    p = Predictions([f"x{i:03d}" for i in range(n)], [labels[g] for g in gold],
                    [labels[q] if q >= 0 else None for q in pred], negative)  # fmt: skip
    sample = rng.integers(0, n, size=(20, n))
    for metric in METRICS:
        got = metric_on_samples(p, sample, metric)
        for row, idx in zip(got, sample, strict=True):
            names = [p.labels[i] for i in p.gold[idx]], [p.labels[i] if i >= 0 else None for i in p.pred[idx]]
            index = {label: i for i, label in enumerate(labels)}
            report = classification_report(
                [index[g] for g in names[0]], [index[q] if q else -1 for q in names[1]], labels, negative
            )
            assert row == pytest.approx(report[metric], abs=1e-9), metric


def test_the_interval_is_paired_over_examples():
    rng = np.random.default_rng(1)
    n, labels = 300, ["A", "B", "Other"]
    gold = [labels[i] for i in rng.integers(0, 3, n)]
    base_pred = [g if rng.random() < 0.6 else labels[rng.integers(0, 3)] for g in gold]
    # the method fixes 10 % of the examples the baseline got wrong and changes nothing else
    better = [g if (b != g and rng.random() < 0.25) else b for g, b in zip(gold, base_pred, strict=True)]
    ids = [f"x{i}" for i in range(n)]
    a, b = Predictions(ids, gold, better), Predictions(ids, gold, base_pred)
    diff, lo, hi = paired_bootstrap([(a, b)], "accuracy", n_boot=2000)
    assert diff == pytest.approx(np.mean([x == g for x, g in zip(better, gold, strict=True)]) - np.mean(
        [x == g for x, g in zip(base_pred, gold, strict=True)]))  # fmt: skip
    assert 0 < lo < diff < hi  # paired: the shared examples cancel, so a small consistent gain is resolved
    same = paired_bootstrap([(b, b)], "accuracy", n_boot=500)
    assert same == (0.0, 0.0, 0.0)


def test_the_command_line_compares_two_runs(tmp_path, capsys):
    from atlantis.report.bootstrap import main

    gold = ["A", "B", "Other", "A"] * 25
    for name, predicted in (("a", gold), ("b", ["Other"] * len(gold))):
        (tmp_path / name).mkdir()
        rows = [{"id": str(i), "gold": g, "predicted": p} for i, (g, p) in enumerate(zip(gold, predicted))]
        (tmp_path / name / "predictions.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    assert main([str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    assert "A - B = +1.0000 [+1.0000, +1.0000]" in capsys.readouterr().out
