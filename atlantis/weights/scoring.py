"""Frozen scoring of every training example under a model: batched, length-sorted, no gradients."""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from atlantis.data.datamodule import Collator
from atlantis.eval.decoding import score_candidates_causal, score_candidates_seq2seq
from atlantis.models.forward import example_nll

REDUCTIONS = ("sum", "mean", "label_set")
SCORING_VERSION = 1  # bump when scores change meaning: it is part of every cache key


def length_sorted_batches(features: list[dict], batch_size: int) -> list[list[int]]:
    """Index batches of similar length, longest first (padding waste is small; OOM shows up at once)."""
    order = sorted(range(len(features)), key=lambda i: -len(features[i]["input_ids"]))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


@torch.no_grad()
def score_features(
    model,
    kind: str,
    features: list[dict],
    pad_token_id: int,
    reduction: str = "sum",
    label_token_ids: list[list[int]] | None = None,
    batch_size: int = 16,
    desc: str = "scoring",
) -> np.ndarray:
    """log p(y_i | x_i) for every feature, in feature order.

    sum: sequence log-prob (target tokens + EOS); mean: per-token mean; label_set: the sequence log-prob
    renormalised over the candidate labels (log-softmax over `label_token_ids`), a class posterior.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if reduction == "label_set" and not label_token_ids:
        raise ValueError("reduction=label_set needs a closed label set (label_token_ids)")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    collate = Collator(pad_token_id, kind)
    scores = np.zeros(len(features), dtype=np.float64)
    for indices in tqdm(length_sorted_batches(features, batch_size), desc=desc, unit="batch", leave=False):
        batch = collate([features[i] for i in indices])
        batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
        if reduction == "label_set":
            if kind == "seq2seq":
                cand = score_candidates_seq2seq(
                    model, batch["input_ids"], batch["attention_mask"], label_token_ids, pad_token_id
                )
            else:
                cand = score_candidates_causal(
                    model, batch["prompt_ids"], batch["prompt_attention_mask"], label_token_ids, pad_token_id
                )
            posterior = torch.log_softmax(cand.double(), dim=1)
            values = posterior.gather(1, batch["label_index"].unsqueeze(1)).squeeze(1)
        else:
            mean_nll, count = example_nll(model, kind, batch)
            values = -mean_nll * count if reduction == "sum" else -mean_nll
        scores[indices] = values.double().cpu().numpy()
    model.train(was_training)
    bad = [features[i]["id"] for i in np.flatnonzero(~np.isfinite(scores))]
    if bad:
        raise FloatingPointError(f"{desc}: non-finite log-probs for {len(bad)} examples, e.g. ids {bad[:10]}")
    return scores
