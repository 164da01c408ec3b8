"""A method = select × weights × loss × params, each slot an object built from its own config group."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from atlantis.data.examples import RelationExample
from atlantis.methods.base import Loss, Params, Select, Weights

# The method every other is compared with in reports.
BASELINE = "sft"


def reads_reference(method_cfg: dict) -> bool:
    """Whether a method's config makes it read the reference: a weight term, or a selection that filters on the
    reference's probabilities (cleanlab). Its result then depends on which reference (`reference=`)."""
    from hydra.utils import get_class

    select = (method_cfg.get("select") or {}).get("_target_")
    return "reference" in ((method_cfg.get("weights") or {}).get("terms") or ()) or bool(
        select and get_class(select).uses_reference
    )


@dataclass
class Method:
    name: str  # the preset's name (conf/method/<name>.yaml), as reports show it
    select: Select
    weights: Weights
    loss: Loss
    params: Params

    def __post_init__(self):
        from atlantis.methods.base import SLOTS

        for slot, base in SLOTS.items():
            if not isinstance(getattr(self, slot), base):
                raise TypeError(
                    f"method {self.name!r}: its {slot} slot is a {type(getattr(self, slot)).__name__}, which does not "
                    f"implement {base.__module__}.{base.__name__}"
                )


@dataclass
class TrainingData:
    """What the slots see: the training features (all, or the selected subset), their examples and the signals.

    `signals` covers the whole training split (its cache entries are shared by every method and subset);
    `signal_positions()` maps the current features onto it.
    """

    features: list[dict]
    examples: list[RelationExample]
    labels: list[str]
    signals: object
    seed: int
    # the trusted seed's features in the trained model's encoding (trusted.per_class; empty without one), for the
    # slots that use gold labels beside the weak ones (L2RW's meta batches, GLC's corruption estimate)
    trusted: list[dict] = field(default_factory=list)

    def trusted_ids(self) -> set[str]:
        return {f["id"] for f in self.trusted}

    def signal_positions(self) -> np.ndarray:
        where = {example_id: i for i, example_id in enumerate(self.signals.ids)}
        return np.array([where[f["id"]] for f in self.features], dtype=np.int64)

    def subset(self, ids: list[str]) -> TrainingData:
        keep = set(ids)
        pairs = [(f, e) for f, e in zip(self.features, self.examples, strict=True) if f["id"] in keep]
        features, examples = [f for f, _ in pairs], [e for _, e in pairs]
        return TrainingData(features, examples, self.labels, self.signals, self.seed, self.trusted)
