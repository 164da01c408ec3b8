import torch

from atlantis.data.datamodule import RelationDataModule
from atlantis.data.splits import build_splits
from atlantis.data.synthetic import SyntheticReader
from atlantis.models.forward import example_nll
from atlantis.models.loading import load_tokenizer, tiny_model
from atlantis.models.loss import sequence_nll, shift_for_causal


def test_target_only_logits_equal_the_full_logits_path():
    tok = load_tokenizer("builtin")
    dm = RelationDataModule(build_splits(SyntheticReader([8, 4, 4])), tok, "causal")
    dm.setup()
    batch = dm.collator(dm.features["train"])
    model = tiny_model("causal", len(tok), tok.pad_token_id, tok.eos_token_id).eval()
    assert model.config.model_type == "qwen2"  # takes the fast path
    fast, count = example_nll(model, "causal", batch)
    logits, labels = shift_for_causal(
        model(batch["input_ids"], attention_mask=batch["attention_mask"]).logits, batch["labels"]
    )
    torch.testing.assert_close(fast, sequence_nll(logits, labels), atol=1e-5, rtol=1e-5)
    assert count.tolist() == (labels != -100).sum(dim=1).tolist()


def test_the_target_only_head_covers_gemma_unless_it_soft_caps():
    from types import SimpleNamespace

    from atlantis.models.forward import plain_lm_head

    def model(model_type, **config):
        return SimpleNamespace(config=SimpleNamespace(model_type=model_type, **config))

    assert plain_lm_head(model("gemma3_text", final_logit_softcapping=None))
    assert not plain_lm_head(model("gemma2", final_logit_softcapping=30.0))
    assert plain_lm_head(model("qwen2")) and not plain_lm_head(model("t5"))


def test_a_gemma3_models_target_only_nll_is_its_full_logits_nll():
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    from atlantis.models.forward import target_token_nll
    from atlantis.models.loss import IGNORE_INDEX, shift_for_causal, token_nll

    torch.manual_seed(0)
    config = Gemma3TextConfig(
        vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, head_dim=16, max_position_embeddings=64, sliding_window=8,
    )  # fmt: skip
    model = Gemma3ForCausalLM(config).eval()
    ids = torch.randint(3, 300, (2, 12))
    labels = ids.clone()
    labels[:, :9] = IGNORE_INDEX
    mask = torch.ones_like(ids)
    fast, fast_mask = target_token_nll(model, "causal", ids, mask, labels)
    logits, targets = shift_for_causal(model(input_ids=ids, attention_mask=mask).logits, labels)
    torch.testing.assert_close(fast, token_nll(logits, targets), atol=1e-5, rtol=1e-5)
    assert fast_mask.sum() == 2 * 3


def test_gemma3s_top_blocks_from_cached_lower_outputs_give_the_full_pass_loss_and_gradients():
    """cache_lower on Gemma 3: the upper blocks run as a slice keep their own attention kind (sliding window or
    global) and rotary table, so loss and gradients match the full pass on sequences longer than the window."""
    import copy

    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    from atlantis.methods.params import TopLayers
    from atlantis.models.loss import IGNORE_INDEX

    torch.manual_seed(0)
    kinds = ["sliding_attention", "sliding_attention", "full_attention", "sliding_attention", "full_attention"]
    config = Gemma3TextConfig(
        vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=5, num_attention_heads=2,
        num_key_value_heads=1, head_dim=16, max_position_embeddings=64, sliding_window=4, layer_types=kinds,
    )  # fmt: skip
    plain = Gemma3ForCausalLM(config).eval()
    cached = copy.deepcopy(plain)
    TopLayers(n=3).apply(plain)
    policy = TopLayers(n=3, cache_lower=True)
    policy.apply(cached)
    assert policy.cache_lower and policy.n_lower == 2  # the upper slice starts on a global block
    lengths = [12, 9, 7]
    input_ids = torch.randint(3, 300, (3, 12))
    mask = (torch.arange(12) < torch.tensor(lengths)[:, None]).long()  # right-padded
    labels = torch.where(mask.bool() & (torch.arange(12) >= 5), input_ids, IGNORE_INDEX)
    batch = {"ids": ["a", "b", "c"], "input_ids": input_ids, "attention_mask": mask, "labels": labels}
    for _ in range(2):  # the cache filled, then read
        plain.zero_grad()
        cached.zero_grad()
        want, want_n = example_nll(plain, "causal", batch)
        got, got_n = policy.example_nll(cached, "causal", batch)
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
        assert got_n.tolist() == want_n.tolist()
        want.sum().backward()
        got.sum().backward()
        trained = [(n, p) for n, p in plain.named_parameters() if p.requires_grad]
        assert trained
        for name, param in trained:
            torch.testing.assert_close(dict(cached.named_parameters())[name].grad, param.grad, atol=1e-5, rtol=1e-4)
    assert set(policy.lower) == {"a", "b", "c"} and cached.config.layer_types == kinds
