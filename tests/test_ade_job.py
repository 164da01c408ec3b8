"""ADE jobs on a hand-made fold, offline on the tiny pair: the classifier framing and the end-to-end one."""

import json

from tests.conftest import job_config

DRUGS = ["aspirin", "heparin", "warfarin", "lithium"]
EFFECTS = ["rash", "bleeding", "nausea", "tremor"]


def sentence(i):
    drug, effect = DRUGS[i % 4], EFFECTS[(i + 1) % 4]
    tokens = [effect, "after", drug, "therapy", "."]
    return {
        "tokens": tokens,
        "entities": [{"type": "Adverse-Effect", "start": 0, "end": 1}, {"type": "Drug", "start": 2, "end": 3}],
        "relations": [{"type": "Adverse-Effect", "head": 0, "tail": 1}],
        "orig_id": i,
    }


def write_fold(root):
    sentences = [sentence(i) for i in range(24)]
    (root / "ade_split_0_train.json").write_text(json.dumps(sentences[:20]))
    (root / "ade_split_0_test.json").write_text(json.dumps(sentences[20:]))


def run_ade(tmp_path, *overrides):
    from atlantis.experiment.pipeline import run_job

    data = tmp_path / "ade"
    data.mkdir(exist_ok=True)
    write_fold(data)
    cfg = job_config(
        "model=tiny",
        "trainer=tiny",
        f"dataset.reader.data_dir={data}",
        "trainer.max_epochs=1",
        "trainer.enable_progress_bar=false",
        f"paths.output_dir={tmp_path}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        *overrides,
    )
    run = tmp_path / "run"
    metrics = run_job(cfg, run)
    rows = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    return metrics, rows


def test_the_classifier_framing_runs_on_every_ordered_pair(tmp_path):
    metrics, rows = run_ade(tmp_path, "dataset=ade", "noise=0.25")
    assert len(rows) == 8  # 4 test sentences x 2 ordered pairs (effect->drug positive, drug->effect negative)
    assert sorted(r["gold"] for r in rows) == ["Adverse-Effect"] * 4 + ["no_relation"] * 4
    assert 0.0 <= metrics["test/f1_official"] <= 1.0 and metrics["data"]["train"]["n_noisy"] > 0


def test_the_end_to_end_framing_generates_and_scores_pairs_string_strict(tmp_path):
    from atlantis.eval.extraction import extraction_report

    metrics, rows = run_ade(tmp_path, "dataset=ade_e2e", "eval.max_new_tokens=24", "method=atlantis")
    assert len(rows) == 4 and all(
        r["gold"] == [[DRUGS[i % 4], EFFECTS[(i + 1) % 4]]] for i, r in zip(range(20, 24), rows)
    )
    # the written generations, rescored, give the job's metric
    gold = ["\n".join(f"drug: {d}; effect: {e}" for d, e in r["gold"]) for r in rows]
    report = extraction_report(gold, [r["raw"] for r in rows])
    assert metrics["test/f1_official"] == report["f1_official"]
    assert metrics["test/invalid_lines"] == report["invalid_lines"] == sum(r["invalid_lines"] for r in rows)
    assert (tmp_path / "run" / "weights.jsonl").is_file()  # ATLANTIS weights on the sentences' answers
