"""The labeller command on the tiny model: weak.jsonl, its summary, the cache, and a job trained on it."""

import json

import numpy as np

from atlantis.experiment.fallback import make_reader
from atlantis.experiment.labeller import label_summary, run_labeller
from tests.conftest import job_config
from tests.methods.test_compose import run_tiny

TINY_DATA = ["experiment=demo", "dataset.reader.sizes=[24,8,8]"]


def test_label_summary_counts_errors_and_the_top_class():
    summary = label_summary(["A", "A", "B", "C"], ["A", "B", "B", "B"], ["A", "B", "C"])
    assert summary["natural_error_rate"] == 0.5 and summary["top_class"] == "B"
    assert summary["top_class_share"] == 0.75 and summary["confusion_matrix"][0] == [1, 1, 0]


def test_labeller_writes_weak_labels_once_and_a_job_trains_on_them(tmp_path):
    cfg = job_config(
        *TINY_DATA, f"paths.cache_dir={tmp_path / 'cache'}", f"labeller.out={tmp_path / 'weak'}", "labeller.chunk=10"
    )
    out = run_labeller(cfg)
    rows = [json.loads(line) for line in (out / "weak.jsonl").read_text().splitlines()]
    summary = json.loads((out / "weak_summary.json").read_text())
    assert len(rows) == summary["n"] == 24 + 8  # train and validation sentences
    for row in rows:
        assert abs(sum(row["probs"].values()) - 1) < 1e-4 and row["label"] == max(row["probs"], key=row["probs"].get)
    first = (out / "weak.jsonl").read_bytes()
    assert len(list((tmp_path / "cache" / "weak_label_chunks").iterdir())) == 4  # 32 sentences, resumable pieces
    run_labeller(cfg)  # the second run reads the cache: same file
    assert (out / "weak.jsonl").read_bytes() == first
    weak_file = out / "weak.jsonl"
    metrics, run_dir = run_tiny(
        tmp_path / "job", "noise_kind=labeller", f"noise_kind.weak_file={weak_file}", "noise_kind.natural=true"
    )
    answers = {r["id"]: r["label"] for r in rows}
    gold = {e.id: e.clean_label for e in make_reader(cfg["dataset"]).load(cfg["seed"]).train}
    assert metrics["noise"]["kind"] == "labeller" and np.isfinite(metrics["test/f1_macro"])
    assert metrics["data"]["train"]["n_noisy"] == sum(answers[i] != g for i, g in gold.items())  # natural rate


def test_a_relabelled_file_is_a_new_job_and_gold_demonstrations_are_refused(tmp_path):
    import pytest

    from atlantis.experiment.jobs import job_key

    weak = tmp_path / "weak.jsonl"
    weak.write_text('{"id": "train-0", "label": "Other"}\n')
    cfg = job_config(*TINY_DATA, "noise_kind=labeller", f"noise_kind.weak_file={weak}")
    first = job_key(cfg)
    weak.write_text('{"id": "train-0", "label": "Cause-Effect"}\n')
    assert job_key(cfg) != first  # same path, other labels: not the finished job
    with pytest.raises(ValueError, match="demo_pool=clean_seed"):
        run_labeller(job_config(*TINY_DATA, f"paths.cache_dir={tmp_path / 'c'}", "prompt.shots=1"))
