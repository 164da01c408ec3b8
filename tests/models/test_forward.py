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
