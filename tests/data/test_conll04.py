import json
from collections import Counter

import pytest

from atlantis.data.conll04 import NO_RELATION, mark_entities, parse_spert_file
from atlantis.data.examples import DatasetFormatError

# Per relation and split, from the data folder's README (one instance per gold relation).
EXPECTED = {
    "train": {"Live_In": 330, "OrgBased_In": 271, "Work_For": 256, "Located_In": 247, "Kill": 179},
    "validation": {"Live_In": 91, "OrgBased_In": 76, "Work_For": 69, "Located_In": 65, "Kill": 42},
    "test": {"Live_In": 100, "OrgBased_In": 105, "Work_For": 76, "Located_In": 94, "Kill": 47},
}
FILES = {"train": "conll04_train.json", "validation": "conll04_dev.json", "test": "conll04_test.json"}


@pytest.mark.parametrize("split", list(EXPECTED))
def test_real_instance_counts(conll04_dir, split):
    examples = parse_spert_file(conll04_dir / FILES[split], split)
    assert dict(Counter(e.label for e in examples)) == EXPECTED[split]
    assert len({e.id for e in examples}) == len(examples)
    for e in examples:
        assert e.text.count("<e1>") == e.text.count("<e2>") == 1


def test_no_relation_pairs_are_added(conll04_dir):
    plain = parse_spert_file(conll04_dir / FILES["validation"], "validation")
    full = parse_spert_file(conll04_dir / FILES["validation"], "validation", include_no_relation=True)
    counts = Counter(e.label for e in full)
    assert counts[NO_RELATION] > 0
    assert {k: v for k, v in counts.items() if k != NO_RELATION} == EXPECTED["validation"]
    assert len(full) == len(plain) + counts[NO_RELATION]


def test_mark_entities():
    tokens = ["John", "Smith", "lives", "in", "Paris", "."]
    text = mark_entities(tokens, {"start": 0, "end": 2}, {"start": 4, "end": 5})
    assert text == "<e1>John Smith</e1> lives in <e2>Paris</e2> ."


def sentence(**overrides):
    record = {
        "tokens": ["John", "lives", "in", "Paris"],
        "entities": [{"type": "Peop", "start": 0, "end": 1}, {"type": "Loc", "start": 3, "end": 4}],
        "relations": [{"type": "Live_In", "head": 0, "tail": 1}],
    }
    record.update(overrides)
    return record


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('[{"tokens": ["a"]', r"bad.json:1:\d+: malformed JSON"),
        ("", "the file is empty"),
        (json.dumps({"tokens": []}), "expected a JSON array"),
        (
            json.dumps([sentence(relations=[{"type": "Loves", "head": 0, "tail": 1}])]),
            "record 0 relation 0: unknown label 'Loves'",
        ),
        (
            json.dumps([sentence(relations=[{"type": "Kill", "head": 0, "tail": 5}])]),
            "record 0: relation 0 has head 0, tail 5",
        ),
        (json.dumps([sentence(entities=[{"type": "Peop", "start": 3, "end": 9}])]), "record 0: entity 0 has span"),
        (json.dumps([sentence(), {"tokens": ["x"]}]), "record 1: missing key 'entities'"),
    ],
)
def test_bad_input_names_file_and_record(tmp_path, content, expected):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(DatasetFormatError, match=expected):
        parse_spert_file(path, "train")
