"""reference=trusted: the small base fine-tuned on the trusted seed alone, serving the weights and cleanlab."""

import json

import pytest

import atlantis.signals.store as store
from atlantis.experiment.jobs import job_key
from atlantis.experiment.pipeline import run_job, signals_data_key
from tests.conftest import job_config
from tests.methods.test_compose import TINY

SMALL = [*TINY, "dataset.reader.sizes=[60,8,8]", "noise=0.5"]


def config(tmp_path, *overrides):
    return job_config(*SMALL, f"paths.output_dir={tmp_path}", f"paths.cache_dir={tmp_path / 'cache'}", *overrides)


@pytest.fixture
def trained_on(monkeypatch):
    """The ids of the examples every reference fit trained on, in call order."""
    calls, real = [], store.finetune

    def spy(make_module, features, *args, **kwargs):
        calls.append([f["id"] for f in features])
        return real(make_module, features, *args, **kwargs)

    monkeypatch.setattr(store, "finetune", spy)
    return calls


@pytest.mark.parametrize("use", ["union", "none"])
def test_the_trusted_reference_trains_on_the_trusted_seed_only(tmp_path, trained_on, use):
    cfg = config(tmp_path, "method=atlantis", "reference=trusted", "trusted.per_class=3", f"trusted.use={use}")
    metrics = run_job(cfg, tmp_path / "run")
    trusted = metrics["trusted"]["ids"]
    assert len(trusted) == 15 and trained_on == [trusted]  # one fit, on the 5 x 3 gold examples
    rows = [json.loads(line) for line in (tmp_path / "run" / "weights.jsonl").read_text().splitlines()]
    weighted = {r["id"] for r in rows}
    assert (set(trusted) <= weighted) if use == "union" else not set(trusted) & weighted
    n_weak = metrics["data"]["train"]["n_kept"] - (len(trusted) if use == "union" else 0)
    assert metrics["weights"]["auroc_clean_vs_noisy"] is not None
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["trusted"]["use"] == use
    assert len(rows) - (len(trusted) if use == "union" else 0) == n_weak


def test_cleanlab_takes_the_trusted_references_probabilities_and_keeps_the_gold_seed(tmp_path, trained_on):
    metrics = run_job(config(tmp_path, "method=cleanlab", "reference=trusted", "trusted.per_class=3"), tmp_path / "r")
    trusted = metrics["trusted"]["ids"]
    assert trained_on == [trusted] and metrics["selection"]["n_trusted_kept"] == len(trusted)
    selected = json.loads((tmp_path / "r" / "selection.json").read_text())["ids"]
    assert set(trusted) <= set(selected)  # cleanlab judges the weak labels; the gold ones always train
    assert metrics["selection"]["n_train"] == metrics["data"]["train"]["n_kept"] - len(trusted)


def test_a_weighting_on_the_seed_alone_has_no_weak_example_to_judge(tmp_path):
    metrics = run_job(config(tmp_path, "method=atlantis", "trusted.per_class=3", "trusted.use=only"), tmp_path / "r")
    assert metrics["weights"]["auroc_clean_vs_noisy"] is None and metrics["data"]["train"]["n_kept"] == 15


def test_a_trusted_reference_without_a_trusted_seed_says_what_to_set(tmp_path):
    with pytest.raises(ValueError, match="set trusted.per_class=k"):
        run_job(config(tmp_path, "method=atlantis", "reference=trusted"), tmp_path / "run")


def test_without_a_trusted_seed_job_and_signal_keys_are_unchanged(tmp_path):
    """trusted.per_class=0 is the job of before the trusted seed existed: no key mentions it."""
    plain = config(tmp_path)
    assert "trusted" not in signals_data_key(plain)
    seeded = config(tmp_path, "trusted.per_class=2")
    assert signals_data_key(seeded)["trusted"] == {"trusted_per_class": 2, "trusted_use": "union"}
    assert job_key(plain) != job_key(seeded) and job_key(plain) == job_key(config(tmp_path, "trusted.use=none"))


@pytest.mark.parametrize("weigh_gold", [False, True])
def test_gold_examples_weigh_one_and_the_weak_ones_share_the_normalisation(tmp_path, weigh_gold):
    """A trusted reference has seen the gold seed: weighed by it, the seed would take more than its share."""
    cfg = config(
        tmp_path, "method=atlantis", "reference=trusted", "trusted.per_class=3", f"trusted.weigh_gold={weigh_gold}"
    )
    metrics = run_job(cfg, tmp_path / "run")
    rows = [json.loads(line) for line in (tmp_path / "run" / "weights.jsonl").read_text().splitlines()]
    gold = [r for r in rows if r["trusted"]]
    weak = [r for r in rows if not r["trusted"]]
    assert len(gold) == len(metrics["trusted"]["ids"]) == 15 and all("logp_reference" in r for r in gold)
    if weigh_gold:  # the setting before: every example normalised together
        assert sum(r["weight"] for r in rows) / len(rows) == pytest.approx(1.0)
        assert any(r["weight"] != 1.0 for r in gold)
    else:  # per-class: each observed label's weak examples average 1
        assert all(r["weight"] == 1.0 for r in gold)
        for label in {r["label"] for r in weak}:
            mine = [r["weight"] for r in weak if r["label"] == label]
            assert sum(mine) / len(mine) == pytest.approx(1.0)


def test_weigh_gold_is_in_the_key_only_of_jobs_it_acts_on(tmp_path):
    def key(*overrides):
        return job_key(config(tmp_path, "trusted.per_class=2", *overrides))

    assert key("method=atlantis") != key("method=atlantis", "trusted.weigh_gold=true")
    assert key("method=l2rw") != key("method=l2rw", "trusted.weigh_gold=true")  # a per-step factor
    assert key("method=sft") == key("method=sft", "trusted.weigh_gold=true")  # unit weights: nothing to weigh
    assert key("method=atlantis", "trusted.use=none") == key(
        "method=atlantis", "trusted.use=none", "trusted.weigh_gold=true"
    )
