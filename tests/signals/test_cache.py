"""A second job that needs a reference or a score table reuses it; a corrupt entry is rebuilt."""

import numpy as np
import pytest

from atlantis.data.tokenization import target_ids
from atlantis.experiment.pipeline import build_datamodule, build_method, build_signals
from atlantis.methods.method import TrainingData
from tests.conftest import job_config as compose_job


def job_config(tmp_path, reference="finetune", method="atlantis"):
    return compose_job(
        "experiment=demo",
        f"method={method}",
        f"reference={reference}",
        "noise=0.3",
        "dataset.reader.sizes=[60,10,10]",
        "trainer.max_epochs=1",
        f"paths.cache_dir={tmp_path}",
    )


def weigh(cfg):
    from atlantis.models.loading import load_tokenizer

    tok = load_tokenizer("builtin")
    dm = build_datamodule(cfg, tok)
    dm.setup()
    cands = [target_ids(tok, dm.builder, label) for label in dm.labels]
    method = build_method(cfg)
    signals = build_signals(cfg, dm, tok, cands, method)
    data = TrainingData(dm.features["train"], dm.examples("train"), dm.labels, signals, cfg["seed"])
    weights = method.weights.example_weights(data).weights
    return weights, {e["name"]: e["event"] for e in signals.cache.events}


@pytest.mark.parametrize("reference", ["finetune", "crossfit"])
def test_second_job_reuses_references_and_scores(tmp_path, reference):
    cfg = job_config(tmp_path, reference)
    first, events = weigh(cfg)
    assert set(events.values()) == {"computed"}
    assert "scores/reference/sum" in events
    second, events = weigh(cfg)
    # Only the three score tables are looked up: the references behind them are not even opened.
    assert events == {"scores/large/sum": "hit", "scores/small/sum": "hit", "scores/reference/sum": "hit"}
    assert second == first
    # Another method over the same data reuses the same tables.
    _, events = weigh(job_config(tmp_path, reference, method="ref_only"))
    assert events == {"scores/reference/sum": "hit"}


def test_corrupt_entries_are_rebuilt(tmp_path):
    cfg = job_config(tmp_path)
    first, _ = weigh(cfg)
    table = next(p for p in (tmp_path / "scores").rglob("value.json"))
    table.write_text(table.read_text()[:-20])  # a truncated write
    for manifest in (tmp_path / "references").rglob("manifest.json"):
        manifest.unlink()  # an interrupted reference
    for other in (tmp_path / "scores").rglob("manifest.json"):
        if other.parent != table.parent:
            other.unlink()  # force the reference to be needed again
    again, events = weigh(cfg)
    assert "rebuilt" in events.values()
    assert events["reference"] == "rebuilt"
    assert again == pytest.approx(first)


def test_different_noise_seed_is_a_different_entry(tmp_path):
    weigh(job_config(tmp_path))
    cfg = job_config(tmp_path)
    cfg["seed"] = 1
    _, events = weigh(cfg)
    assert set(events.values()) == {"computed"}


def test_a_computed_entry_leaves_the_random_streams_as_a_hit_does(tmp_path):
    import random

    import numpy as np
    import torch

    from atlantis.signals.cache import ArtifactCache

    def build(tmp):  # draws from every global stream, as fine-tuning a reference does
        (tmp / "x.txt").write_text(f"{torch.rand(1).item()} {np.random.rand()} {random.random()}")

    def next_draws():
        return torch.rand(3).tolist(), np.random.rand(3).tolist(), [random.random() for _ in range(3)]

    cache, draws = ArtifactCache(tmp_path), {}
    for event in ("computed", "hit"):
        torch.manual_seed(0)
        np.random.seed(0)
        random.seed(0)
        cache.get_or_create("entry", {"a": 1}, build)
        assert cache.events[-1]["event"] == event
        draws[event] = next_draws()
    assert draws["computed"] == draws["hit"]


def signals_for(cfg):
    from atlantis.models.loading import load_tokenizer

    tok = load_tokenizer("builtin")
    dm = build_datamodule(cfg, tok)
    dm.setup()
    cands = [target_ids(tok, dm.builder, label) for label in dm.labels]
    return build_signals(cfg, dm, tok, cands, build_method(cfg))


def test_crossfit_folds_keep_their_scores_without_their_checkpoints(tmp_path):
    """Fold-major scoring caches each fold's held-out tables: losing the checkpoints (a new machine) or stopping
    in fold 2 costs no retraining of fold 1; the assembled tables equal those scored table by table."""
    import shutil

    cfg = job_config(tmp_path / "a", "crossfit")
    cfg["reference"]["folds"] = 2
    signals = signals_for(cfg)
    signals.score_reference_by_fold(reductions=("sum",), label_sets=True)
    trained = [(e["name"], e["event"]) for e in signals.cache.events if e["name"].startswith("reference fold")]
    # each fold's model trains once and scores both tables before the next fold trains
    assert trained == [("reference fold 0", "computed"), ("reference fold 0", "hit"),
                       ("reference fold 1", "computed"), ("reference fold 1", "hit")]  # fmt: skip
    shutil.rmtree(tmp_path / "a" / "references")
    for entry in (tmp_path / "a" / "label_sets_folds").iterdir():
        if '"fold": 1' in (entry / "manifest.json").read_text():
            shutil.rmtree(entry)  # fold 1's label sets were not scored before the stop
    signals = signals_for(cfg)
    sums, label_sets = signals.sequence_logprobs("reference", "sum"), signals.label_set_logprobs("reference")
    events = {e["name"]: e["event"] for e in signals.cache.events}
    assert events["scores/reference/sum fold 0"] == events["label_sets/reference fold 0"] == "hit"
    assert events["label_sets/reference fold 1"] == "computed" and events["reference fold 1"] == "computed"
    assert "reference fold 0" not in events  # fold 0 was not retrained

    fresh = signals_for(job_config(tmp_path / "b", "crossfit") | {"reference": cfg["reference"]})
    np.testing.assert_allclose(sums, fresh.sequence_logprobs("reference", "sum"), rtol=1e-6)
    np.testing.assert_allclose(label_sets, fresh.label_set_logprobs("reference"), rtol=1e-6)


def slow_build_in_another_process(root, started, log):
    """get_or_create of one entry whose build takes a while and records that it ran (a process's target)."""
    import time
    from pathlib import Path

    from atlantis.signals.cache import ArtifactCache

    def build(tmp):
        Path(started).touch()
        with open(log, "a") as f:
            f.write("built\n")
        time.sleep(1.0)
        (tmp / "value.json").write_text("1")

    ArtifactCache(root).get_or_create("references", {"fold": 0}, build)


def test_two_processes_needing_one_entry_build_it_once(tmp_path):
    """Two jobs of a joblib or SLURM sweep that need the same reference: one fits it, the other waits and reads it
    (before the lock both fitted it in one work folder and could corrupt each other's checkpoint)."""
    import multiprocessing
    import time

    from atlantis.signals.cache import ArtifactCache

    started, log = tmp_path / "started", tmp_path / "log"
    other = multiprocessing.get_context("spawn").Process(
        target=slow_build_in_another_process, args=(tmp_path / "cache", started, log)
    )
    other.start()
    while not started.exists() and other.is_alive():
        time.sleep(0.05)
    cache = ArtifactCache(tmp_path / "cache")
    path = cache.get_or_create("references", {"fold": 0}, lambda tmp: log.open("a").write("built here\n"))
    other.join(timeout=60)
    assert other.exitcode == 0 and log.read_text() == "built\n"  # built once, by the other process
    assert (path / "value.json").read_text() == "1" and cache.events[-1]["event"] == "hit"
