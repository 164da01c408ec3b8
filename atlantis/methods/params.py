"""The `params` slot: what is trained, and whether anything is."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


class FullParams:
    """Every parameter trains."""

    trains = True

    def apply(self, model) -> None:
        for param in model.parameters():
            param.requires_grad = True


class Frozen(FullParams):
    """Nothing trains: the job only tests (zero/few-shot prompting)."""

    trains = False

    def apply(self, model) -> None:
        for param in model.parameters():
            param.requires_grad = False


class TopLayers(FullParams):
    """The top `n` transformer blocks (and the final norm) train; everything below is frozen."""

    def __init__(self, n: int = 8):
        if n < 1:
            raise ValueError(f"top_layers needs n >= 1, got {n}")
        self.n = n

    def apply(self, model) -> None:
        freeze_lower_layers(model, self.n)


def freeze_lower_layers(model, trainable_layers: int) -> None:
    """Train only the top `trainable_layers` transformer blocks (and the final norm); freeze the rest."""
    blocks = None
    for path in ("model.layers", "decoder.block", "transformer.h"):
        obj = model
        try:
            for part in path.split("."):
                obj = getattr(obj, part)
            blocks = obj
            break
        except AttributeError:
            continue
    if blocks is None:
        raise ValueError(f"cannot find the transformer blocks of {type(model).__name__} to freeze")
    for param in model.parameters():
        param.requires_grad = False
    for block in list(blocks)[len(blocks) - trainable_layers :]:
        for param in block.parameters():
            param.requires_grad = True
    for name, param in model.named_parameters():
        if "norm" in name and not any(f".{i}." in name for i in range(len(blocks))):
            param.requires_grad = True
    log.info("training the top %d of %d blocks", trainable_layers, len(blocks))
