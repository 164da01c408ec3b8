"""Per-step weightings: small-loss selection and loss truncation, on known losses."""

import numpy as np
import pytest
import torch

from atlantis.methods.weights import LossTruncationWeights, SmallLossWeights


def test_small_loss_keeps_exactly_the_smaller_half_after_the_ramp():
    g = torch.Generator().manual_seed(0)
    nll, n_targets = torch.rand(10, generator=g), torch.randint(1, 4, (10,), generator=g).float()
    rule = SmallLossWeights(forget_rate=0.5, num_gradual=2)
    factor = rule.step_weight(nll, n_targets, {}, epoch=2.0, max_epochs=3)
    kept = set(torch.nonzero(factor).flatten().tolist())
    assert kept == set(torch.argsort(nll * n_targets)[:5].tolist())  # by the summed sequence loss
    assert torch.allclose(factor[list(kept)], torch.full((5,), 2.0))  # the mean over the kept five
    assert (rule.step_weight(nll, n_targets, {}, epoch=0.0) == 1).all()  # R(0) = 1: everything trains
    halfway = rule.step_weight(nll, n_targets, {}, epoch=1.0)  # R = 0.75: round(7.5) = 8 kept
    assert int((halfway > 0).sum()) == 8


def test_small_loss_default_ramp_is_a_share_of_the_epochs_and_keeps_one():
    rule = SmallLossWeights(forget_rate=0.9)
    assert rule.keep_rate(0.9, max_epochs=3) == pytest.approx(0.1)  # T_k = 0.3 x 3 epochs
    assert int((rule.step_weight(torch.rand(3), torch.ones(3), {}, epoch=5, max_epochs=3) > 0).sum()) == 1


def test_loss_truncation_follows_the_percentile_rule_and_waits_for_min_count():
    rng = np.random.default_rng(0)
    stream = rng.exponential(size=(6, 8)).astype(np.float32)  # six batches of eight sequence losses
    rule = LossTruncationWeights(drop_rate=0.25, min_count=16, recompute=8)
    seen = []
    for b, losses in enumerate(stream):
        mask = rule.step_weight(torch.from_numpy(losses), torch.ones(8), {})
        if b < 2:  # fewer than 16 losses seen before these batches: nothing dropped
            assert (mask == 1).all()
        else:  # the cut-off set after batch b-1: the 75th percentile of the last 8 losses (batch b-1)
            cutoff = np.percentile(seen[-8:], 75)
            assert torch.equal(mask, torch.from_numpy((losses < cutoff).astype(np.float32)))
            assert 0 < int(mask.sum()) < 8
        seen.extend(losses.tolist())


def test_bad_rates_are_refused():
    with pytest.raises(ValueError, match="forget_rate"):
        SmallLossWeights(forget_rate=1.0)
    with pytest.raises(ValueError, match="drop_rate"):
        LossTruncationWeights(drop_rate=-0.1)


def test_small_loss_refuses_batches_it_cannot_drop_from():
    with pytest.raises(ValueError, match="raise trainer.batch_size"):
        SmallLossWeights(forget_rate=0.2).step_weight(torch.rand(1), torch.ones(1), {}, epoch=5, max_epochs=3)


def test_small_loss_takes_a_short_last_batch_after_full_ones():
    """The batch size is checked on the first step; an epoch's short last batch (N mod batch size of 1 or 2)
    keeps what it can instead of stopping the run."""
    rule = SmallLossWeights(forget_rate=0.2)
    assert (rule.step_weight(torch.rand(8), torch.ones(8), {}, epoch=5, max_epochs=3) == 0).sum() == 2
    assert rule.step_weight(torch.rand(2), torch.ones(2), {}, epoch=5, max_epochs=3).tolist() == [1.0, 1.0]
