"""End-to-end relation extraction as generation: string-strict F1 of the pairs parsed from the generated text.

A target is one line per relation, `drug: <drug>; effect: <effect>` (`none` for a sentence without one; the
format lives in atlantis.utils.pair_lines, written by the ADE reader). A line
that is not of that form is *invalid*: counted, never repaired or guessed. A predicted pair is correct iff a gold
pair of the same sentence has exactly these strings (whitespace-normalised, case kept). This is *string*-strict:
SpERT's span-strict F1 matches token offsets, so a string that occurs twice in a sentence counts as one pair here
(ADE has 498 such entity strings), and a right string at the wrong occurrence is not an error here.
"""

from __future__ import annotations

from collections.abc import Sequence

from atlantis.utils.pair_lines import parse_pairs


def prf(correct: int, predicted: int, gold: int) -> dict:
    precision = correct / predicted if predicted else 0.0
    recall = correct / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "support": gold, "predicted": predicted}


def extraction_report(gold_texts: Sequence[str], generated: Sequence[str], relation: str = "Adverse-Effect") -> dict:
    """String-strict micro P/R/F1 over all sentences' pairs, exact-match sentences and invalid lines.

    Keys mirror the classification report's so the report and checkpoint monitor read either: f1_official =
    f1_micro = f1_macro = the pair F1 (one relation type), accuracy = share of sentences whose pair set is exact,
    invalid_rate = invalid lines / generated lines.
    """
    correct = n_pred = n_gold = exact = lines = invalid = 0
    for gold_text, text in zip(gold_texts, generated, strict=True):
        gold, _, gold_invalid = parse_pairs(gold_text)
        if gold_invalid:
            raise ValueError(f"a gold target does not parse: {gold_text!r}")
        pred, n_lines, n_invalid = parse_pairs(text)
        correct += len(gold & pred)
        n_pred += len(pred)
        n_gold += len(gold)
        exact += gold == pred and not n_invalid
        lines += n_lines
        invalid += n_invalid
    scores = prf(correct, n_pred, n_gold)
    return {
        "f1_official": scores["f1"],
        "f1_micro": scores["f1"],
        "f1_macro": scores["f1"],
        "precision": scores["precision"],
        "recall": scores["recall"],
        "accuracy": exact / len(gold_texts) if gold_texts else 0.0,
        "invalid_rate": invalid / lines if lines else 0.0,
        "invalid_lines": invalid,
        "generated_lines": lines,
        "per_class": {relation: scores},
    }
