"""ADE: folds, the all-pairs framing's counts, nested markers, direction."""

import re

import pytest

from atlantis.data.ade import ADEReader, pair_examples, read_sentences
from atlantis.data.conll04 import mark_entities
from atlantis.eval.metrics import classification_report


def test_full_file_pair_counts_match_the_spec(ade_dir):
    examples = pair_examples(read_sentences(ade_dir / "ade_full.json"), "full", ade_dir / "ade_full.json")
    assert len(examples) == 20_818  # 20,938 ordered pairs less the 120 overlapping negatives
    assert sum(e.label == "Adverse-Effect" for e in examples) == 6_821


@pytest.mark.parametrize("fold", [0, 9])
def test_a_fold_covers_the_full_set_once_and_validation_is_by_sentence(ade_dir, fold):
    full = {e.id for e in pair_examples(read_sentences(ade_dir / "ade_full.json"), "full", ade_dir)}
    splits = ADEReader(str(ade_dir), fold=fold).load(seed=0)
    parts = [{e.id for e in splits.split(name)} for name in ("train", "validation", "test")]
    assert set.union(*parts) == full and sum(map(len, parts)) == len(full)  # disjoint, complete

    def sentence(i):
        return i.rsplit("-", 2)[0]

    val_sentences = {sentence(i) for i in parts[1]}
    assert not val_sentences & {sentence(i) for i in parts[0]}  # every pair of a sentence on one side
    again = ADEReader(str(ade_dir), fold=fold).load(seed=0)
    assert [e.id for e in again.validation] == [e.id for e in splits.validation]  # same seed, same carve


def well_nested(text: str) -> bool:
    stack = []
    for closing, tag in re.findall(r"<(/?)(e[12])>", text):
        if not closing:
            stack.append(tag)
        elif not stack or stack.pop() != tag:
            return False
    return not stack


@pytest.mark.parametrize(
    ("head", "tail"),
    [((0, 3), (1, 2)), ((1, 2), (0, 3)), ((0, 1), (0, 3)), ((0, 3), (0, 1)), ((1, 3), (2, 3)), ((0, 2), (0, 2))],
)
def test_nested_spans_render_well_nested_markers(head, tail):
    text = mark_entities(["a", "b", "c", "d"], dict(start=head[0], end=head[1]), dict(start=tail[0], end=tail[1]))
    assert well_nested(text), text


def test_a_direction_flip_is_scored_wrong():
    labels = ["Adverse-Effect", "no_relation"]
    # Two sentences: (effect -> drug) is gold AE, (drug -> effect) gold no_relation. Flipping the direction
    # in the second sentence predicts AE for its no_relation pair and no_relation for its AE pair.
    gold = [0, 1, 0, 1]
    pred = [0, 1, 1, 0]
    report = classification_report(gold, pred, labels, "no_relation")
    assert report["f1_micro"] == pytest.approx(0.5) == report["f1_official"]  # P = 1/2, R = 1/2


def test_bad_fold_and_missing_files_say_what_was_expected(tmp_path):
    with pytest.raises(ValueError, match="folds 0-9"):
        ADEReader(fold=10)
    with pytest.raises(FileNotFoundError, match="ade_split_3_train.json"):
        ADEReader(str(tmp_path), fold=3).load(0)


def test_an_ade_job_runs_offline_on_the_tiny_pair(ade_dir, tmp_path):
    from atlantis.experiment.pipeline import run_job
    from tests.conftest import job_config

    cfg = job_config(
        "model=tiny",
        "trainer=tiny",
        "dataset=ade",
        f"dataset.reader.data_dir={ade_dir}",
        "dataset.max_train_examples=64",
        "dataset.max_val_examples=16",
        "dataset.max_test_examples=32",
        "trainer.max_epochs=1",
        "trainer.enable_progress_bar=false",
        f"paths.output_dir={tmp_path}",
        f"paths.cache_dir={tmp_path / 'cache'}",
    )
    metrics = run_job(cfg, tmp_path / "run")
    assert metrics["config"]["dataset"] == "ade" and 0 <= metrics["test/f1_official"] <= 1
    assert metrics["test/f1_official"] == metrics["test/f1_micro"]  # one relation: both are its F1


def test_end_to_end_framing_one_instance_per_sentence_with_every_relation(ade_dir):
    from atlantis.utils.pair_lines import parse_pairs

    sentences = read_sentences(ade_dir / "ade_full.json")
    splits = ADEReader(str(ade_dir), fold=3, framing="end_to_end").load(seed=0)
    examples = splits.train + splits.validation + splits.test
    assert splits.task == "extraction" and len(examples) == len(sentences) == 4_272
    assert len({e.id for e in examples}) == 4_272
    # every relation is in its sentence's target, as (drug string, effect string); equal strings count once
    want = sum(
        len({(" ".join(s["tokens"][s["entities"][r["tail"]]["start"] : s["entities"][r["tail"]]["end"]]),
              " ".join(s["tokens"][s["entities"][r["head"]]["start"] : s["entities"][r["head"]]["end"]]))
             for r in s["relations"]})
        for s in sentences
    )  # fmt: skip
    assert sum(len(parse_pairs(e.label)[0]) for e in examples) == want
    assert 6_500 < want <= 6_821


def test_end_to_end_framing_refuses_label_noise(ade_dir):
    from atlantis.data.splits import build_splits

    with pytest.raises(ValueError, match="no label-noise kind"):
        build_splits(ADEReader(str(ade_dir), framing="end_to_end"), noise_rate=0.2)
