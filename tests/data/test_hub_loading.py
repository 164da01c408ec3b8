"""The hub path (`datasets.load_dataset`) maps rows to examples; the hub is replaced by in-memory rows."""

import datasets
import pytest

from atlantis.data import conll04, semeval


@pytest.fixture
def fake_hub(monkeypatch):
    calls = []

    def load_dataset(hub_id, split):
        calls.append((hub_id, split))
        if hub_id == semeval.HUB_ID:
            features = datasets.Features(
                {
                    "sentence": datasets.Value("string"),
                    "relation": datasets.ClassLabel(names=list(semeval.DIRECTED_LABELS)),
                }
            )
            rows = {
                "sentence": ["The <e1>fire</e1> caused <e2>smoke</e2>.", "A <e1>cat</e1> and a <e2>dog</e2>."],
                "relation": [0, 18],
            }
            return datasets.Dataset.from_dict(rows, features=features)
        sentence = {
            "tokens": ["John", "lives", "in", "Paris"],
            "entities": [{"type": "Peop", "start": 0, "end": 1}, {"type": "Loc", "start": 3, "end": 4}],
            "relations": [{"type": "Live_In", "head": 0, "tail": 1}],
            "orig_id": 7,
        }
        return datasets.Dataset.from_list([sentence])

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    monkeypatch.delenv("ATLANTIS_DATA_DIR", raising=False)
    return calls


def test_semeval_from_the_hub(fake_hub):
    train = semeval.load_semeval("train")
    test = semeval.load_semeval("test", directed=False)
    assert fake_hub == [(semeval.HUB_ID, "train"), (semeval.HUB_ID, "test")]
    assert [(e.id, e.label, e.head) for e in train] == [("1", "Cause-Effect(e1,e2)", "fire"), ("2", "Other", "cat")]
    assert [(e.id, e.label) for e in test] == [("8001", "Cause-Effect"), ("8002", "Other")]


def test_conll04_from_the_hub(fake_hub):
    (example,) = conll04.load_conll04("validation")
    assert fake_hub == [(conll04.HUB_ID, "validation")]
    assert (example.text, example.label) == ("<e1>John</e1> lives in <e2>Paris</e2>", "Live_In")
