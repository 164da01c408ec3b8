"""L2RW: the meta-gradient of a trusted batch's loss with respect to each example's loss weight."""

import pytest
import torch

from atlantis.methods.l2rw import gradient_alignment, l2rw_weights
from tests.methods.test_compose import run_tiny

X = torch.tensor([0.5, -1.0, 2.0, 1.5])
Y = torch.tensor([1.0, -2.0, -3.0, 3.0])  # y = 2x but the third (2x would be 4): a corrupted label
XT, YT = torch.tensor([1.0, 2.0, -1.0]), torch.tensor([2.1, 3.9, -2.0])  # the trusted batch: y ~ 2x
THETA = {"a": torch.tensor(0.8), "b": torch.tensor(0.3)}  # a two-parameter model: y = a x + b


def per_example(p):
    return (p["a"] * X + p["b"] - Y) ** 2


def trusted(p):
    return ((p["a"] * XT + p["b"] - YT) ** 2).mean()


def test_alignment_is_the_hand_computed_gradient_dot_product():
    a, b = THETA["a"].item(), THETA["b"].item()
    residual_t = [a * x + b - y for x, y in zip(XT.tolist(), YT.tolist(), strict=True)]
    grad_t = (
        sum(2 * r * x for r, x in zip(residual_t, XT.tolist(), strict=True)) / 3,
        sum(2 * r for r in residual_t) / 3,
    )
    expected = []
    for x, y in zip(X.tolist(), Y.tolist(), strict=True):
        r = a * x + b - y
        expected.append(2 * r * x * grad_t[0] + 2 * r * grad_t[1])
    assert gradient_alignment(per_example, trusted, THETA).tolist() == pytest.approx(expected, rel=1e-6)


def test_alignment_is_minus_the_meta_gradient_of_a_virtual_step():
    """L2RW's definition: d/d eps_i of L_T(theta - alpha grad sum_j eps_j l_j) at eps = 0 is -alpha x alignment."""
    alpha = 0.1
    eps = torch.zeros(4, requires_grad=True)
    theta = {k: v.clone().requires_grad_() for k, v in THETA.items()}
    grads = torch.autograd.grad((eps * per_example(theta)).sum(), list(theta.values()), create_graph=True)
    stepped = {k: v - alpha * g for (k, v), g in zip(theta.items(), grads, strict=True)}
    (meta,) = torch.autograd.grad(trusted(stepped), eps)
    assert (-meta / alpha).tolist() == pytest.approx(
        gradient_alignment(per_example, trusted, THETA).tolist(), rel=1e-5
    )


def test_weights_keep_the_agreeing_examples_with_mean_one():
    w = l2rw_weights(torch.tensor([2.0, -1.0, 6.0, 0.0]))
    assert w.tolist() == pytest.approx([1.0, 0.0, 3.0, 0.0])  # 4 rows, sum 4
    assert l2rw_weights(torch.tensor([-1.0, -2.0])).tolist() == [0.0, 0.0]  # nothing agrees: the step is void
    padded = l2rw_weights(torch.tensor([1.0, 3.0, 5.0]), torch.tensor([False, False, True]))
    assert padded.tolist() == pytest.approx([0.5, 1.5, 0.0])  # a padding row counts for nothing


def test_the_corrupted_example_gets_no_weight():
    w = l2rw_weights(gradient_alignment(per_example, trusted, THETA))
    assert w[2] == 0 and (w[[0, 1, 3]] > 0).all()


@pytest.mark.parametrize(
    "options",
    [
        ["trusted.weigh_gold=true"],
        ["trusted.weigh_gold=true", "trainer.gradient_checkpointing=true", "model.kind=causal"],
    ],
)
def test_an_l2rw_job_records_what_its_step_weights_did(tmp_path, options):
    """Also with gradient checkpointing (off for the meta-gradient: it cannot run inside torch.func's transforms)."""
    metrics, _ = run_tiny(tmp_path, "method=l2rw", "trusted.per_class=2", "noise=0.5", "trainer.max_steps=2", *options)
    record = metrics["train/step_weighting"]
    assert record and metrics["trusted"]["n"] == 10
    assert record[-1]["examples"] == 16 and 0 <= record[-1]["dropped"] <= 16  # two steps of 8, gold rows weighed


def test_l2rw_leaves_the_gold_rows_it_trains_on_at_one(tmp_path):
    """By default (trusted.weigh_gold=false) the gold rows in a training batch are not L2RW's to judge: they
    weigh 1 and are not counted among the examples its factors act on."""
    metrics, _ = run_tiny(tmp_path, "method=l2rw", "trusted.per_class=2", "noise=0.5", "trainer.max_steps=2")
    judged = metrics["train/step_weighting"][-1]["examples"]
    assert 0 < judged < 16  # the two steps of 8 held gold rows (10 of the job's training examples are gold)


def test_the_meta_gradient_runs_without_dropout_and_restores_the_models_mode():
    from atlantis.methods.l2rw import meta_mode

    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.5))
    model.train()
    with meta_mode(model):
        assert not model.training and not model[1].training
    assert model.training and model[1].training
