"""Re-DocRED (Tan et al., EMNLP 2022), document-level RE cast as pair classification (methods-next §3.3).

One instance per (document, ordered entity pair): the prompt is the document with the pair named after it
(`{sentence}` = the document; `{head}` / `{tail}` = first mention and type), so one encoded document prefix
serves all of its pairs. Target: the relation's name (rel_info.json) or `no relation`. Training keeps one
instance per (pair, relation) and samples `na_ratio` no-relation pairs per positive instance in each document
(seeded; under `incomplete` noise drawn again after it, from the pairs the annotation leaves unannotated, so a
missed pair is as likely a training negative as any other unannotated one); validation and test hold every pair
once (their gold facts, possibly several per pair, are read from the documents by the DocRED metrics). Only dev
and test are released here: train / validation is a seeded 400 / 100 split of the dev documents, by document; test
is the 500 test documents.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path

import numpy as np

from atlantis.data.examples import DatasetFormatError, RelationExample
from atlantis.data.readers import DatasetReader, DatasetSplits, read_json_array

log = logging.getLogger(__name__)

NO_RELATION = "no relation"
HUB_ID = "tonytan48/Re-DocRED"


def read_documents(path: Path) -> list[dict]:
    documents = read_json_array(path, "Re-DocRED")
    for i, doc in enumerate(documents):
        if not isinstance(doc, dict) or not {"title", "sents", "vertexSet"} <= doc.keys():
            raise DatasetFormatError(f"{path} document {i}: expected an object with title, sents, vertexSet, labels")
        for label in doc.get("labels", []):
            n = len(doc["vertexSet"])
            if not (0 <= label.get("h", -1) < n and 0 <= label.get("t", -1) < n):
                raise DatasetFormatError(f"{path} document {i} ({doc['title']}): label {label} names no entity of {n}")
    return documents


def entity_name(vertex: list[dict]) -> str:
    return f"{vertex[0]['name']} ({vertex[0]['type']})"


def document_text(doc: dict) -> str:
    return " ".join(" ".join(sentence) for sentence in doc["sents"])


def pair_instances(
    doc: dict, names: dict[str, str], key: str, na_ratio: float | None, rng: np.random.Generator
) -> list[RelationExample]:
    """A document's instances: all pairs once (na_ratio None), or each (pair, relation) plus sampled NA pairs.
    Ids are `key:h:t` (`:relation` for training positives); key names the document (`dev17`, `test3`)."""
    relations: dict[tuple[int, int], list[str]] = {}
    for label in doc.get("labels", []):
        if label["r"] not in names:
            raise DatasetFormatError(f"{doc['title']}: relation {label['r']!r} is not in rel_info.json")
        relations.setdefault((label["h"], label["t"]), []).append(names[label["r"]])
    n = len(doc["vertexSet"])
    pairs = [(h, t) for h in range(n) for t in range(n) if h != t]
    text = document_text(doc)

    def instance(h, t, label, suffix=""):
        vertices = doc["vertexSet"]
        return RelationExample(
            f"{key}:{h}:{t}{suffix}", text, entity_name(vertices[h]), entity_name(vertices[t]), label, label
        )

    if na_ratio is None:  # evaluation: every pair once; its label is its first relation (facts come from the doc)
        return [instance(h, t, sorted(relations.get((h, t), [NO_RELATION]))[0]) for h, t in pairs]
    positives = [instance(h, t, r, f":{r}") for (h, t), rs in sorted(relations.items()) for r in sorted(set(rs))]
    negatives = [p for p in pairs if p not in relations]
    n_na = min(len(negatives), int(round(na_ratio * len(positives))))
    chosen = sorted(rng.choice(len(negatives), size=n_na, replace=False).tolist()) if n_na else []
    return positives + [instance(*negatives[i], NO_RELATION) for i in chosen]


def n_negative_pairs(doc: dict) -> int:
    """How many ordered entity pairs of a document hold no relation."""
    n = len(doc["vertexSet"])
    return n * (n - 1) - len({(lab["h"], lab["t"]) for lab in doc.get("labels", []) if lab["h"] != lab["t"]})


class ReDocREDReader(DatasetReader):
    """Re-DocRED pairs: `n_train_docs` of the 500 dev documents train, the rest validate (seeded, by document)."""

    name = "redocred"
    env_subdir = "redocred"
    relation_sets = True
    test_metrics = "atlantis.eval.docred.document_level_metrics"  # DocRED F1 / Ign F1 of the relation sets

    def __init__(
        self,
        data_dir: str | None = None,
        hub_id: str = HUB_ID,
        n_train_docs: int = 400,
        na_ratio: float = 3.0,
        max_docs: int | None = None,
        max_test_docs: int | None = None,
    ):
        super().__init__(data_dir, hub_id)
        self.n_train_docs, self.na_ratio, self.max_docs = n_train_docs, na_ratio, max_docs
        self.max_test_docs = max_test_docs
        # a training document's pairs with no relation, and how many of them load() sampled (resample_negatives)
        self.negative_pairs: dict[str, tuple[int, int]] | None = None

    def documents(self, seed: int) -> dict[str, list[dict]]:
        """The documents of each split (train / validation by the seeded dev split; test), for the metrics."""
        data_dir = self.local_source()
        if data_dir is None:
            raise FileNotFoundError(f"Re-DocRED needs its JSON files: set ATLANTIS_DATA_DIR (hub: {self.hub_id})")
        dev = read_documents(Path(data_dir) / "dev_revised.json")
        test = read_documents(Path(data_dir) / "test_revised.json")
        if not 0 < self.n_train_docs < len(dev):
            raise ValueError(f"n_train_docs must leave validation documents of the {len(dev)} dev ones")
        for key, docs in (("dev", dev), ("test", test)):
            for i, doc in enumerate(docs):
                doc["key"] = f"{key}{i}"  # the instances' id prefix (titles may hold any character)
        order = np.random.default_rng(seed).permutation(len(dev))
        train = [dev[i] for i in sorted(order[: self.n_train_docs].tolist())]
        validation = [dev[i] for i in sorted(order[self.n_train_docs :].tolist())]
        if self.max_docs:  # a slice for CPU runs: the first documents of each split
            train, validation, test = (docs[: self.max_docs] for docs in (train, validation, test))
        if self.max_test_docs:  # scoring a test document costs ~400 pairs x every label: fewer for CPU runs
            test = test[: self.max_test_docs]
        return {"train": train, "validation": validation, "test": test}

    def load(self, seed: int) -> DatasetSplits:
        docs = self.documents(seed)
        data_dir = self.local_source()
        info = json.loads((Path(data_dir) / "rel_info.json").read_text(encoding="utf-8"))
        labels = sorted(info.values()) + [NO_RELATION]
        rng = np.random.default_rng(seed + 1)
        train = [e for d in docs["train"] for e in pair_instances(d, info, d["key"], self.na_ratio, rng)]
        sampled = Counter(e.id.split(":")[0] for e in train if e.label == NO_RELATION)
        self.negative_pairs = {d["key"]: (n_negative_pairs(d), sampled[d["key"]]) for d in docs["train"]}
        validation = [e for d in docs["validation"] for e in pair_instances(d, info, d["key"], None, rng)]
        test = [e for d in docs["test"] for e in pair_instances(d, info, d["key"], None, rng)]
        meta = {"data_dir": data_dir, "documents": {k: len(v) for k, v in docs.items()}, "na_ratio": self.na_ratio}
        return DatasetSplits(self.name, labels, train, validation, test, NO_RELATION, meta)

    def resample_negatives(self, train: list[RelationExample], seed: int) -> tuple[list[RelationExample], dict]:
        """NA pairs drawn again after `incomplete` noise: `na_ratio` per positive instance the annotation kept,
        uniformly from a document's unannotated pairs, its missed pairs among them, as a pipeline sampling NA
        pairs from a real incomplete annotation would. Sampled before the noise, every missed pair would train
        as a negative, several times its share among the unannotated pairs. Exact per document on the whole set;
        where fewer sampled negatives are left (max_train_examples), every document's true negative pairs count at
        the rate they were kept, as its missed pairs were, so the missed share stays unbiased. A subsample leaves some
        documents fewer sampled negatives than their draw asks for and others more: what the first lack
        (`topped_up`) is drawn the same way from the pairs the others have left, so the ratio holds over the set;
        what even that cannot fill is reported (`shortfall`) and warned of."""
        if self.na_ratio is None:  # every pair trains: nothing was sampled
            return list(train), {}
        if self.negative_pairs is None:
            raise RuntimeError("resample_negatives needs the training documents: call load() first")
        rng = np.random.default_rng(seed)
        by_document: dict[str, list[int]] = {}
        for i, example in enumerate(train):
            by_document.setdefault(example.id.split(":")[0], []).append(i)
        # the share of the sampled negatives still here (max_train_examples keeps each with the same chance): each
        # document's true negative pairs count at that rate, as its missed pairs were kept at it
        at_load = sum(n_sampled for _, n_sampled in self.negative_pairs.values())
        rate = sum(e.clean_label == NO_RELATION for e in train) / at_load if at_load else 1.0
        keep, totals = [], Counter()
        spare_missed, spare_sampled, spare_true_negatives = [], [], 0  # what each document's draw left
        for key, positions in by_document.items():
            annotated = [i for i in positions if train[i].label != NO_RELATION]
            missed = [i for i in positions if train[i].label == NO_RELATION and train[i].is_noisy]
            sampled = [i for i in positions if train[i].clean_label == NO_RELATION]
            n_pairs, _ = self.negative_pairs[key]
            true_negatives = round(n_pairs * rate)  # all of them without a subsample
            unannotated = true_negatives + len(missed)
            # the ratio's ask, at most the pairs the document has; a subsample may have kept fewer (the top-up's)
            asked = min(n_pairs + len(missed), int(round(self.na_ratio * len(annotated))))
            target = min(unannotated, asked)
            drawn_missed, drawn_sampled = draw_unannotated(rng, missed, sampled, true_negatives, target)
            keep += annotated + drawn_missed + drawn_sampled
            spare_missed += sorted(set(missed) - set(drawn_missed))
            spare_sampled += sorted(set(sampled) - set(drawn_sampled))
            spare_true_negatives += max(true_negatives - len(drawn_sampled), 0)
            totals.update(missed_pairs=len(missed), target=asked, missed_among_negatives=len(drawn_missed),
                          negatives=len(drawn_missed) + len(drawn_sampled))  # fmt: skip
            totals["expected_missed"] += target * len(missed) / unannotated if unannotated else 0.0
        lacking = totals["target"] - totals["negatives"]
        if lacking:  # from the pairs every document left, uniformly again: the missed ones keep their share
            spare_true_negatives = max(spare_true_negatives, len(spare_sampled))
            drawn_missed, drawn_sampled = draw_unannotated(
                rng, spare_missed, spare_sampled, spare_true_negatives, lacking
            )
            keep += drawn_missed + drawn_sampled
            topped_up = len(drawn_missed) + len(drawn_sampled)
            totals.update(missed_among_negatives=len(drawn_missed), negatives=topped_up, topped_up=topped_up)
            spare = spare_true_negatives + len(spare_missed)
            totals["expected_missed"] += min(lacking, spare) * len(spare_missed) / spare if spare else 0.0

        def share(part: float, whole: float) -> float:
            return round(part / whole, 4) if whole else 0.0

        n_drawn = totals["negatives"]
        report = {
            "na_ratio": self.na_ratio,
            "missed_pairs": totals["missed_pairs"],
            "target": totals["target"],  # na_ratio x the positives kept, at most each document's own pairs
            "negatives": n_drawn,
            "topped_up": totals["topped_up"],  # negatives drawn from other documents' spare pairs
            "shortfall": totals["target"] - n_drawn,  # negatives the ratio asked for that no example was left for
            "missed_among_negatives": totals["missed_among_negatives"],
            "missed_share_of_negatives": share(totals["missed_among_negatives"], n_drawn),
            # what a uniform draw gives on average, document by document, then over the spare pairs: the share to
            # compare with
            "missed_share_expected": share(totals["expected_missed"], n_drawn),
        }
        log.info(
            "NA pairs drawn after the missed labels: %d negatives (%d from other documents), %d of them missed pairs "
            "(%.1f %%; a uniform draw from the unannotated pairs gives %.1f %% on average); %d missed pairs not drawn",
            n_drawn, report["topped_up"], report["missed_among_negatives"], 100 * report["missed_share_of_negatives"],
            100 * report["missed_share_expected"], report["missed_pairs"] - report["missed_among_negatives"],
        )  # fmt: skip
        if report["shortfall"]:
            log.warning(
                "NA pairs: %d of the %d negatives the ratio %.1f asks for had no example left to draw "
                "(max_train_examples or the trusted seed took them): fewer negatives train",
                report["shortfall"], totals["target"], self.na_ratio,
            )  # fmt: skip
        return [train[i] for i in sorted(keep)], report


def draw_unannotated(
    rng: np.random.Generator, missed: list[int], sampled: list[int], true_negatives: int, n: int
) -> tuple[list[int], list[int]]:
    """`n` pairs drawn uniformly from `missed` pairs and `true_negatives` true negative pairs, of which `sampled`
    are a uniform sample: how many are missed ones is hypergeometric, and the rest come from `sampled` (fewer where
    too few are left)."""
    n = min(n, len(missed) + true_negatives)
    if not n:
        return [], []
    from_missed = int(rng.hypergeometric(len(missed), true_negatives, n))
    from_sampled = min(n - from_missed, len(sampled))
    drawn_missed = rng.choice(missed, from_missed, replace=False).tolist() if from_missed else []
    drawn_sampled = rng.choice(sampled, from_sampled, replace=False).tolist() if from_sampled else []
    return drawn_missed, drawn_sampled
