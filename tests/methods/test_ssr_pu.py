"""SSR-PU's risk (methods-next §3.4): PN when nothing is unlabelled-positive, the non-negative correction, the
threshold rule, and a job that trains on it."""

import math

import pytest
import torch

from atlantis.methods.ssr_pu import SSRPULoss, ssr_pu_risk
from atlantis.models.decoding import relations_above_threshold


def sq(s, y, m=0.25):
    return 0.25 * (y * s - m) ** 2


def test_with_no_prior_shift_the_risk_is_the_class_weighted_pn_risk():
    # labels: 0 = NA (threshold), 1 and 2 relations; rows 0-1 labelled 1, row 2 labelled 2, row 3 NA
    scores = torch.tensor([[0.0, 1.0, -2.0], [0.5, 0.0, 0.3], [0.0, -1.0, 2.0], [1.0, -0.5, 0.2]])
    positive = torch.tensor([[0, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0]]).bool()
    prior = torch.tensor([0.25, 0.5, 0.25])
    got = ssr_pu_risk(scores, positive, 0, prior, prior_shift=1.0)
    want = 0.0
    for r in (1, 2):
        s = [float(scores[i, r] - scores[i, 0]) for i in range(4)]
        pos = [i for i in range(4) if positive[i, r]]
        unl = [i for i in range(4) if not positive[i, r]]
        pi = float(prior[r])
        negative = (1 - pi) * sum(sq(s[i], -1) for i in unl) / len(unl)
        positive_risk = pi * math.sqrt((1 - pi) / pi) * sum(sq(s[i], 1) for i in pos) / len(pos)
        want += negative + positive_risk
    assert float(got) == pytest.approx(want, rel=1e-6)


def test_a_negative_unlabelled_risk_is_turned_around():
    # With a large prior shift, confidently scored positives make R- negative: the risk is then -gamma * R-,
    # and its gradient is exactly -gamma times R-'s.
    values = [[0.0, 4.0], [0.0, 4.0], [0.0, -1.0], [0.0, -1.0]]
    scores = torch.tensor(values, requires_grad=True)
    positive = torch.tensor([[0, 1], [0, 1], [1, 0], [1, 0]]).bool()
    risk = ssr_pu_risk(scores, positive, 0, torch.tensor([0.5, 0.2]), prior_shift=4.0, gamma=0.5)
    pi_l, pi_o = 0.2, 0.8
    pi_u = (pi_o - pi_l) / (1 - pi_l)
    by_hand = torch.tensor(values, requires_grad=True)
    s = by_hand[:, 1] - by_hand[:, 0]
    r_neg = (1 - pi_o) / (1 - pi_u) * sq(s[2:], -1).mean() - pi_u * (1 - pi_o) / (1 - pi_u) * sq(s[:2], -1).mean()
    assert float(r_neg) < 0 and float(risk) == pytest.approx(-0.5 * float(r_neg), rel=1e-6)
    risk.backward()
    r_neg.backward()
    torch.testing.assert_close(scores.grad, -0.5 * by_hand.grad)
    assert scores.grad[0, 1] > 0  # R- alone would push the positives' scores down


def test_the_threshold_rule_keeps_every_relation_above_no_relation_and_none_otherwise():
    scores = torch.tensor([[0.0, 0.5, -1.0, 0.2], [1.0, 0.9, 1.0, -3.0]])
    assert relations_above_threshold(scores, 0) == [[1, 3], []]


def test_an_ssr_pu_job_trains_on_the_risk(tmp_path, monkeypatch):
    from atlantis.experiment.pipeline import run_job
    from tests.test_redocred_job import slice_job_config

    cfg = slice_job_config(tmp_path, "method=ssr_pu", "noise_kind=incomplete", "noise=0.5")
    calls = []
    risk = SSRPULoss.risk

    def recorded(self, scores, label_index, negative):
        calls.append(risk(self, scores, label_index, negative))
        return calls[-1]

    monkeypatch.setattr(SSRPULoss, "risk", recorded)
    metrics = run_job(cfg, tmp_path / "run")
    assert calls and all(math.isfinite(float(c)) and c.requires_grad for c in calls)  # the loss that trained
    assert "test/docred_f1" in metrics
    missing = metrics["noise"]["missing_labels"]  # what the incomplete noise did, beside the result
    assert missing["n_missed"] == round(0.5 * missing["n_positive"]) == missing["n_negated"] + missing["n_dropped"]
    drawn = metrics["noise"]["negative_sampling"]  # the NA pairs drawn after it, missed pairs among them
    assert drawn["missed_pairs"] == missing["n_negated"] and drawn["missed_among_negatives"] <= drawn["negatives"]
