import math

import numpy as np
import pytest

from atlantis.methods.diagnostics import clean_auroc, weight_diagnostics
from atlantis.methods.normalise import effective_sample_size, log_weights, normalise_weights

# Three examples; log-probs under the large base, the small base and the reference.
LARGE = np.array([-1.0, -2.0, -0.5])
SMALL = np.array([-1.5, -1.0, -0.5])
REF = np.array([-0.2, -3.0, -1.0])
LABELS = ["A", "A", "B"]


def by_hand(values):
    values = np.asarray(values, dtype=float)
    return values / values.mean()


def raw_w():
    # W_i = p_L / p_S * p_r, computed with probabilities (fine at this scale).
    return np.array([math.exp(lg) / math.exp(sm) * math.exp(rf) for lg, sm, rf in zip(LARGE, SMALL, REF, strict=True)])


def scores():
    return {"large": LARGE, "small": SMALL, "reference": REF}


def test_global_normalisation_matches_the_formula():
    log_w = log_weights(scores(), ("large", "small", "reference"))
    np.testing.assert_allclose(normalise_weights(log_w), by_hand(raw_w()), atol=1e-6)


def test_ablation_terms():
    np.testing.assert_allclose(
        normalise_weights(log_weights(scores(), ("reference",))), by_hand(np.exp(REF)), atol=1e-6
    )
    ratio = np.exp(LARGE) / np.exp(SMALL)
    np.testing.assert_allclose(normalise_weights(log_weights(scores(), ("large", "small"))), by_hand(ratio), atol=1e-6)


def test_per_class_normalisation():
    w = normalise_weights(log_weights(scores(), ("large", "small", "reference")), LABELS, per_class=True)
    raw = raw_w()
    expected = np.array([raw[0] / raw[:2].mean(), raw[1] / raw[:2].mean(), 1.0])
    np.testing.assert_allclose(w, expected, atol=1e-6)


def test_temperature():
    w = normalise_weights(log_weights(scores(), ("large", "small", "reference")), temperature=2.0)
    np.testing.assert_allclose(w, by_hand(raw_w() ** 0.5), atol=1e-6)


def test_clipping_then_renormalisation():
    w = normalise_weights(log_weights(scores(), ("large", "small", "reference")), clip=(0.5, 1.5))
    np.testing.assert_allclose(w, by_hand(np.clip(by_hand(raw_w()), 0.5, 1.5)), atol=1e-6)
    assert w.mean() == pytest.approx(1.0)


def test_extreme_log_weights_stay_finite():
    w = normalise_weights(np.array([-5000.0, -4000.0, 0.0]))
    assert np.isfinite(w).all() and w.mean() == pytest.approx(1.0) and w[2] == pytest.approx(3.0)


def test_non_finite_scores_are_named():
    with pytest.raises(ValueError, match=r"positions \[1\]"):
        normalise_weights(np.array([0.0, np.nan, 1.0]))


def test_ess():
    assert effective_sample_size(np.ones(10)) == pytest.approx(10)
    assert effective_sample_size(np.array([1.0, 0, 0, 0])) == pytest.approx(1)


def test_auroc_on_constructed_cases():
    noisy = [False, False, True, True]
    assert clean_auroc([3.0, 2.0, 1.0, 0.5], noisy) == pytest.approx(1.0)
    assert clean_auroc([0.5, 1.0, 2.0, 3.0], noisy) == pytest.approx(0.0)
    # clean {3, 1} vs noisy {2, 0.5}: of 4 pairs, clean wins 3.
    assert clean_auroc([3.0, 1.0, 2.0, 0.5], noisy) == pytest.approx(0.75)
    assert clean_auroc([1.0, 2.0], [False, False]) is None


def test_diagnostics():
    d = weight_diagnostics([2.0, 1.0, 0.5, 0.5], ["A", "A", "B", "B"], [False, False, True, True])
    assert d["mean_weight_clean"] == pytest.approx(1.5) and d["mean_weight_noisy"] == pytest.approx(0.5)
    assert d["per_class"]["A"]["mass"] == pytest.approx(0.75) and d["per_class"]["A"]["frequency"] == 0.5


def test_the_ratio_exponent_scales_the_weak_to_strong_ratio_alone():
    from atlantis.methods.normalise import log_weights

    scores = {"large": np.array([-1.0, -4.0]), "small": np.array([-2.0, -1.0]), "reference": np.array([-0.5, -3.0])}
    terms = ("large", "small", "reference")
    np.testing.assert_allclose(log_weights(scores, terms), [0.5, -6.0])
    np.testing.assert_allclose(log_weights(scores, terms, ratio_exponent=0.0), scores["reference"])
    np.testing.assert_allclose(log_weights(scores, terms, ratio_exponent=0.25), [-0.25, -3.75])
