"""The record every dataset reader produces, and the error every reader raises on bad input."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace

MARKER_PATTERN = re.compile(r"</?e[12]>")


class DatasetFormatError(ValueError):
    """Bad input in a dataset or predictions file; the message names the file, line or example."""


@dataclass(frozen=True)
class RelationExample:
    """One relation-classification instance: a sentence with marked head (<e1>) and tail (<e2>)."""

    id: str
    text: str
    head: str
    tail: str
    label: str
    clean_label: str
    is_noisy: bool = False

    def with_label(self, label: str) -> RelationExample:
        """A copy whose (possibly corrupted) training label is `label`; the clean label is kept."""
        return replace(self, label=label, is_noisy=label != self.clean_label)

    def to_dict(self) -> dict:
        return asdict(self)


def extract_marked_entities(text: str, where: str) -> tuple[str, str]:
    """Return (head, tail) from a sentence with exactly one <e1>..</e1> and one <e2>..</e2> span.

    `where` names the file and line (or example id) for the error message.
    """
    for tag in ("e1", "e2"):
        for marker in (f"<{tag}>", f"</{tag}>"):
            count = text.count(marker)
            if count != 1:
                raise DatasetFormatError(
                    f"{where}: expected exactly one {marker} entity marker, found {count} in {text!r}"
                )
    spans = {}
    for tag in ("e1", "e2"):
        start = text.index(f"<{tag}>") + len(tag) + 2
        end = text.index(f"</{tag}>")
        if end < start:
            raise DatasetFormatError(f"{where}: </{tag}> comes before <{tag}> in {text!r}")
        inner = text[start:end]
        if MARKER_PATTERN.search(inner):
            raise DatasetFormatError(f"{where}: entity markers are nested inside <{tag}> in {text!r}")
        if not inner.strip():
            raise DatasetFormatError(f"{where}: the <{tag}> entity is empty in {text!r}")
        spans[tag] = inner.strip()
    return spans["e1"], spans["e2"]


def check_label(label: str, labels: list[str] | tuple[str, ...], where: str) -> str:
    """Return `label` if it is in the inventory, else raise naming the place and the expected labels."""
    if label not in labels:
        raise DatasetFormatError(f"{where}: unknown label {label!r}; expected one of {list(labels)}")
    return label
