"""GLC: the corruption matrix a trusted seed estimates, and the loss trained through it."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from atlantis.methods.glc import GLCLoss, corruption_matrix, corruption_report, glc_example_loss, realised_corruption
from tests.methods.test_compose import run_tiny

TRUE_CORRUPTION = np.array([[0.6, 0.3, 0.1], [0.1, 0.7, 0.2], [0.25, 0.25, 0.5]])  # p(weak j | true i)


def test_the_estimate_recovers_a_known_corruption_matrix():
    """Three separable classes, weak labels drawn from a known matrix; a softmax classifier trained on the weak
    labels, run on a trusted seed, gives that matrix back."""
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 4.0], [4.0, -2.0], [-4.0, -2.0]])
    true = rng.integers(0, 3, 6000)
    x = centres[true] + rng.normal(scale=0.5, size=(6000, 2))
    weak = np.array([rng.choice(3, p=TRUE_CORRUPTION[y]) for y in true])
    features, targets = torch.tensor(x, dtype=torch.float32), torch.tensor(weak)
    layer = torch.nn.Linear(2, 3)
    optimiser = torch.optim.Adam(layer.parameters(), lr=0.05)
    for _ in range(400):
        optimiser.zero_grad()
        F.cross_entropy(layer(features), targets).backward()
        optimiser.step()
    trusted_x = centres[np.repeat([0, 1, 2], 200)] + rng.normal(scale=0.5, size=(600, 2))
    with torch.no_grad():
        probs = torch.softmax(layer(torch.tensor(trusted_x, dtype=torch.float32)), dim=1).numpy()
    estimate = corruption_matrix(probs, np.repeat([0, 1, 2], 200), 3)
    assert np.abs(estimate - TRUE_CORRUPTION).max() < 0.05
    assert np.allclose(estimate.sum(axis=1), 1.0)


def test_a_class_without_trusted_examples_keeps_its_labels():
    estimate = corruption_matrix(np.array([[0.2, 0.8, 0.0]]), np.array([1]), 3)
    assert estimate.tolist() == [[1, 0, 0], [0.2, 0.8, 0.0], [0, 0, 1]]


def test_the_realised_corruption_counts_each_clean_class_and_the_report_measures_the_gap():
    clean, given = np.array([0, 0, 0, 0, 1, 1]), np.array([0, 0, 1, 2, 1, 0])
    realised = realised_corruption(clean, given, 3)
    assert realised.tolist() == [[0.5, 0.25, 0.25], [0.5, 0.5, 0.0], [0, 0, 1]]  # class 2 has no weak example
    report = corruption_report(np.eye(3), realised, n_trusted=7)
    assert report["mean_diagonal_realised"] == pytest.approx((0.5 + 0.5 + 1) / 3)
    assert report["mean_diagonal_estimated"] == 1.0
    assert report["mean_row_tv_distance"] == pytest.approx((0.5 + 0.5 + 0) / 3)  # half of each row's L1 gap
    assert corruption_report(realised, realised, 7)["mean_row_tv_distance"] == 0.0


def test_a_glc_job_records_its_estimate_beside_the_weak_labels_corruption(tmp_path):
    metrics, run_dir = run_tiny(tmp_path, "method=glc", "trusted.per_class=2", "noise=0.5")
    report = json.loads((run_dir / "metrics.json").read_text())["loss"]
    n = len(report["estimated"])
    assert n == len(report["realised"]) and report["n_trusted"] > 0
    assert np.allclose(np.array(report["realised"]).sum(axis=1), 1.0, atol=1e-3)
    assert report["mean_diagonal_realised"] < 1.0  # half the weak labels were corrupted
    assert 0.0 <= report["mean_row_tv_distance"] <= 1.0


def test_the_corrected_loss_by_hand_and_cross_entropy_without_noise():
    scores = torch.tensor([[1.0, 0.0, -1.0], [0.5, 2.0, 0.0]])
    observed, corruption = torch.tensor([1, 1]), torch.tensor(TRUE_CORRUPTION, dtype=torch.float32)
    loss = glc_example_loss(scores, observed, torch.tensor([False, True]), corruption)
    p = torch.softmax(scores, dim=1)
    assert loss[0].item() == pytest.approx(-np.log(float(p[0] @ corruption[:, 1])), rel=1e-5)  # weak: corrected
    assert loss[1].item() == pytest.approx(F.cross_entropy(scores[1:], observed[1:]).item(), rel=1e-5)  # trusted
    plain = glc_example_loss(scores, observed, torch.tensor([False, False]), torch.eye(3))
    assert plain.tolist() == pytest.approx(F.cross_entropy(scores, observed, reduction="none").tolist(), rel=1e-5)


@pytest.mark.parametrize("method", ["glc", "l2rw"])
def test_without_a_trusted_seed_glc_and_l2rw_say_what_to_set(tmp_path, method):
    with pytest.raises(ValueError, match="set trusted.per_class=k"):
        run_tiny(tmp_path, f"method={method}", "noise=0.5")


def test_glc_on_the_seed_alone_is_refused(tmp_path):
    with pytest.raises(ValueError, match="every training example is trusted"):
        run_tiny(tmp_path, "method=glc", "trusted.per_class=2", "trusted.use=only")


def test_the_oracle_recipe_trains_through_the_realised_matrix(tmp_path, monkeypatch):
    import atlantis.methods.glc as glc

    used, real = [], glc.glc_example_loss

    def recorded(scores, observed, trusted, corruption):
        used.append(corruption.numpy().copy())
        return real(scores, observed, trusted, corruption)

    monkeypatch.setattr(glc, "glc_example_loss", recorded)
    metrics, run_dir = run_tiny(tmp_path, "+baseline=glc_oracle", "trusted.per_class=2", "noise=0.5")
    report = json.loads((run_dir / "metrics.json").read_text())["loss"]
    assert report["used"] == "realised" and metrics["config"]["method"] == "glc_oracle"
    assert used and all(np.allclose(c, report["realised"], atol=1e-4) for c in used)
    assert not np.allclose(report["estimated"], report["realised"], atol=1e-2)  # the estimate it set aside
    with pytest.raises(ValueError, match="one of"):
        glc.GLCLoss(corruption="true")


def test_the_large_estimator_fits_the_large_base_on_the_weak_examples_only(tmp_path, monkeypatch):
    import atlantis.signals.store as store

    fits, real = [], store.finetune

    def spy(make_module, features, *args, **kwargs):
        model = real(make_module, features, *args, **kwargs)
        fits.append(([f["id"] for f in features], kwargs.get("what"), model.config.hidden_size))
        return model

    monkeypatch.setattr(store, "finetune", spy)
    metrics, run_dir = run_tiny(tmp_path, "+baseline=glc_large", "trusted.per_class=2", "noise=0.5")
    report = json.loads((run_dir / "metrics.json").read_text())["loss"]
    assert report["estimator"] == "large" and metrics["config"]["method"] == "glc_large"
    [(ids, what, hidden)] = fits  # one fit, of the large base (the tiny pair's large is 128 wide, its small 64)
    assert what == "large weak-label model" and hidden == 128
    trusted = set(metrics["trusted"]["ids"])
    assert not set(ids) & trusted and len(ids) == metrics["data"]["train"]["n_kept"] - len(trusted)
    assert report["n_trusted"] == len(trusted)
    with pytest.raises(ValueError, match="one of"):
        GLCLoss(estimator="reference")
