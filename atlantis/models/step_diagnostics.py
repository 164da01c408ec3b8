"""What a per-step weighting (small-loss, loss truncation, iw-SFT) did to the corrupted training examples: counts
per epoch, so a run says how much of what small-loss dropped was in fact mislabelled."""

from __future__ import annotations

import torch

COUNTS = ("examples", "corrupted", "dropped", "dropped_corrupted", "factor_clean", "factor_corrupted")


def step_weight_counts(factor: torch.Tensor, is_noisy: torch.Tensor) -> dict[str, float]:
    """One batch's counts: examples, corrupted ones, those the factor zeroed (dropped), and the factor's sums on the
    clean and the corrupted examples."""
    factor, noisy = factor.detach().float().cpu(), is_noisy.bool().cpu()
    dropped = factor == 0
    return {
        "examples": float(len(factor)),
        "corrupted": float(noisy.sum()),
        "dropped": float(dropped.sum()),
        "dropped_corrupted": float((dropped & noisy).sum()),
        "factor_clean": float(factor[~noisy].sum()),
        "factor_corrupted": float(factor[noisy].sum()),
    }


def add_counts(total: dict[str, float], counts: dict[str, float]) -> dict[str, float]:
    return {name: total.get(name, 0.0) + counts[name] for name in COUNTS}


def epoch_summary(epoch: int, total: dict[str, float]) -> dict:
    """An epoch's record: the counts, the share of the dropped that was corrupted (the drop's precision; the
    corrupted share of all examples is what dropping at random would give) and the mean factor on clean and
    corrupted examples."""

    def ratio(a: float, b: float) -> float | None:
        return a / b if b else None

    clean = total["examples"] - total["corrupted"]
    return {
        "epoch": epoch,
        "examples": int(total["examples"]),
        "corrupted": int(total["corrupted"]),
        "dropped": int(total["dropped"]),
        "dropped_corrupted": int(total["dropped_corrupted"]),
        "dropped_precision": ratio(total["dropped_corrupted"], total["dropped"]),
        "corrupted_share": ratio(total["corrupted"], total["examples"]),
        "mean_factor_clean": ratio(total["factor_clean"], clean),
        "mean_factor_corrupted": ratio(total["factor_corrupted"], total["corrupted"]),
    }
