"""FSDP for the project's models (`strategy=fsdp`): Lightning's FSDPStrategy with two things its config alone
cannot say.

- The transformer blocks are the FSDP units (`auto_wrap_classes`, dotted class paths: Hydra cannot write the set
  of classes Lightning's `auto_wrap_policy` takes). Without a policy the whole model is one unit, gathered whole
  for every forward: no memory is saved.
- Gradient clipping by norm works. Every trainer preset clips at 1.0 (`trainer.gradient_clip_val`), and
  Lightning's FSDP precision plugin refuses norm clipping (it has no handle on the root FSDP module, whose
  `clip_grad_norm_` is the sharding-aware norm torch documents); here the strategy hands it that module.
- Testing after fitting on the same Trainer (run_job's fit, then test of the best checkpoint) keeps the root FSDP
  module of the fit, where Lightning would leave it off once the blocks are wrapped.

FSDP needs CUDA: Lightning refuses its own FSDPStrategy with accelerator=cpu, and torch's FSDP refuses a CPU
device even past that (torch 2.13, lightning 2.6). Building the strategy works anywhere.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable

from lightning.pytorch.plugins.precision import FSDPPrecision
from lightning.pytorch.strategies import FSDPStrategy as LightningFSDPStrategy
from torch import nn


def module_classes(paths: Iterable[str]) -> set[type[nn.Module]]:
    """The classes these dotted paths name, e.g. `transformers.models.qwen2.modeling_qwen2.Qwen2DecoderLayer`."""
    classes = set()
    for path in paths:
        module_name, _, name = path.rpartition(".")
        if not module_name:
            raise ValueError(f"auto_wrap_classes takes dotted class paths (module.Class), got {path!r}")
        cls = getattr(importlib.import_module(module_name), name, None)
        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            raise ValueError(f"{path!r} names no torch module class")
        classes.add(cls)
    return classes


class NormClippingFSDPPrecision(FSDPPrecision):
    """Lightning's FSDP precision plugin, clipping by the global gradient norm through the root FSDP module."""

    root = None  # the FullyShardedDataParallel root, set by FSDPStrategy once it has wrapped the model

    def clip_grad_by_norm(self, optimizer, clip_val) -> None:
        if self.root is None:  # no root FSDP module (e.g. the model was wrapped by hand): Lightning's refusal
            return super().clip_grad_by_norm(optimizer, clip_val)
        self.root.clip_grad_norm_(clip_val)


class FSDPStrategy(LightningFSDPStrategy):
    """Lightning's FSDPStrategy with `auto_wrap_classes` (dotted class paths of the blocks that become FSDP
    units) and gradient clipping by norm. Every other argument is Lightning's."""

    def __init__(self, *args, auto_wrap_classes: Iterable[str] | None = None, **kwargs):
        if auto_wrap_classes:
            if kwargs.get("auto_wrap_policy") is not None:
                raise ValueError("give auto_wrap_classes or auto_wrap_policy, not both")
            kwargs["auto_wrap_policy"] = module_classes(auto_wrap_classes)  # a set: Lightning's ModuleWrapPolicy
        super().__init__(*args, **kwargs)

    @property
    def precision_plugin(self) -> FSDPPrecision:
        return LightningFSDPStrategy.precision_plugin.fget(self)

    @precision_plugin.setter
    def precision_plugin(self, plugin) -> None:
        if type(plugin) is FSDPPrecision:  # the one the Trainer makes from its `precision`
            clipping = NormClippingFSDPPrecision(plugin.precision)
            clipping.scaler = plugin.scaler  # 16-mixed: keep its ShardedGradScaler
            plugin = clipping
        LightningFSDPStrategy.precision_plugin.fset(self, plugin)

    def _setup_model(self, model: nn.Module) -> nn.Module:
        from torch.distributed.fsdp import FullyShardedDataParallel

        root = getattr(self, "_fsdp_root", None)
        if root is not None and root.module is model:
            # `trainer.test` after `trainer.fit` on the same Trainer (what run_job does) hands back the bare
            # LightningModule, whose blocks are FSDP units already: Lightning would then skip the root wrapper and
            # drop the policy, and the root's parameters (embeddings, final norm) stay flat shards on more than one
            # process ("weight must be 2-D", Lightning issue #19015). The root from fitting is the right one.
            return root
        model = super()._setup_model(model)
        if isinstance(model, FullyShardedDataParallel):
            self._fsdp_root = model
            if isinstance(self._precision_plugin, NormClippingFSDPPrecision):
                self._precision_plugin.root = model
        return model
