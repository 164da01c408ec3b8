"""Bad input gets a clear error naming the file, line or example and what was expected."""

import numpy as np
import pytest
import torch

from atlantis.data.datamodule import RelationDataModule
from atlantis.data.examples import RelationExample
from atlantis.data.splits import DatasetSplits, build_splits
from atlantis.data.synthetic import SyntheticReader
from atlantis.models.loading import load_tokenizer, tiny_model
from atlantis.signals import scoring


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer("builtin")


def test_unusual_unicode_round_trips(tokenizer):
    texts = [
        "Die <e1>Straße</e1> führt zum <e2>Bahnhof</e2> 🚉.",
        "The <e1>naïve café</e1>\u200b was in the <e2>东京</e2> district.",
        "مرحبا <e1>بالعالم</e1> و <e2>السلام</e2>",
    ]
    examples = [RelationExample(str(i), t, "h", "t", "Other", "Other") for i, t in enumerate(texts)]
    splits = DatasetSplits("unicode", ["Other", "Cause-Effect"], examples, examples, examples)
    dm = RelationDataModule(splits, tokenizer, "causal")
    dm.setup()
    assert dm.stats["train"]["n_kept"] == 3
    for feature, text in zip(dm.features["train"], texts, strict=True):
        assert text in tokenizer.decode(feature["prompt_ids"])


def test_non_finite_scores_name_the_examples(tokenizer, monkeypatch):
    dm = RelationDataModule(build_splits(SyntheticReader([6, 2, 2])), tokenizer, "causal")
    dm.setup()
    model = tiny_model("causal", len(tokenizer), tokenizer.pad_token_id, tokenizer.eos_token_id)
    real = scoring.example_nll

    def poisoned(model, kind, batch):
        nll, count = real(model, kind, batch)
        return torch.where(
            torch.tensor([i == dm.features["train"][2]["id"] for i in batch["ids"]]), np.nan, nll
        ), count

    monkeypatch.setattr(scoring, "example_nll", poisoned)
    bad_id = dm.features["train"][2]["id"]
    with pytest.raises(FloatingPointError, match=rf"non-finite log-probs for 1 examples, e.g. ids \['{bad_id}'\]"):
        scoring.score_features(model, "causal", dm.features["train"], tokenizer.pad_token_id, "sum")


def test_pair_without_the_reference_model_the_method_needs(tmp_path):
    from atlantis.experiment.pipeline import run_job
    from tests.conftest import job_config

    cfg = job_config(
        "experiment=demo",
        "method=atlantis",
        "reference=pretrained",
        f"paths.output_dir={tmp_path}",
        f"paths.cache_dir={tmp_path}",
    )
    with pytest.raises(ValueError, match="reference=pretrained needs a checkpoint: this model pair names no"):
        run_job(cfg, tmp_path / "run")


def test_label_set_needs_a_closed_label_set(tokenizer):
    dm = RelationDataModule(build_splits(SyntheticReader([4, 2, 2])), tokenizer, "causal")
    dm.setup()
    model = tiny_model("causal", len(tokenizer), tokenizer.pad_token_id, tokenizer.eos_token_id)
    with pytest.raises(ValueError, match="need a closed label set"):
        scoring.score_label_sets(model, "causal", dm.features["train"], tokenizer.pad_token_id, None)


@pytest.mark.parametrize("option", [{"temperature": 0}, {"clip": [2.0, 1.0]}])
def test_nonsense_weight_options(option):
    from atlantis.methods.normalise import normalise_weights

    with pytest.raises(ValueError, match="temperature must be > 0|clip must be"):
        normalise_weights(np.zeros(3), **option)
