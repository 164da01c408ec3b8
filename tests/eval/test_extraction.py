"""End-to-end extraction: the strict pair parser and string-strict F1 on hand cases."""

import pytest

from atlantis.eval.extraction import extraction_report
from atlantis.utils.pair_lines import pairs_target, parse_pairs


def test_the_target_text_round_trips_through_the_parser():
    pairs = [("aspirin", "gastric  bleeding"), ("ibuprofen", "rash"), ("aspirin", "gastric bleeding")]
    target = pairs_target(pairs)
    assert target == "drug: aspirin; effect: gastric bleeding\ndrug: ibuprofen; effect: rash"  # once, normalised
    assert parse_pairs(target) == ({("aspirin", "gastric bleeding"), ("ibuprofen", "rash")}, 2, 0)
    assert pairs_target([]) == "none" and parse_pairs("none") == (set(), 1, 0)


def test_lines_out_of_format_are_counted_invalid_never_guessed():
    text = "drug: aspirin; effect: rash\naspirin causes rash\ndrug: ; effect: rash\neffect: rash; drug: aspirin\n\n"
    pairs, lines, invalid = parse_pairs(text)
    assert pairs == {("aspirin", "rash")} and lines == 4 and invalid == 3


def test_string_strict_f1_by_hand():
    gold = ["drug: aspirin; effect: rash\ndrug: aspirin; effect: nausea", "drug: heparin; effect: bleeding"]
    generated = [
        "drug: aspirin; effect: rash\ndrug: aspirin; effect: Nausea",  # case kept: the second is wrong
        "drug:  heparin;  effect: bleeding\nnonsense",  # whitespace normalised: right; one invalid line
    ]
    report = extraction_report(gold, generated)
    # correct 2 of 3 predicted, of 3 gold
    assert report["precision"] == pytest.approx(2 / 3) and report["recall"] == pytest.approx(2 / 3)
    assert report["f1_official"] == pytest.approx(2 / 3) == report["per_class"]["Adverse-Effect"]["f1"]
    assert report["invalid_lines"] == 1 and report["invalid_rate"] == pytest.approx(1 / 4)
    assert report["accuracy"] == 0.0  # no sentence exactly right (the second has an invalid line)


def test_a_swapped_drug_and_effect_is_wrong():
    report = extraction_report(["drug: aspirin; effect: rash"], ["drug: rash; effect: aspirin"])
    assert report["f1_official"] == 0.0 and report["precision"] == 0.0


def test_a_gold_target_that_does_not_parse_is_an_error():
    with pytest.raises(ValueError, match="gold target"):
        extraction_report(["aspirin -> rash"], ["none"])
