"""The four slots of a method, as base classes: every hook a new option may override, and what calls it.

A method is `select` × `weights` × `loss` × `params` (conf/method/<slot>/<option>.yaml names a subclass by
`_target_`); any option composes with any other, and the job and the LightningModule call only these hooks.
When each hook runs, in one job (atlantis/experiment/pipeline.py):

    build:   select(data) -> Selection                       which examples train
             weights.example_weights(data) -> WeightSet|None  a fixed weight per example (mean 1), cached signals
             weights.columns(data)                            per-example values the batches carry
             loss.prepare(data)                               statistics of the training set (SSR-PU's priors)
             params.apply(model) -> model                     what trains (in RelationLM's constructor)
             params.prepare(module, loader, ...)              data-dependent structure (a sparse mask)
    fit:     params.example_nll(model, kind, batch)           the forward pass (a policy may own it)
             weights.step_weight(nll, n_targets, batch, ...)  a factor per example and step, or None
             loss(module, batch) -> (loss, logs)              the batch's objective
             params.checkpoint_state / restore                what a checkpoint holds and how it reloads
    write:   params.merge(model)                              a plain HF model for save_pretrained
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # the slots' inputs, for the signatures only
    from atlantis.methods.method import TrainingData
    from atlantis.methods.select import Selection
    from atlantis.methods.weights import WeightSet
    from atlantis.models.module import RelationLM


class Select(ABC):
    """Which training examples a method trains on (all, a random or FisherSFT budget, cleanlab's filter)."""

    uses_reference: bool = False  # True: the choice reads the reference's probabilities (reports name which one)

    @abstractmethod
    def __call__(self, data: TrainingData) -> Selection:
        """The ids to train on, in pick order; a Selection with a `report` is written to selection.json and
        restricts the training split (the weights are then normalised over the subset)."""


class Weights(ABC):  # noqa: B024 (every hook has a default: a weighting overrides what it does)
    """How much each example counts: fixed weights computed once before training, a factor per step, or both.
    The default of every hook is "no weighting", so a subclass overrides only what it does."""

    def example_weights(self, data: TrainingData) -> WeightSet | None:
        """Per-example weights by id (mean 1 over `data`), fixed for the whole training; None: every example 1."""
        return None

    def columns(self, data: TrainingData) -> dict[str, dict[str, float]]:
        """Extra per-example floats by id that every training batch carries under their name (iw-SFT's starting
        log-probs); called once, before training, on the examples that train."""
        return {}

    def step_weight(
        self,
        nll: torch.Tensor,
        n_targets: torch.Tensor,
        batch: dict,
        *,
        epoch: float = 0.0,
        max_epochs: int = 1,
        module: RelationLM | None = None,
    ) -> torch.Tensor | None:
        """A factor [B] per example of this step, multiplied into the fixed weights; None: no per-step factor.

        nll: mean target NLL per example (detached), n_targets: target tokens per example, epoch: fractional,
        module: the model being trained (a rule that needs its gradients: L2RW's meta-gradient).
        A rule over the whole batch must see the global batch under DDP (atlantis.utils.distributed.gather_batch).
        """
        return None


class Loss(ABC):
    """The objective of one training batch (the weighted NLL of Algorithm 1 by default)."""

    uses_weights: bool = True  # False: the loss ignores per-example weights, so a weighting cannot compose with it

    def prepare(self, data: TrainingData) -> dict | None:  # noqa: B027 (a hook: most losses need nothing)
        """Before training, with the examples that train (e.g. class priors); a report (metrics.json's `loss`)
        or None."""

    @abstractmethod
    def __call__(self, module: RelationLM, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(scalar loss, extra `train/...` values to log). The module gives the pieces: `module.example_nll(batch)`
        (the params policy's forward), `module.batch_weights(nll, n_targets, batch)` (fixed × per-step weights)
        and `module.label_scores(batch)` (every candidate label's log-prob)."""


class Params(ABC):
    """What is trained, and whether anything is. `apply` changes the model in place (the fast target-only LM-head
    path, `trainer.compile` and plain checkpoints keep working)."""

    trains: bool = True  # False: the job only tests (zero/few-shot prompting)

    @abstractmethod
    def apply(self, model):
        """The model to train: requires_grad set, adapters injected. Called by RelationLM's constructor, so a
        checkpoint reloads into the same structure."""

    def prepare(self, module: RelationLM, loader, cache=None, model_key: str | None = None) -> dict | None:
        """Before training, with the training batches (a mask chosen from gradients); a report or None.

        cache: an ArtifactCache for what `prepare` computes (keyed by `model_key`, the model's identity)."""
        return None

    def example_nll(self, model, kind: str, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean target NLL [B], target tokens [B]) of a training batch. A policy that owns the forward pass
        (top layers over cached frozen blocks) overrides this; evaluation always runs the plain model."""
        from atlantis.models.forward import example_nll

        return example_nll(model, kind, batch)

    def checkpoint_state(self, state_dict: dict) -> dict:
        """What a checkpoint keeps of the module's state (sparse deltas keep only theirs)."""
        return state_dict

    def restore(self, model, state_dict: dict, prefix: str = "model."):
        """Rebuild data-dependent structure (a sparse mask) from a checkpoint before its weights load."""
        return model

    @property
    def strict_loading(self) -> bool:
        """False when checkpoints hold only part of the weights (the rest come from the model's source)."""
        return True

    def merge(self, model):
        """A plain HF model with adapters or deltas folded in (for save_pretrained)."""
        return model


SLOTS = {"select": Select, "weights": Weights, "loss": Loss, "params": Params}
