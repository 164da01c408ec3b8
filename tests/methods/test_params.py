"""The params slot: what trains, and every policy survives save -> reload."""

import lightning as L
import pytest
import torch

from atlantis.methods.params import LoRA
from atlantis.models.module import RelationLM
from tests.models.test_module import build

POLICIES = {
    "full": {"_target_": "atlantis.methods.params.FullParams"},
    "top_layers": {"_target_": "atlantis.methods.params.TopLayers", "n": 1},
    "lora": {"_target_": "atlantis.methods.params.LoRA", "r": 4, "alpha": 8, "dropout": 0.0},
    "frozen": {"_target_": "atlantis.methods.params.Frozen"},
}



@pytest.mark.parametrize("kind", ["seq2seq", "causal"])
def test_lora_trains_only_adapters_and_counts_them(kind):
    module, dm = build(kind, params=POLICIES["lora"])
    trainable = {n: p for n, p in module.model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    adapted = [m for m in module.model.modules() if hasattr(m, "lora_A")]
    expected = sum(4 * (m.in_features + m.out_features) for m in adapted)
    assert sum(p.numel() for p in trainable.values()) == expected
    before = {n: p.detach().clone() for n, p in module.model.named_parameters()}
    L.Trainer(max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False, limit_val_batches=0).fit(
        module, datamodule=dm
    )
    changed = {n for n, p in module.model.named_parameters() if not torch.equal(before[n], p)}
    assert changed and all("lora_" in n for n in changed)


def test_peft_default_targets_on_t5_are_q_and_v():
    module, _ = build("seq2seq", params=dict(POLICIES["lora"], target_modules="peft"))
    adapted = {name.rsplit(".", 1)[-1] for name, m in module.model.named_modules() if hasattr(m, "lora_A")}
    assert adapted == {"q", "v"}


@pytest.mark.parametrize("kind", ["seq2seq", "causal"])
def test_merged_lora_gives_the_wrapped_logits(kind):
    module, dm = build(kind, params=POLICIES["lora"])
    torch.manual_seed(0)
    for name, param in module.model.named_parameters():
        if "lora_B" in name:
            param.data.normal_(std=0.05)  # B starts at 0: make the adapters matter
    batch = dm.collator(dm.features["validation"][:4])
    module.eval()
    with torch.no_grad():
        wrapped = module.example_nll(batch)
        merged_model = LoRA().merge(module.model)
        assert not any(hasattr(m, "lora_A") for m in merged_model.modules())
        module.model = merged_model
        merged = module.example_nll(batch)
    torch.testing.assert_close(merged, wrapped, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_every_policy_survives_save_and_reload(tmp_path, policy):
    module, dm = build("causal", params=POLICIES[policy])
    trainer = L.Trainer(
        max_steps=2, logger=False, enable_progress_bar=False, limit_val_batches=0, default_root_dir=tmp_path
    )
    if policy != "frozen":
        trainer.fit(module, datamodule=dm)
    else:
        trainer.strategy.connect(module)
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    reloaded = RelationLM.load_from_checkpoint(path, weights_only=True)
    batch = dm.collator(dm.features["validation"][:4])
    module.eval(), reloaded.eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded.example_nll(batch), module.example_nll(batch))
    assert {n for n, p in reloaded.model.named_parameters() if p.requires_grad} == {
        n for n, p in module.model.named_parameters() if p.requires_grad
    }
