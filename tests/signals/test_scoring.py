"""Scores under each reduction equal a hand computation from one example at a time."""

import numpy as np
import pytest
import torch

from atlantis.data.datamodule import RelationDataModule
from atlantis.data.splits import build_splits
from atlantis.data.synthetic import SyntheticReader
from atlantis.data.tokenization import target_ids
from atlantis.models.loading import load_tokenizer, tiny_model
from atlantis.signals.scoring import label_set_posterior, score_features, score_label_sets


@pytest.fixture(scope="module", params=["seq2seq", "causal"])
def setup(request):
    kind = request.param
    tok = load_tokenizer("builtin")
    dm = RelationDataModule(build_splits(SyntheticReader([12, 4, 4])), tok, kind)
    dm.setup()
    model = tiny_model(kind, len(tok), tok.pad_token_id, tok.eos_token_id, seed=3).eval()
    cands = [target_ids(tok, dm.builder, label) for label in dm.labels]
    return kind, tok, dm, model, cands


def one_at_a_time(model, kind, prompt, target):
    """Sum of target-token log-probs from one full forward pass of one example."""
    with torch.no_grad():
        if kind == "seq2seq":
            logits = model(input_ids=torch.tensor([prompt]), labels=torch.tensor([target])).logits[0]
            logp = torch.log_softmax(logits, -1)
            return sum(logp[i, t].item() for i, t in enumerate(target))
        ids = prompt + target
        logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0], -1)
        return sum(logp[len(prompt) - 1 + i, t].item() for i, t in enumerate(target))


def test_reductions_match_hand_computation(setup):
    kind, tok, dm, model, cands = setup
    features = dm.features["train"]
    got = {r: score_features(model, kind, features, tok.pad_token_id, r, batch_size=5) for r in ("sum", "mean")}
    label_sets = score_label_sets(model, kind, features, tok.pad_token_id, cands, batch_size=5)
    observed = [f["label_index"] for f in features]
    got["label_set"] = label_set_posterior(label_sets)[np.arange(len(features)), observed]
    for i, f in enumerate(features):
        target = cands[f["label_index"]]
        total = one_at_a_time(model, kind, f["prompt_ids"], target)
        assert got["sum"][i] == pytest.approx(total, abs=1e-4)
        assert got["mean"][i] == pytest.approx(total / len(target), abs=1e-4)
        per_label = np.array([one_at_a_time(model, kind, f["prompt_ids"], c) for c in cands])
        np.testing.assert_allclose(label_sets[i], per_label, atol=1e-4)
        posterior = per_label - np.logaddexp.reduce(per_label)
        assert got["label_set"][i] == pytest.approx(posterior[f["label_index"]], abs=1e-4)
