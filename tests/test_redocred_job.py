"""A Re-DocRED job on a hand-made slice: multi-label predictions, DocRED F1 / Ign F1 in metrics.json."""

import json

from atlantis.eval.docred import docred_scores, train_name_facts
from tests.conftest import job_config


def mention(name, kind="PER"):
    return {"name": name, "type": kind, "sent_id": 0, "pos": [0, 1]}


def document(title, names, labels):
    return {
        "title": title,
        "sents": [[*names, "met", "in", "the", "city", "."]],
        "vertexSet": [[mention(n)] for n in names],
        "labels": [{"h": h, "t": t, "r": r, "evidence": [0]} for h, t, r in labels],
    }


def write_slice(root):
    dev = [
        document("D0", ["Ann", "Bob", "Rome"], [(0, 2, "P19"), (1, 2, "P551")]),
        document("D1", ["Cid", "Dee", "Oslo"], [(0, 2, "P19"), (0, 1, "P26")]),
        document("D2", ["Eve", "Fay", "Nice"], [(1, 2, "P19")]),
    ]
    test = [
        document("T0", ["Gus", "Hal", "Rome"], [(0, 2, "P19"), (0, 2, "P551")]),
        document("T1", ["Ann", "Ivy", "Rome"], [(0, 2, "P19")]),
    ]
    info = {"P19": "place of birth", "P551": "residence", "P26": "spouse"}
    for name, value in (("dev_revised.json", dev), ("test_revised.json", test), ("rel_info.json", info)):
        (root / name).write_text(json.dumps(value))


def slice_job_config(tmp_path, *overrides: str) -> dict:
    """A one-epoch job of the tiny pair on the hand-made slice, written under tmp_path/redocred."""
    data = tmp_path / "redocred"
    data.mkdir()
    write_slice(data)
    return job_config(
        "model=tiny",
        "trainer=tiny",
        "dataset=redocred",
        f"dataset.reader.data_dir={data}",
        "dataset.reader.n_train_docs=2",
        *overrides,
        "trainer.max_epochs=1",
        "trainer.enable_progress_bar=false",
        f"paths.output_dir={tmp_path}",
        f"paths.cache_dir={tmp_path / 'cache'}",
    )


def test_a_redocred_job_scores_relation_sets_with_docred_metrics(tmp_path):
    from atlantis.data.redocred import ReDocREDReader
    from atlantis.experiment.pipeline import run_job

    cfg = slice_job_config(tmp_path)
    data = tmp_path / "redocred"
    metrics = run_job(cfg, tmp_path / "run")
    rows = [json.loads(line) for line in (tmp_path / "run" / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 12 and all("relations" in r for r in rows)  # every ordered pair of the test docs, once
    # Recompute from the written relation sets: the same DocRED scores
    documents = ReDocREDReader(str(data), n_train_docs=2).documents(0)
    names = {"place of birth": "P19", "residence": "P551", "spouse": "P26"}
    titles = {d["key"]: d["title"] for d in documents["test"]}
    facts = set()
    for r in rows:
        key, h, t = r["id"].split(":")
        facts |= {(titles[key], int(h), int(t), names[x]) for x in r["relations"] if x != "no relation"}
    expected = docred_scores(facts, documents["test"], train_name_facts(documents["train"]))
    assert metrics["test/docred_f1"] == expected["f1"] and metrics["test/docred_ign_f1"] == expected["f1_ign"]
