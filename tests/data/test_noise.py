from collections import Counter

import pytest

from atlantis.data.examples import DatasetFormatError
from atlantis.data.noise import inject_noise, read_weak_labels
from atlantis.data.semeval import DIRECTED_LABELS, reverse_direction
from atlantis.data.splits import build_splits
from atlantis.data.synthetic import SyntheticReader, generate_synthetic, label_inventory

LABELS = label_inventory()


@pytest.fixture
def examples():
    return generate_synthetic(500, seed=0, split="train")


@pytest.mark.parametrize("kind", ["uniform", "confusable", "llm_like"])
@pytest.mark.parametrize("rate", [0.2, 0.5, 0.333])
def test_exact_count_and_flags(examples, kind, rate):
    noisy = inject_noise(examples, rate, kind, LABELS, seed=3, attractors=["Other"])
    assert sum(e.is_noisy for e in noisy) == round(rate * len(examples))
    for before, after in zip(examples, noisy, strict=True):
        assert after.clean_label == before.label and after.id == before.id and after.text == before.text
        assert after.is_noisy == (after.label != after.clean_label)


def test_same_seed_same_ids_other_seed_other_ids(examples):
    def noisy_ids(seed):
        return [e.id for e in inject_noise(examples, 0.3, "uniform", LABELS, seed=seed) if e.is_noisy]

    assert noisy_ids(7) == noisy_ids(7)
    assert noisy_ids(7) != noisy_ids(8)


def test_confusable_flips_direction_on_directed_labels():
    from atlantis.data.examples import RelationExample

    examples = [
        RelationExample(str(i), "<e1>a</e1> <e2>b</e2>", "a", "b", label, label)
        for i, label in enumerate(DIRECTED_LABELS[:-1] * 5)
    ]
    noisy = inject_noise(examples, 0.5, "confusable", list(DIRECTED_LABELS), seed=0)
    for e in noisy:
        if e.is_noisy:
            assert e.label == reverse_direction(e.clean_label)


def test_llm_like_mass_lands_on_attractors(examples):
    noisy = inject_noise(
        examples, 0.4, "llm_like", LABELS, seed=1, attractors=["Other", "Cause-Effect"], attractor_mass=0.8
    )
    corrupted = [e.label for e in noisy if e.is_noisy]
    on_attractors = sum(label in ("Other", "Cause-Effect") for label in corrupted) / len(corrupted)
    # 80 % by construction plus a uniform share of the rest; uniform noise would put about 2/5 there.
    assert on_attractors >= 0.75
    uniform = [e.label for e in inject_noise(examples, 0.4, "uniform", LABELS, seed=1) if e.is_noisy]
    assert sum(label in ("Other", "Cause-Effect") for label in uniform) / len(uniform) < 0.6


def test_validation_noisy_by_default_clean_on_switch_test_untouched():
    noisy = build_splits(SyntheticReader(), noise_rate=0.3, seed=0)
    clean_val = build_splits(SyntheticReader(), noise_rate=0.3, seed=0, clean_validation=True)
    assert sum(e.is_noisy for e in noisy.train) == round(0.3 * len(noisy.train))
    assert sum(e.is_noisy for e in noisy.validation) == round(0.3 * len(noisy.validation))
    assert not any(e.is_noisy for e in clean_val.validation)
    assert not any(e.is_noisy for e in noisy.test)
    assert all(e.label == e.clean_label for e in noisy.test)


def test_weak_labels_from_file(tmp_path, examples, caplog):
    path = tmp_path / "weak.jsonl"
    path.write_text('{"id": "train-0", "label": "Other"}\n{"id": "train-1", "label": "Other"}\n')
    noisy = inject_noise(examples, 0.0, "file", LABELS, seed=0, predictions_file=path)
    assert f"has no label for {len(examples) - 2} of {len(examples)} examples" in caplog.text  # they keep theirs
    by_id = {e.id: e for e in noisy}
    assert by_id["train-0"].label == "Other" and by_id["train-1"].label == "Other"
    assert by_id["train-2"].label == by_id["train-2"].clean_label
    assert Counter(e.is_noisy for e in noisy)[True] == sum(
        e.clean_label != "Other" for e in examples if e.id in ("train-0", "train-1")
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"id": "a", "label": "Friend"}\n', r"weak.txt:1: unknown label 'Friend'"),
        ("a\tOther\nb Other\n", r"weak.txt:2: expected `id<TAB>label`"),
        ('{"id": "a", "label"\n', r"weak.txt:1: malformed JSON"),
        ("a\tOther\na\tOther\n", r"weak.txt:2: example id a appears twice"),
        ("\n", "the file is empty"),
    ],
)
def test_bad_weak_label_file(tmp_path, content, expected):
    path = tmp_path / "weak.txt"
    path.write_text(content)
    with pytest.raises(DatasetFormatError, match=expected):
        read_weak_labels(path, LABELS)


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, "0.2"])
def test_bad_rate(examples, rate):
    with pytest.raises(ValueError, match="noise rate"):
        inject_noise(examples, rate, "uniform", LABELS, seed=0)
