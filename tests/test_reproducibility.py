"""Same seed, same result: noise, splits, weights and metrics; another seed, other noise."""

import json

import pytest

from atlantis.data.splits import build_splits
from atlantis.data.synthetic import SyntheticReader
from atlantis.experiment.pipeline import run_job
from tests.conftest import job_config, step_losses


def job(tmp_path, name, seed=0, cache=None, sizes="[120,30,30]", epochs=2):
    cfg = job_config(
        "experiment=demo",
        "method=atlantis",
        "noise=0.3",
        f"seed={seed}",
        f"dataset.reader.sizes={sizes}",
        f"trainer.max_epochs={epochs}",
        "trainer.log_every_n_steps=1",
        "trainer.enable_progress_bar=false",
        f"paths.output_dir={tmp_path / name}",
        f"paths.cache_dir={tmp_path / (cache or name) / 'cache'}",
    )
    run_dir = tmp_path / name / "run"
    return run_job(cfg, run_dir), run_dir


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_same_seed_same_everything(tmp_path):
    (first, dir_a), (second, dir_b) = job(tmp_path, "a"), job(tmp_path, "b")
    for key in ("test/f1_official", "test/f1_macro", "val/best_f1", "val/history", "weights"):
        assert first[key] == second[key], key
    assert read_jsonl(dir_a / "predictions.jsonl") == read_jsonl(dir_b / "predictions.jsonl")
    assert read_jsonl(dir_a / "weights.jsonl") == read_jsonl(dir_b / "weights.jsonl")


def test_a_warm_cache_trains_as_a_cold_one(tmp_path):
    # The first job fine-tunes the reference and scores (computed), the second reads them (hit): fine-tuning
    # draws from the global random streams, which must not change the second job's data order.
    losses = {}
    for name in ("cold", "warm"):
        metrics, run_dir = job(tmp_path, name, cache="cold", sizes="[64,16,16]", epochs=1)
        assert {e["event"] for e in metrics["cache"]} == {"computed" if name == "cold" else "hit"}
        losses[name] = step_losses(run_dir)  # one per step, in data order
    assert len(losses["cold"]) == 4 and losses["warm"] == losses["cold"]


def test_other_seed_other_noise_and_split():
    a = build_splits(SyntheticReader(), noise_rate=0.3, seed=0)
    b = build_splits(SyntheticReader(), noise_rate=0.3, seed=1)
    assert {e.id for e in a.train if e.is_noisy} != {e.id for e in b.train if e.is_noisy}
    assert [e.text for e in a.validation] != [e.text for e in b.validation]
    again = build_splits(SyntheticReader(), noise_rate=0.3, seed=0)
    assert [(e.id, e.label) for e in again.train] == [(e.id, e.label) for e in a.train]
