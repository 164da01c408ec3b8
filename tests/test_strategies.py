"""The strategy presets (conf/strategy) on CPU: each builds, FSDP's helper wraps the right blocks and clips by norm.
Training with FSDP or DeepSpeed needs CUDA: benchmarks/gpu_check.py runs one job with each on a GPU."""

from __future__ import annotations

import importlib.util

import lightning as L
import pytest
import torch

from atlantis.experiment.config import compose_job, instantiate


def strategy(name: str):
    return instantiate(compose_job("experiment=demo", f"strategy={name}")["strategy"])


def test_ddp_preset_builds():
    assert type(strategy("ddp")).__name__ == "DDPStrategy"


def test_fsdp_preset_wraps_the_transformer_blocks_and_saves_full_checkpoints():
    from torch.distributed.fsdp.wrap import ModuleWrapPolicy
    from transformers.models.llama.modeling_llama import LlamaDecoderLayer
    from transformers.models.qwen2.modeling_qwen2 import Qwen2DecoderLayer
    from transformers.models.t5.modeling_t5 import T5Block

    from atlantis.utils.fsdp import FSDPStrategy

    fsdp = strategy("fsdp")
    assert isinstance(fsdp, FSDPStrategy)
    policy = fsdp.kwargs["auto_wrap_policy"]
    assert isinstance(policy, ModuleWrapPolicy)
    assert set(policy._module_classes) == {Qwen2DecoderLayer, LlamaDecoderLayer, T5Block}
    assert fsdp._state_dict_type == "full"  # one file per checkpoint: run_job resumes, prunes and tests files


def test_module_classes_refuses_what_is_no_module_class():
    from atlantis.utils.fsdp import module_classes

    assert module_classes(["torch.nn.Linear"]) == {torch.nn.Linear}
    for bad in ("Linear", "torch.nn.functional.relu", "torch.nn.NoSuchLayer"):
        with pytest.raises(ValueError):
            module_classes([bad])


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed", "16-mixed"])
def test_fsdp_trainer_gets_the_norm_clipping_precision(precision):
    from atlantis.utils.fsdp import FSDPStrategy, NormClippingFSDPPrecision

    trainer = L.Trainer(accelerator="cpu", devices=1, strategy=FSDPStrategy(), precision=precision, logger=False)
    plugin = trainer.strategy.precision_plugin
    assert isinstance(plugin, NormClippingFSDPPrecision)
    assert plugin.precision == precision
    assert (plugin.scaler is not None) == (precision == "16-mixed")


def test_fsdp_clipping_by_norm_goes_through_the_root_module():
    from lightning.pytorch.utilities.exceptions import MisconfigurationException

    from atlantis.utils.fsdp import NormClippingFSDPPrecision

    plugin = NormClippingFSDPPrecision("32-true")
    with pytest.raises(MisconfigurationException):  # no root yet: Lightning's own refusal
        plugin.clip_gradients(None, 1.0)

    class Root:
        def clip_grad_norm_(self, max_norm):
            self.clipped = max_norm

    plugin.root = Root()
    plugin.clip_gradients(None, 0.5)
    assert plugin.root.clipped == 0.5


def test_fsdp_needs_cuda_here():
    """What the CPU can say about FSDP: torch refuses a CPU device (Lightning refuses its own FSDPStrategy earlier)."""
    from lightning.pytorch.strategies import FSDPStrategy as LightningFSDP

    with pytest.raises(ValueError, match="requires a GPU accelerator"):
        L.Trainer(accelerator="cpu", devices=1, strategy=LightningFSDP(), logger=False)


@pytest.mark.skipif(importlib.util.find_spec("deepspeed") is None, reason="deepspeed is the optional group")
def test_deepspeed_preset_builds():
    ds = strategy("deepspeed")
    assert type(ds).__name__ == "DeepSpeedStrategy"
    assert ds.config["zero_optimization"]["stage"] == 2
