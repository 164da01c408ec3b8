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
    "sparse": {"_target_": "atlantis.methods.params.Sparse", "density": 0.05, "score_batches": 2},
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
    L.Trainer(
        max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False, limit_val_batches=0
    ).fit(module, datamodule=dm)
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
        module.params_policy.prepare(module, dm.train_dataloader())
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


def sparse_module(kind="causal", **options):
    spec = dict(POLICIES["sparse"], **options)
    module, dm = build(kind, params=spec)
    return module, dm


def test_sparse_mask_is_the_hand_computed_global_top_k():
    from atlantis.methods.params import Sparse
    from atlantis.models.forward import example_nll
    from atlantis.models.loss import weighted_batch_loss

    module, dm = sparse_module()
    policy: Sparse = module.params_policy
    layers = policy.layers(module.model)
    # By hand: the mean gradient over the first two batches, its magnitude, the global top 5 %.
    for m in layers.values():
        m.weight.requires_grad_(True)
    module.model.eval()
    batches = [b for _, b in zip(range(2), dm.train_dataloader(), strict=False)]
    for batch in batches:
        nll, _ = example_nll(module.model, "causal", batch)
        weighted_batch_loss(nll, batch["weight"]).backward()
    names = list(layers)
    flat = torch.cat([(layers[n].weight.grad / 2).abs().flatten() for n in names])
    for m in layers.values():
        m.weight.grad = None
        m.weight.requires_grad_(False)
    k = round(0.05 * flat.numel())
    expected = set(torch.topk(flat, k).indices.tolist())
    chosen = policy.choose(policy.scores(module, batches))
    offsets = dict(zip(names, torch.tensor([0] + [layers[n].weight.numel() for n in names]).cumsum(0).tolist()))
    got = {offsets[n] + i for n, idx in chosen.items() for i in idx.tolist()}
    assert got == expected and sum(len(i) for i in chosen.values()) == k


def test_per_layer_shares_sum_to_k_and_zero_salience_gets_nothing():
    from atlantis.methods.params import Sparse

    scores = {"a": torch.zeros(10, 10), "b": torch.rand(10, 10, generator=torch.Generator().manual_seed(0))}
    chosen = Sparse(count=20).choose(scores)
    assert set(chosen) == {"b"} and len(chosen["b"]) == 20  # a layer that does not affect the loss gets none
    per_layer = Sparse(count=20, per_layer=True).choose({"a": scores["b"], "b": scores["b"] + 1})
    assert [len(i) for i in per_layer.values()] == [10, 10]


def test_sparse_trains_exactly_the_masked_entries():
    module, dm = sparse_module()
    batch = dm.collator(dm.features["validation"][:4])
    module.eval()
    with torch.no_grad():
        base = module.example_nll(batch)
    report = module.params_policy.prepare(module, dm.train_dataloader())
    with torch.no_grad():
        torch.testing.assert_close(module.example_nll(batch), base, atol=0, rtol=0)  # v = 0: the base model
    trainable = {n: p for n, p in module.model.named_parameters() if p.requires_grad}
    assert all(n.endswith("weight.0.values") for n in trainable)
    assert sum(p.numel() for p in trainable.values()) == report["trained"]
    start = {n: m.weight.detach().clone() for n, m in module.params_policy.layers(module.model).items()}
    trainer = L.Trainer(
        max_steps=3, logger=False, enable_checkpointing=False, enable_progress_bar=False, limit_val_batches=0
    )
    trainer.fit(module, datamodule=dm)
    state = trainer.optimizers[0].state
    assert sum(s["exp_avg"].numel() for s in state.values()) == report["trained"]  # optimizer state = k floats
    layers = module.params_policy.layers(module.model)
    for name, m in layers.items():
        changed = (m.weight.detach() != start[name]).flatten().nonzero().flatten()
        mask = set(report_indices(m).tolist())
        assert set(changed.tolist()) <= mask, name
    assert sum(int((m.weight.detach() != start[n]).sum()) for n, m in layers.items()) > 0


def report_indices(linear):
    from torch.nn.utils import parametrize

    if not parametrize.is_parametrized(linear, "weight"):
        return torch.tensor([], dtype=torch.long)
    return linear.parametrizations.weight[0].indices


def test_value_gradient_is_the_dense_gradient_at_the_mask():
    from atlantis.methods.params import SparseDelta

    torch.manual_seed(0)
    weight, x = torch.randn(6, 5), torch.randn(3, 5)
    indices = torch.tensor([0, 7, 29])
    delta = SparseDelta(indices)
    dense = weight.clone().requires_grad_(True)
    (x @ dense.T).square().sum().backward()
    (x @ delta(weight).T).square().sum().backward()
    torch.testing.assert_close(delta.values.grad, dense.grad.flatten()[indices])


def test_sparse_checkpoint_holds_only_the_deltas(tmp_path):
    module, dm = sparse_module()
    module.params_policy.prepare(module, dm.train_dataloader())
    trainer = L.Trainer(
        max_steps=1, logger=False, enable_progress_bar=False, limit_val_batches=0, default_root_dir=tmp_path
    )
    trainer.fit(module, datamodule=dm)
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    state = torch.load(tmp_path / "m.ckpt")["state_dict"]
    assert state and all(".parametrizations.weight.0." in k for k in state)
    merged = module.params_policy.merge(module.model)
    assert not any("parametrizations" in n for n, _ in merged.named_parameters())


def test_sparse_mask_is_cached_by_model_batches_and_options(tmp_path):
    from atlantis.signals.cache import ArtifactCache

    cache = ArtifactCache(tmp_path)
    masks = []
    for policy in (POLICIES["sparse"], POLICIES["sparse"], dict(POLICIES["sparse"], density=0.1)):
        module, dm = build("causal", params=policy)
        batches = [dm.collator(dm.features["train"][i : i + 4]) for i in (0, 4)]
        module.params_policy.prepare(module, batches, cache=cache, model_key={"tiny": "test"})
        masks.append(module.params_policy.checkpoint_state(module.state_dict()))
    assert [e["event"] for e in cache.events] == ["computed", "hit", "computed"]
    assert masks[0].keys() == masks[1].keys()
    assert all(torch.equal(masks[0][k], masks[1][k]) for k in masks[0] if k.endswith("indices"))
    # Other batches are another key: the mask follows the data it was scored on.
    module, dm = build("causal", params=POLICIES["sparse"])
    other = [dm.collator(dm.features["train"][i : i + 4]) for i in (4, 0)]
    module.params_policy.prepare(module, other, cache=cache, model_key={"tiny": "test"})
    assert cache.events[-1]["event"] == "computed"


def test_global_top_k_without_concatenation_equals_topk_with_ties():
    from atlantis.methods.params import global_top_k

    g = torch.Generator().manual_seed(0)
    for trial in range(30):
        scores = {f"l{i}": torch.rand(torch.randint(1, 30, (2,), generator=g).tolist(), generator=g) for i in range(4)}
        if trial % 2:
            scores["l1"] = (scores["l1"] * 4).round() / 4  # many equal values across the k-th boundary
        flat = torch.cat([s.flatten() for s in scores.values()])
        k = int(torch.randint(1, flat.numel(), (1,), generator=g))
        chosen = global_top_k(scores, k)
        picked = torch.cat([scores[n].flatten()[i] for n, i in chosen.items()])
        assert len(picked) == k
        assert torch.equal(picked.sort(descending=True).values, flat.sort(descending=True).values[:k])
