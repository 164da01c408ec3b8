import pytest
import torch

from atlantis.models.step_diagnostics import add_counts, epoch_summary, step_weight_counts


def test_counts_say_how_much_of_what_was_dropped_was_corrupted():
    # small-loss's factor on a batch of 6: the two dropped are one corrupted, one clean example
    factor = torch.tensor([1.5, 0.0, 1.5, 1.5, 0.0, 1.5])
    noisy = torch.tensor([False, True, True, False, False, False])
    total = add_counts({}, step_weight_counts(factor, noisy))
    total = add_counts(total, step_weight_counts(torch.tensor([0.0, 2.0]), torch.tensor([True, False])))
    record = epoch_summary(3, total)
    assert record["epoch"] == 3
    assert (record["examples"], record["corrupted"], record["dropped"], record["dropped_corrupted"]) == (8, 3, 3, 2)
    assert record["dropped_precision"] == pytest.approx(2 / 3)
    assert record["corrupted_share"] == pytest.approx(3 / 8)  # what dropping at random would give
    assert record["mean_factor_clean"] == pytest.approx((1.5 * 3 + 0.0 + 2.0) / 5)
    assert record["mean_factor_corrupted"] == pytest.approx(1.5 / 3)


def test_an_epoch_that_dropped_nothing_or_saw_no_corrupted_example_has_no_ratio():
    record = epoch_summary(0, step_weight_counts(torch.ones(4), torch.zeros(4, dtype=torch.bool)))
    assert record["dropped"] == 0 and record["dropped_precision"] is None
    assert record["mean_factor_corrupted"] is None and record["mean_factor_clean"] == pytest.approx(1.0)
