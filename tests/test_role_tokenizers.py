"""Each base model role scores the same prompt and target text with its own tokenizer (ATLANTIS across families,
the paper's Table 4): here a large base with the builtin BPE and a small base with a coarser BPE of its own."""

import json

import pytest

from atlantis.experiment.pipeline import run_job
from tests.conftest import job_config
from tests.methods.test_compose import TINY


@pytest.fixture(scope="module")
def small_tokenizer(tmp_path_factory):
    from atlantis.data.builtin_tokenizer import build_builtin_tokenizer

    folder = tmp_path_factory.mktemp("tokenizers") / "coarse"
    build_builtin_tokenizer(vocab_size=300).save_pretrained(folder)  # fewer merges: other token boundaries
    return folder


def config(tmp_path, small_tokenizer, *overrides):
    return job_config(
        *TINY, "model.kind=causal", "noise=0.3", f"+model.small.tokenizer={small_tokenizer}",
        f"paths.output_dir={tmp_path}", f"paths.cache_dir={tmp_path / 'cache'}", *overrides,
    )  # fmt: skip


def test_each_role_encodes_the_same_text_with_its_own_tokenizer(tmp_path, small_tokenizer):
    from atlantis.experiment.pipeline import build_datamodule, role_tokenizer, small_role_encoding
    from atlantis.models.loading import load_tokenizer

    cfg = config(tmp_path, small_tokenizer)
    assert role_tokenizer(cfg["model"], "large") == "builtin" != role_tokenizer(cfg["model"], "small")
    large = load_tokenizer("builtin")
    dm = build_datamodule(cfg, large)
    dm.setup()
    small = small_role_encoding(cfg, dm)
    assert [f["id"] for f in small.features] == [f["id"] for f in dm.features["train"]]
    pairs = list(zip(dm.features["train"], small.features, strict=True))
    decode = [(large.decode(a["input_ids"]), small.tokenizer.decode(b["input_ids"])) for a, b in pairs]
    assert all(x == y for x, y in decode)  # the same text
    assert sum(len(a["input_ids"]) != len(b["input_ids"]) for a, b in pairs) > len(pairs) // 2  # other tokens
    from atlantis.data.tokenization import target_ids

    assert small.label_token_ids != [target_ids(large, dm.builder, label) for label in dm.labels]


def test_a_job_weighs_with_two_tokenizers_and_keys_each_roles_scores_by_its_own(tmp_path, small_tokenizer):
    metrics = run_job(
        config(tmp_path, small_tokenizer, "method=atlantis_crossfit", "reference.folds=2"), tmp_path / "run"
    )
    rows = [json.loads(line) for line in (tmp_path / "run" / "weights.jsonl").read_text().splitlines()]
    assert (
        len(rows) == metrics["data"]["train"]["n_kept"]
        and metrics["data"]["train"]["n_dropped_across_tokenizers"] == 0
    )
    assert all({"logp_large", "logp_small", "logp_reference"} <= set(r) for r in rows)
    specs = [json.loads(p.read_text())["spec"] for p in (tmp_path / "cache" / "scores").glob("*/manifest.json")]
    tokenizers = {s["role"]["model"].get("tiny", {}).get("causal", {}).get("hidden_size"): s["role"]["tokenizer"]
                  for s in specs if "model" in s["role"]}  # fmt: skip
    assert tokenizers[128] == "builtin" and tokenizers[64] != "builtin"  # large (hidden 128) vs small (64)
    reference = [s for s in specs if "reference" in s["role"]]
    assert reference and all(s["role"]["tokenizer"] == tokenizers[64] for s in reference)


def test_per_token_means_across_tokenizers_are_refused(tmp_path, small_tokenizer):
    with pytest.raises(ValueError, match="per-token means are not comparable across vocabularies"):
        run_job(config(tmp_path, small_tokenizer, "method=atlantis", "method.weights.reduction=mean"), tmp_path / "r")


def test_a_model_whose_embedding_table_is_smaller_than_its_tokenizer_is_refused():
    import torch

    from atlantis.models.loading import check_vocabulary

    model = torch.nn.Module()
    model.get_input_embeddings = lambda: torch.nn.Embedding(100, 4)
    check_vocabulary(model, 100, "m")
    with pytest.raises(ValueError, match="embedding table has 100 rows but the tokenizer it is given has 101"):
        check_vocabulary(model, 101, "m")


def test_a_large_table_filled_for_fewer_examples_serves_a_job_that_keeps_more(tmp_path, small_tokenizer):
    # The coarse small tokenizer needs ~2x the tokens, so at this length it truncates about half the prompts
    # and both roles drop them; the same job with one tokenizer keeps every example. The large base's table is
    # keyed by its own tokenizer, the same in both jobs, so the second finds it short of the dropped examples.
    shared = ["method=atlantis_crossfit", "reference.folds=2", "prompt.max_length=103", "method/select=fisher"]
    shared += ["method.select.budget=1.0"]  # FisherSFT reads the embeddings and keeps every example
    first = run_job(config(tmp_path, small_tokenizer, *shared), tmp_path / "first")
    dropped = first["data"]["train"]["n_dropped_across_tokenizers"]
    assert 0 < dropped < first["data"]["train"]["n_kept"] + dropped
    second = run_job(config(tmp_path, "builtin", *shared), tmp_path / "second")
    assert "n_dropped_across_tokenizers" not in second["data"]["train"]  # one tokenizer: nothing to drop

    def large_logps(run):
        rows = (tmp_path / run / "weights.jsonl").read_text().splitlines()
        return {r["id"]: r["logp_large"] for r in map(json.loads, rows)}

    a, b = large_logps("first"), large_logps("second")
    assert len(b) == len(a) + dropped and all(b[i] == pytest.approx(a[i]) for i in a)
    specs = [json.loads(p.read_text())["spec"] for p in (tmp_path / "cache" / "scores").glob("*/manifest.json")]
    assert sum("more_ids" in s for s in specs) == 1  # the dropped examples' rows, cached beside the table
    # FisherSFT's embeddings of the large base: the same, an entry for the rows the first job dropped
    embeddings = [
        json.loads(p.read_text())["spec"] for p in (tmp_path / "cache" / "embeddings").glob("*/manifest.json")
    ]
    assert len(embeddings) == 2 and sum("more_ids" in s for s in embeddings) == 1
    assert second["selection"]["n_train"] == len(b)


def test_glcs_large_estimator_trains_and_scores_in_the_large_encoding_once(tmp_path, small_tokenizer, monkeypatch):
    import atlantis.signals.store as store
    from atlantis.data.tokenization import target_ids
    from atlantis.experiment.pipeline import build_datamodule
    from atlantis.models.loading import load_tokenizer

    fits, label_ids, real_fit, real_score = [], [], store.finetune, store.score_label_sets

    def fit(make_module, features, *args, **kwargs):
        fits.append({f["id"]: f["input_ids"] for f in features})
        return real_fit(make_module, features, *args, **kwargs)

    def score(model, kind, features, pad_token_id, labels, *args, **kwargs):
        label_ids.append(labels)
        return real_score(model, kind, features, pad_token_id, labels, *args, **kwargs)

    monkeypatch.setattr(store, "finetune", fit)
    monkeypatch.setattr(store, "score_label_sets", score)
    cfg = config(tmp_path, small_tokenizer, "+baseline=glc_large", "trusted.per_class=2")
    run_job(cfg, tmp_path / "run")
    large = load_tokenizer("builtin")
    dm = build_datamodule(cfg, large)
    dm.setup()
    own = {f["id"]: f["input_ids"] for f in dm.features["train"]}
    [trained] = fits
    assert trained and all(own[i] == ids for i, ids in trained.items())  # the large tokenizer's tokens
    assert label_ids == [[target_ids(large, dm.builder, label) for label in dm.labels]]
    # another job with the same data and large model reads the estimate: no fit, and no fit's work folder left
    run_job(config(tmp_path / "other", small_tokenizer, "+baseline=glc_large", "trusted.per_class=2",
                   f"paths.cache_dir={tmp_path / 'cache'}"), tmp_path / "other" / "run")  # fmt: skip
    assert len(fits) == 1 and not list((tmp_path / "cache" / "label_sets").glob(".*.work"))
