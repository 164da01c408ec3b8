"""What a trained reference's cache key holds: every setting that changes the reference."""

import pytest

from atlantis.signals.store import REFERENCE_TRAINING_KEYS, reference_training_key

PLAIN = {"batch_size": 8, "max_epochs": 3, "accumulate_grad_batches": 1, "lr": 1e-4, "warmup_ratio": 0.1,
         "params": "full", "max_steps": -1, "weight_decay": 0.0, "gradient_clip_val": 1.0, "precision": None,
         "accelerator": "cpu", "enable_progress_bar": False, "deterministic": False}  # fmt: skip


def test_at_the_plain_values_the_key_is_the_one_the_committed_tables_were_made_with():
    assert reference_training_key(PLAIN) == {k: PLAIN[k] for k in REFERENCE_TRAINING_KEYS}
    assert reference_training_key(dict(PLAIN, precision="32")) == reference_training_key(PLAIN)


@pytest.mark.parametrize(
    "change",
    [{"max_steps": 4}, {"weight_decay": 0.01}, {"gradient_clip_val": 0.5}, {"gradient_clip_val": None},
     {"precision": "bf16-mixed"}],
)  # fmt: skip
def test_a_setting_that_changes_the_reference_changes_its_key(change):
    """A smoke run's 4-step reference (trainer.max_steps=4) is never read as the full one."""
    assert reference_training_key(dict(PLAIN, **change)) != reference_training_key(PLAIN)


def test_progress_bars_and_determinism_flags_do_not_enter_the_key():
    assert reference_training_key(dict(PLAIN, enable_progress_bar=True, deterministic=True)) == reference_training_key(
        PLAIN
    )
