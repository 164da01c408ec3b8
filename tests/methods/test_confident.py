"""Confident learning: cleanlab finds flipped labels in out-of-fold probabilities; the filter and detector."""

import numpy as np
import pytest

from atlantis.methods.confident import detector_report, flag_label_issues, lowest


def synthetic_oof(n=600, classes=5, flip=0.1, seed=0):
    """Confident out-of-fold probabilities of the true class; 10 % of the given labels flipped."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, classes, n)
    probs = rng.dirichlet(np.ones(classes) * 0.3, n) * 0.2
    probs[np.arange(n), truth] += 0.8
    probs /= probs.sum(axis=1, keepdims=True)
    given = truth.copy()
    flipped = rng.random(n) < flip
    given[flipped] = (truth[flipped] + rng.integers(1, classes, flipped.sum())) % classes
    return given, probs, flipped


def test_cleanlab_finds_ten_percent_flipped_labels():
    labels, probs, flipped = synthetic_oof()
    report = detector_report(labels, probs, flipped)["cleanlab"]
    assert report["precision"] >= 0.9 and report["recall"] >= 0.9
    assert report["auroc_clean_vs_noisy"] >= 0.9


def test_perfect_probabilities_flag_nothing_and_runs_repeat():
    labels = np.arange(50) % 5
    probs = np.eye(5)[labels] * 0.96 + 0.01
    assert not flag_label_issues(labels, probs).any()
    given, p, _ = synthetic_oof(seed=1)
    assert np.array_equal(flag_label_issues(given, p), flag_label_issues(given, p))


def test_weights_are_judged_in_the_same_direction_and_at_the_same_budget():
    labels, probs, flipped = synthetic_oof()
    good_weights = np.where(flipped, 0.1, 1.0) + np.random.default_rng(0).random(len(labels)) * 0.01
    report = detector_report(labels, probs, flipped, weights=good_weights)
    assert report["atlantis_weights"]["auroc_clean_vs_noisy"] == pytest.approx(1.0)
    assert report["atlantis_weights"]["precision_at_m"] == pytest.approx(1.0)
    assert report["atlantis_weights"]["matched_budget"]["n_flagged"] == report["cleanlab"]["n_flagged"]
    assert lowest(np.array([3.0, 1.0, 2.0, 1.0]), 2).tolist() == [False, True, False, True]


def test_unknown_filter_is_refused():
    with pytest.raises(ValueError, match="filter_by"):
        flag_label_issues(np.zeros(3, dtype=int), np.full((3, 2), 0.5), "by_magic")


def test_the_references_strength_is_how_often_its_top_label_is_the_clean_one():
    clean = np.array([0, 1, 2, 0])
    given = np.array([0, 2, 2, 1])  # examples 1 and 3 corrupted
    probs = np.eye(3)[[0, 1, 0, 1]] * 0.9 + 0.05  # top: right, right (corrupted), wrong, wrong (corrupted)
    reference = detector_report(given, probs, given != clean, clean_labels=clean)["reference"]
    assert reference["top_is_clean"] == 0.5 and reference["top_is_clean_where_corrupted"] == 0.5
    assert reference["top_is_given"] == 0.5
