"""The `params` slot: what is trained, and whether anything is.

A policy's `apply(model)` returns the model to train (the same object, changed in place, so the fast
target-only LM-head path, `trainer.compile` and plain checkpoints keep working); `merge(model)` returns a
plain HF model with any adapter folded in, for `save_pretrained`.
"""

from __future__ import annotations

import logging

import torch

log = logging.getLogger(__name__)


class FullParams:
    """Every parameter trains."""

    trains = True

    def apply(self, model):
        for param in model.parameters():
            param.requires_grad = True
        return model

    def merge(self, model):
        return model


class Frozen(FullParams):
    """Nothing trains: the job only tests (zero/few-shot prompting)."""

    trains = False

    def apply(self, model):
        for param in model.parameters():
            param.requires_grad = False
        return model


class TopLayers(FullParams):
    """The top `n` transformer blocks (and the final norm) train; everything below is frozen."""

    def __init__(self, n: int = 8):
        if n < 1:
            raise ValueError(f"top_layers needs n >= 1, got {n}")
        self.n = n

    def apply(self, model):
        freeze_lower_layers(model, self.n)
        return model


# Every Linear of the blocks, per architecture (the output layer is never adapted).
ALL_LINEAR = {
    "t5": ["q", "k", "v", "o", "wi", "wi_0", "wi_1", "wo"],
    "qwen2": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
}


class LoRA(FullParams):
    """LoRA adapters through HF `peft`, injected in place; only the adapters train.

    target_modules: a list, `all-linear` (every Linear of the blocks; default) or `peft` (peft's
    per-architecture default, q and v).
    """

    def __init__(self, r: int = 16, alpha: int = 32, dropout: float = 0.05, target_modules="all-linear"):
        if r < 1:
            raise ValueError(f"LoRA rank must be >= 1, got {r}")
        self.r, self.alpha, self.dropout, self.target_modules = r, alpha, dropout, target_modules

    def targets(self, model) -> list[str] | None:
        if isinstance(self.target_modules, (list, tuple)):
            return list(self.target_modules)
        if self.target_modules == "peft":
            return None  # peft picks its default for the architecture
        model_type = getattr(model.config, "model_type", "")
        if model_type not in ALL_LINEAR:
            raise ValueError(f"no all-linear LoRA targets known for {model_type!r}; set method.params.target_modules")
        names = {name.rsplit(".", 1)[-1] for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
        return sorted(names & set(ALL_LINEAR[model_type]))

    def apply(self, model):
        from peft import LoraConfig, inject_adapter_in_model

        config = LoraConfig(
            r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout, target_modules=self.targets(model)
        )
        model = inject_adapter_in_model(config, model)
        for name, param in model.named_parameters():
            param.requires_grad = "lora_" in name
        return model

    def merge(self, model):
        """Fold every adapter into its base weight and put the plain Linear back."""
        from peft.tuners.lora import LoraLayer

        for name, module in list(model.named_modules()):
            if isinstance(module, LoraLayer):
                module.merge()
                parent_name, _, child = name.rpartition(".")
                setattr(model.get_submodule(parent_name) if parent_name else model, child, module.get_base_layer())
        return model


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
