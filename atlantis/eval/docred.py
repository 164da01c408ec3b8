"""DocRED's F1 and Ign F1, as the official evaluation (and SSR-PU's `official_evaluate`) defines them.

A fact is (document title, head entity index, tail entity index, relation). Ign F1 leaves out of precision
the correct predictions whose fact was already seen in training *by mention names*: some mention pair of
its two entities, by name string, with the same relation, is among the training facts. Recall is the same
with and without it; wrong predictions that match training facts stay in the denominator.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

log = logging.getLogger(__name__)

Fact = tuple[str, int, int, str]


def gold_facts(documents: Sequence[dict]) -> set[Fact]:
    """Every (title, h, t, r) labelled in DocRED-schema documents."""
    return {(doc["title"], label["h"], label["t"], label["r"]) for doc in documents for label in doc.get("labels", [])}


def train_name_facts(documents: Sequence[dict]) -> set[tuple[str, str, str]]:
    """(head mention name, tail mention name, r) over all mention pairs of every training triple."""
    facts = set()
    for doc in documents:
        vertices = doc["vertexSet"]
        for label in doc.get("labels", []):
            for head in vertices[label["h"]]:
                for tail in vertices[label["t"]]:
                    facts.add((head["name"], tail["name"], label["r"]))
    return facts


def docred_scores(
    predicted: Iterable[Fact], documents: Sequence[dict], train_facts: set[tuple[str, str, str]]
) -> dict:
    """precision, recall, F1, Ign precision and Ign F1 of `predicted` against `documents`' labels.

    Duplicates count once; a prediction for a title not among `documents` is simply wrong. With no
    predictions every score is 0 and `empty` is true (the reference code returns -1).
    """
    predictions = set(predicted)
    gold = gold_facts(documents)
    by_title = {doc["title"]: doc for doc in documents}
    correct = predictions & gold
    in_train = 0
    for title, h, t, r in correct:
        vertices = by_title[title]["vertexSet"]
        if any((m["name"], n["name"], r) in train_facts for m in vertices[h] for n in vertices[t]):
            in_train += 1
    if not predictions:
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0, "precision_ign": 0.0, "f1_ign": 0.0, "empty": True}
    precision = len(correct) / len(predictions)
    recall = len(correct) / len(gold) if gold else 0.0
    precision_ign = (len(correct) - in_train) / (len(predictions) - in_train + 1e-5)
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1(precision, recall),
        "precision_ign": precision_ign,
        "f1_ign": f1(precision_ign, recall),
        "n_predicted": len(predictions),
        "n_gold": len(gold),
        "n_correct": len(correct),
        "n_correct_in_train": in_train,
        "empty": False,
    }


def f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def relation_ids(data_dir: str | Path) -> dict[str, str]:
    """Relation name -> Wikidata property id (rel_info.json inverted)."""
    info = json.loads((Path(data_dir) / "rel_info.json").read_text(encoding="utf-8"))
    return {name: pid for pid, name in info.items()}


def predicted_facts(records: list[dict], labels: list[str], documents: list[dict], data_dir, negative) -> set[tuple]:
    """(title, h, t, P-id) for every relation predicted for a test pair (records carry `relations`)."""
    by_key, ids = {d["key"]: d for d in documents}, relation_ids(data_dir)
    facts = set()
    for record in records:
        key, h, t = record["id"].split(":")[:3]
        for index in record.get("relations", []):
            if labels[index] != negative:
                facts.add((by_key[key]["title"], int(h), int(t), ids[labels[index]]))
    return facts


def document_level_metrics(reader, records: list[dict], labels: list[str], negative: str, seed: int) -> dict:
    """DocRED F1 and Ign F1 of the predicted relation sets (a ReDocREDReader's test_metrics); Ign against the
    facts of the training documents. Generated labels (one relation per pair, no sets) get none."""
    if not any("relations" in r for r in records):
        return {}
    documents = reader.documents(seed)
    facts = predicted_facts(records, labels, documents["test"], reader.local_source(), negative)
    scores = docred_scores(facts, documents["test"], train_name_facts(documents["train"]))
    log.info("DocRED test: F1 %.4f, Ign F1 %.4f (%d facts predicted)", scores["f1"], scores["f1_ign"], len(facts))
    return {"test/docred_f1": scores["f1"], "test/docred_ign_f1": scores["f1_ign"], "test/docred": scores}
