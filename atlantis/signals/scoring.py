"""Frozen passes over training features, batched and length-sorted, no gradients: per-example log-probs,
label-set log-probs [N, C] and last-layer embeddings."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from atlantis.data.datamodule import Collator
from atlantis.models.decoding import score_candidates
from atlantis.models.forward import example_nll, target_hidden_states
from atlantis.utils.progress import progress

REDUCTIONS = ("sum", "mean", "label_set")
EMBEDDING_TOKENS = ("target", "first")


def length_sorted_batches(features: list[dict], batch_size: int) -> list[list[int]]:
    """Index batches of similar length, longest first (padding waste is small; OOM shows up at once)."""
    order = sorted(range(len(features)), key=lambda i: -len(features[i]["input_ids"]))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


@torch.no_grad()
def _frozen_pass(model, kind, features, pad_token_id, batch_size, desc, step: Callable) -> list:
    """step(batch) -> one value per example of the batch; returned in feature order."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    collate = Collator(pad_token_id, kind)
    out = [None] * len(features)
    try:
        for indices in progress(length_sorted_batches(features, batch_size), desc, "batches"):
            batch = collate([features[i] for i in indices])
            batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
            for i, value in zip(indices, step(batch), strict=True):
                out[i] = value
    finally:
        model.train(was_training)
    return out


def _check_finite(values: np.ndarray, features: list[dict], desc: str) -> np.ndarray:
    bad_rows = ~np.isfinite(values).reshape(len(values), -1).all(axis=1)
    bad = [features[i]["id"] for i in np.flatnonzero(bad_rows)]
    if bad:
        raise FloatingPointError(f"{desc}: non-finite log-probs for {len(bad)} examples, e.g. ids {bad[:10]}")
    return values


def score_features(
    model, kind: str, features: list[dict], pad_token_id: int, reduction: str = "sum", batch_size=16, desc="scoring"
) -> np.ndarray:
    """log p(y_i | x_i) for every feature [N]: `sum` over target tokens (+ EOS) or their `mean`."""
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction must be 'sum' or 'mean' here, got {reduction!r} (label_set: score_label_sets)")

    def step(batch):
        mean_nll, count = example_nll(model, kind, batch)
        return (-mean_nll * count if reduction == "sum" else -mean_nll).double().cpu().tolist()

    values = np.array(_frozen_pass(model, kind, features, pad_token_id, batch_size, desc, step), dtype=np.float64)
    return _check_finite(values, features, desc)


def score_label_sets(
    model, kind: str, features: list[dict], pad_token_id: int, label_token_ids, batch_size=16, desc="label sets"
) -> np.ndarray:
    """[N, C] sequence log-prob of every candidate label for every feature (prompt encoded once)."""
    if not label_token_ids:
        raise ValueError("label-set scores need a closed label set (label_token_ids)")

    def step(batch):
        return score_candidates(model, kind, batch, label_token_ids, pad_token_id).double().cpu().numpy()

    values = np.stack(_frozen_pass(model, kind, features, pad_token_id, batch_size, desc, step))
    return _check_finite(values, features, desc)


def label_set_posterior(label_set_logprobs: np.ndarray) -> np.ndarray:
    """[N, C] log p(label | x) renormalised over the candidate labels (a class posterior, log space)."""
    x = np.asarray(label_set_logprobs, dtype=np.float64)
    shifted = x - x.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def embed_features(
    model, kind: str, features: list[dict], pad_token_id: int, tokens="target", batch_size=16, desc="embeddings"
) -> list[np.ndarray]:
    """Per feature, the LM head's inputs at its target positions ([m_i, d]); `first`: only the first one."""
    if tokens not in EMBEDDING_TOKENS:
        raise ValueError(f"tokens must be one of {EMBEDDING_TOKENS}, got {tokens!r}")

    def step(batch):
        rows = target_hidden_states(model, kind, batch)
        return [r[:1].cpu().numpy() if tokens == "first" else r.cpu().numpy() for r in rows]

    return _frozen_pass(model, kind, features, pad_token_id, batch_size, desc, step)
