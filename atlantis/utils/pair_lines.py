"""The text of a sentence's (drug, effect) pairs: one `drug: <drug>; effect: <effect>` line each, `none` for none.

Written by the ADE reader as the end-to-end target and parsed, strictly, by the extraction metric; a line out
of this form is invalid (counted, never repaired)."""

from __future__ import annotations

import re
from collections.abc import Iterable

NONE_LINE = "none"
_LINE = re.compile(r"^drug: (?P<drug>.+?); effect: (?P<effect>.+)$")


def normalise(text: str) -> str:
    return " ".join(text.split())


def pairs_target(pairs: Iterable[tuple[str, str]]) -> str:
    """The target text of a sentence's (drug, effect) pairs, in first-seen order, duplicates once."""
    lines = list(dict.fromkeys(f"drug: {normalise(d)}; effect: {normalise(e)}" for d, e in pairs))
    return "\n".join(lines) if lines else NONE_LINE


def parse_pairs(text: str) -> tuple[set[tuple[str, str]], int, int]:
    """(pairs, lines, invalid lines) of a generated text; blank lines are ignored, `none` is a valid empty answer."""
    pairs, n_lines, n_invalid = set(), 0, 0
    for line in text.splitlines():
        line = normalise(line)
        if not line:
            continue
        n_lines += 1
        if line.lower() == NONE_LINE:
            continue
        match = _LINE.match(line)
        if match is None or not match["drug"].strip() or not match["effect"].strip():
            n_invalid += 1
            continue
        pairs.add((normalise(match["drug"]), normalise(match["effect"])))
    return pairs, n_lines, n_invalid
