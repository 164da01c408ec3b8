import torch
import torch.nn.functional as F

from atlantis.models.loss import IGNORE_INDEX, sequence_nll, shift_for_causal, weighted_nll


def random_batch(seed=0, batch=4, length=7, vocab=11):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, length, vocab, generator=g)
    labels = torch.randint(0, vocab, (batch, length), generator=g)
    labels[0, :3] = IGNORE_INDEX  # a masked prompt
    labels[1, 5:] = IGNORE_INDEX  # padding
    return logits, labels


def test_unit_weights_with_one_target_length_reduce_to_cross_entropy():
    logits, _ = random_batch()
    labels = torch.randint(0, 11, (4, 7), generator=torch.Generator().manual_seed(1))
    labels[:, :2] = IGNORE_INDEX  # a masked prompt of the same length, so every example has 5 targets
    expected = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX)
    torch.testing.assert_close(weighted_nll(logits, labels, torch.ones(4)), expected)


def test_per_example_nll_is_the_mean_over_its_target_tokens():
    logits, labels = random_batch()
    nll = sequence_nll(logits, labels)
    for i in range(4):
        keep = labels[i] != IGNORE_INDEX
        torch.testing.assert_close(nll[i], F.cross_entropy(logits[i][keep], labels[i][keep]))


def test_weights_scale_each_examples_share():
    logits, labels = random_batch()
    weights = torch.tensor([0.0, 2.0, 1.0, 0.5])
    per_example = torch.stack([F.cross_entropy(logits[i], labels[i], ignore_index=IGNORE_INDEX) for i in range(4)])
    torch.testing.assert_close(weighted_nll(logits, labels, weights), (weights * per_example).sum() / 4)
    # A zero weight removes the example: its logits get no gradient.
    logits.requires_grad_(True)
    weighted_nll(logits, labels, weights).backward()
    assert logits.grad[0].abs().sum() == 0 and logits.grad[1].abs().sum() > 0


def test_weights_are_constants():
    logits, labels = random_batch()
    weights = torch.ones(4, requires_grad=True)
    weighted_nll(logits.requires_grad_(True), labels, weights).backward()
    assert weights.grad is None


def test_causal_shift():
    logits, labels = random_batch()
    shifted_logits, shifted_labels = shift_for_causal(logits, labels)
    assert shifted_logits.shape[1] == shifted_labels.shape[1] == labels.shape[1] - 1
    assert torch.equal(shifted_labels, labels[:, 1:])
