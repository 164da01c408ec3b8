"""The `loss` slot: the objective of one training batch."""

from __future__ import annotations

import torch

from atlantis.methods.base import Loss
from atlantis.models.loss import weighted_batch_loss


class WeightedNLL(Loss):
    """ATLANTIS's Algorithm 1: sum_i w_i NLL_i / |B|, w_i the fixed weight times any per-step factor; |B| is the
    global batch, so N processes average to the one-process loss of the same examples."""

    def __call__(self, module, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        nll, n_targets = module.training_nll(batch)
        weights = module.batch_weights(nll, n_targets, batch)
        loss = weighted_batch_loss(nll, weights, module.loss_denominator(batch))
        real = ~batch["padding"].to(nll.device)
        return loss, {"train/nll": nll[real].mean(), "train/weight_mean": weights[real].mean()}
