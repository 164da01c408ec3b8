"""The weighted negative log-likelihood of Algorithm 1 (ATLANTIS), as small pure functions."""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100


def token_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """NLL of every position in float32, 0 where labels == -100. logits [..., T, V], labels [..., T] -> [..., T]."""
    return F.cross_entropy(
        logits.flatten(0, -2).float(), labels.flatten(), ignore_index=IGNORE_INDEX, reduction="none"
    ).view(labels.shape)


def sequence_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-example NLL: the mean over target tokens (labels != -100). logits [B, T, V], labels [B, T] -> [B].

    Logits and labels must already be aligned (decoder-only models shift them before calling).
    """
    n_targets = (labels != IGNORE_INDEX).sum(dim=1)
    return token_nll(logits, labels).sum(dim=1) / n_targets.clamp(min=1)


def weighted_batch_loss(
    example_nll: torch.Tensor, weights: torch.Tensor, denominator: float | None = None
) -> torch.Tensor:
    """sum_i w_i * NLL_i / |B|: the weights are constants, so no gradient flows into them.

    denominator: |B| by default; a process holding a share of a global batch passes global size / world size,
    so that the mean DDP takes over the processes is the global batch's loss."""
    total = (weights.detach().to(example_nll.device, example_nll.dtype) * example_nll).sum()
    return total / (example_nll.shape[0] if denominator is None else denominator)


def weighted_nll(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Batch loss  sum_i w_i * NLL_i / |B|  with NLL_i the mean over example i's target tokens."""
    return weighted_batch_loss(sequence_nll(logits, labels), weights)


def shift_for_causal(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Align a decoder-only model's logits (position t predicts t+1) with its labels."""
    return logits[:, :-1, :], labels[:, 1:]
