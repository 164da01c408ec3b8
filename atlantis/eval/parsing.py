"""Generated text to a label: exact match only, never a guess."""

from __future__ import annotations


def parse_generation(text: str, labels: list[str]) -> int:
    """Index of the label `text` names (case and surrounding space ignored), or -1 if it names none."""
    normalized = " ".join(text.strip().split()).lower()
    for i, label in enumerate(labels):
        if normalized == label.lower():
            return i
    return -1
