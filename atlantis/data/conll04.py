"""CoNLL04 in SpERT JSON: one instance per (head, tail) entity pair, entity markers in the sentence."""

from __future__ import annotations

import json
from pathlib import Path

from atlantis.data.examples import DatasetFormatError, RelationExample, check_label
from atlantis.data.readers import DatasetReader, DatasetSplits

HUB_ID = "DFKI-SLT/conll04"
RELATIONS = ("Kill", "Live_In", "Located_In", "OrgBased_In", "Work_For")
NO_RELATION = "no_relation"
SPLIT_FILES = {"train": "conll04_train.json", "validation": "conll04_dev.json", "test": "conll04_test.json"}
HUB_SPLITS = {"train": "train", "validation": "validation", "test": "test"}


def label_inventory(include_no_relation: bool) -> list[str]:
    return list(RELATIONS) + ([NO_RELATION] if include_no_relation else [])


def mark_entities(tokens: list[str], head: dict, tail: dict) -> str:
    """Join tokens with <e1>..</e1> around the head span and <e2>..</e2> around the tail span."""
    out = []
    spans = (("e1", head), ("e2", tail))
    for i, token in enumerate(tokens):
        # Nested spans (ADE) stay well nested: of two spans opening here the longer opens first, of two
        # closing here the one that opened later closes first.
        opening = sorted((s for s in spans if s[1]["start"] == i), key=lambda s: -s[1]["end"])
        out += [f"<{tag}>" for tag, _ in opening]
        out.append(token)
        closing = sorted((s for s in spans if s[1]["end"] - 1 == i), key=lambda s: (-s[1]["start"], s[0] == "e1"))
        out += [f"</{tag}>" for tag, _ in closing]
    return (
        " ".join(out)
        .replace("<e1> ", "<e1>")
        .replace("<e2> ", "<e2>")
        .replace(" </e1>", "</e1>")
        .replace(" </e2>", "</e2>")
    )


def checked_spans(sentence: dict, where: str) -> tuple[list, list]:
    """(tokens, entities) of a SpERT sentence, every entity span inside its tokens."""
    for key in ("tokens", "entities", "relations"):
        if key not in sentence:
            raise DatasetFormatError(f"{where}: missing key {key!r}; expected tokens, entities, relations")
    tokens, entities = sentence["tokens"], sentence["entities"]
    if not tokens:
        raise DatasetFormatError(f"{where}: empty token list")
    for e, entity in enumerate(entities):
        start, end = entity.get("start"), entity.get("end")
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(tokens)):
            raise DatasetFormatError(
                f"{where}: entity {e} has span [{start}, {end}); expected 0 <= start < end <= {len(tokens)}"
            )
    return tokens, entities


def labelled_pairs(relations_of_sentence: list, n_entities: int, relations, where: str) -> dict[tuple[int, int], str]:
    """{(head, tail): relation} of a sentence's annotated relations (one per ordered entity pair)."""
    pairs: dict[tuple[int, int], str] = {}
    for r, relation in enumerate(relations_of_sentence):
        head, tail = relation.get("head"), relation.get("tail")
        if not all(isinstance(i, int) and 0 <= i < n_entities for i in (head, tail)) or head == tail:
            raise DatasetFormatError(
                f"{where}: relation {r} has head {head}, tail {tail}; expected two different entity indices "
                f"below {n_entities}"
            )
        label = check_label(relation.get("type"), relations, f"{where} relation {r}")
        if (head, tail) in pairs:
            raise DatasetFormatError(f"{where}: entity pair ({head}, {tail}) has two relations")
        pairs[(head, tail)] = label
    return pairs


def sentence_to_examples(
    sentence: dict,
    split: str,
    index: int,
    where: str,
    include_no_relation: bool,
    relations: tuple[str, ...] = RELATIONS,
    sentence_id: str | None = None,
) -> list[RelationExample]:
    """All instances of one SpERT sentence; `where` names the file and record for errors.

    relations: the dataset's relation types (CoNLL04's by default); sentence_id: the id prefix of its
    instances (default `split-index`; ADE uses its fold-independent `orig_id`)."""
    tokens, entities = checked_spans(sentence, where)
    labels = list(relations) + ([NO_RELATION] if include_no_relation else [])
    pairs = labelled_pairs(sentence["relations"], len(entities), relations, where)
    if include_no_relation:
        for h in range(len(entities)):
            for t in range(len(entities)):
                if h != t and not _overlap(entities[h], entities[t]):
                    pairs.setdefault((h, t), NO_RELATION)
    examples = []
    for (h, t), label in sorted(pairs.items()):
        head, tail = entities[h], entities[t]
        text = mark_entities(tokens, head, tail)
        check_label(label, labels, where)
        examples.append(
            RelationExample(
                id=f"{sentence_id or f'{split}-{index}'}-{h}-{t}",
                text=text,
                head=" ".join(tokens[head["start"] : head["end"]]),
                tail=" ".join(tokens[tail["start"] : tail["end"]]),
                label=label,
                clean_label=label,
            )
        )
    return examples


def _overlap(a: dict, b: dict) -> bool:
    return a["start"] < b["end"] and b["start"] < a["end"]


def parse_spert_file(path: str | Path, split: str, include_no_relation: bool = False) -> list[RelationExample]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CoNLL04 file not found: {path}")
    raw = path.read_text(encoding="utf-8")
    if not raw.strip():
        raise DatasetFormatError(f"{path}: the file is empty; expected a JSON array of SpERT sentences")
    try:
        sentences = json.loads(raw)
    except json.JSONDecodeError as err:
        raise DatasetFormatError(f"{path}:{err.lineno}:{err.colno}: malformed JSON ({err.msg})") from err
    if not isinstance(sentences, list):
        raise DatasetFormatError(f"{path}: expected a JSON array of sentences, got {type(sentences).__name__}")
    examples = []
    for index, sentence in enumerate(sentences):
        if not isinstance(sentence, dict):
            raise DatasetFormatError(f"{path} record {index}: expected an object, got {type(sentence).__name__}")
        examples += sentence_to_examples(sentence, split, index, f"{path} record {index}", include_no_relation)
    return examples


def load_conll04(
    split: str, data_dir: str | Path | None = None, include_no_relation: bool = False, hub_id: str = HUB_ID
) -> list[RelationExample]:
    """Instances of `split` ('train', 'validation', 'test') from SpERT files in `data_dir`, else the hub."""
    if split not in SPLIT_FILES:
        raise ValueError(f"CoNLL04 has splits {list(SPLIT_FILES)}, not {split!r}")
    if data_dir:
        return parse_spert_file(Path(data_dir) / SPLIT_FILES[split], split, include_no_relation)
    import datasets

    rows = datasets.load_dataset(hub_id, split=HUB_SPLITS[split])
    examples = []
    for index, row in enumerate(rows):
        examples += sentence_to_examples(
            dict(row), split, index, f"{hub_id}[{split}] row {index}", include_no_relation
        )
    return examples


class CoNLL04Reader(DatasetReader):
    """CoNLL04 (SpERT splits): one instance per gold entity pair; `include_no_relation` adds the other pairs."""

    name = "conll04"
    env_subdir = "conll04"

    def __init__(self, data_dir: str | None = None, hub_id: str = HUB_ID, include_no_relation: bool = False):
        super().__init__(data_dir, hub_id)
        self.include_no_relation = include_no_relation

    def load(self, seed: int) -> DatasetSplits:
        data_dir = self.local_source()
        kwargs = {
            "data_dir": data_dir,
            "include_no_relation": self.include_no_relation,
            "hub_id": self.hub_id or HUB_ID,
        }
        train, val, test = (load_conll04(s, **kwargs) for s in ("train", "validation", "test"))
        negative = NO_RELATION if self.include_no_relation else None
        labels = label_inventory(self.include_no_relation)
        return DatasetSplits(self.name, labels, train, val, test, negative, {"data_dir": data_dir})
