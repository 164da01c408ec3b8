"""Cache keys name what a model is, not where it lies; embeddings are the LM head's inputs."""

import os
import shutil

import numpy as np
import torch

from atlantis.data.datamodule import RelationDataModule
from atlantis.data.examples import RelationExample
from atlantis.data.readers import DatasetSplits
from atlantis.models.forward import target_token_nll
from atlantis.models.loading import load_tokenizer, tiny_model
from atlantis.signals.identity import model_identity
from atlantis.signals.scoring import embed_features


def test_the_same_files_by_another_path_are_the_same_model(tmp_path):
    tok = load_tokenizer("builtin")
    tiny_model("causal", len(tok), tok.pad_token_id, tok.eos_token_id).save_pretrained(tmp_path / "a")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    os.symlink(tmp_path / "a", tmp_path / "link")
    memo = tmp_path / "memo"
    ids = [model_identity({"name_or_path": str(tmp_path / p)}, memo) for p in ("a", "b", "link")]
    assert ids[0] == ids[1] == ids[2] and "local" in ids[0]
    tiny_model("causal", len(tok), tok.pad_token_id, tok.eos_token_id, seed=1).save_pretrained(tmp_path / "a")
    assert model_identity({"name_or_path": str(tmp_path / "a")}, memo) != ids[1]  # new content, new key


def test_first_token_embeddings_ignore_the_label_and_target_ones_do_not():
    tok = load_tokenizer("builtin")
    text = "The <e1>storm</e1> caused the <e2>flood</e2>."
    examples = [
        RelationExample("a", text, "storm", "flood", "Cause-Effect", "Cause-Effect"),
        RelationExample("b", text, "storm", "flood", "Other", "Other"),
    ]
    splits = DatasetSplits("pair", ["Cause-Effect", "Other"], examples, examples, examples)
    for kind in ("causal", "seq2seq"):
        dm = RelationDataModule(splits, tok, kind)
        dm.setup()
        model = tiny_model(kind, len(tok), tok.pad_token_id, tok.eos_token_id)
        first = embed_features(model, kind, dm.features["train"], tok.pad_token_id, "first")
        target = embed_features(model, kind, dm.features["train"], tok.pad_token_id, "target")
        np.testing.assert_allclose(first[0], first[1], atol=1e-5)
        n_targets = [sum(t != -100 for t in f["labels"]) for f in dm.features["train"]]
        assert [len(t) for t in target] == n_targets and target[0].shape[1] == model.config.hidden_size
        # The captured rows are exactly what the head turns into the target tokens' logits.
        batch = dm.collator(dm.features["train"][:1])
        nll, mask = target_token_nll(model.eval(), kind, batch["input_ids"], batch["attention_mask"], batch["labels"])
        targets = batch["labels"][:, 1:] if kind == "causal" else batch["labels"]
        with torch.no_grad():
            logits = model.get_output_embeddings()(torch.from_numpy(target[0]))
        recomputed = torch.nn.functional.cross_entropy(logits, targets[mask], reduction="none")
        torch.testing.assert_close(recomputed, nll[mask].detach(), atol=1e-4, rtol=1e-4)
