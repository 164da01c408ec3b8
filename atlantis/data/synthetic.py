"""A generated relation-classification set (templates x word lists) that needs no files or network."""

from __future__ import annotations

import random
from collections.abc import Sequence

from atlantis.data.examples import RelationExample, extract_marked_entities
from atlantis.data.readers import DatasetReader, DatasetSplits

# Each template fixes its relation; {a} becomes the head (<e1>) and {b} the tail (<e2>).
TEMPLATES = {
    "Cause-Effect": [
        "The <e1>{a}</e1> caused the <e2>{b}</e2> last week.",
        "A sudden <e1>{a}</e1> led to a <e2>{b}</e2> in town.",
    ],
    "Component-Whole": [
        "The <e1>{a}</e1> is a part of the <e2>{b}</e2>.",
        "Every <e2>{b}</e2> has a <e1>{a}</e1> inside.",
    ],
    "Content-Container": [
        "The <e1>{a}</e1> was kept in a <e2>{b}</e2>.",
        "She found the <e1>{a}</e1> inside the old <e2>{b}</e2>.",
    ],
    "Product-Producer": [
        "The <e1>{a}</e1> was made by the <e2>{b}</e2>.",
        "A <e2>{b}</e2> produced this <e1>{a}</e1>.",
    ],
    "Other": [
        "The <e1>{a}</e1> and the <e2>{b}</e2> were both there.",
        "He saw a <e1>{a}</e1> near a <e2>{b}</e2> today.",
    ],
}
WORDS = {
    "Cause-Effect": (
        ["storm", "fire", "virus", "flood", "quake", "spark"],
        ["damage", "panic", "fever", "outage", "delay", "smoke"],
    ),
    "Component-Whole": (
        ["wheel", "engine", "handle", "screen", "leaf", "door"],
        ["car", "machine", "cup", "phone", "tree", "house"],
    ),
    "Content-Container": (
        ["letter", "coin", "wine", "key", "milk", "ring"],
        ["box", "jar", "bottle", "drawer", "bag", "case"],
    ),
    "Product-Producer": (
        ["bread", "chair", "song", "vase", "shoe", "film"],
        ["baker", "carpenter", "band", "potter", "factory", "studio"],
    ),
    "Other": (
        ["cat", "lamp", "river", "teacher", "pencil", "cloud"],
        ["dog", "table", "bridge", "student", "paper", "hill"],
    ),
}
LABELS = list(TEMPLATES)


def label_inventory() -> list[str]:
    return list(LABELS)


def generate_synthetic(n: int, seed: int, split: str) -> list[RelationExample]:
    """`n` examples, labels balanced, reproducible for a given (seed, split)."""
    rng = random.Random(f"{seed}-{split}")
    examples = []
    for i in range(n):
        label = LABELS[i % len(LABELS)]
        heads, tails = WORDS[label]
        text = rng.choice(TEMPLATES[label]).format(a=rng.choice(heads), b=rng.choice(tails))
        head, tail = extract_marked_entities(text, f"synthetic {split} {i}")
        examples.append(RelationExample(f"{split}-{i}", text, head, tail, label, label))
    rng.shuffle(examples)
    return examples


class SyntheticReader(DatasetReader):
    """The embedded 5-class task: needs no files, works offline; `sizes` = train, validation, test."""

    name = "synthetic"

    def __init__(self, sizes: Sequence[int] = (400, 100, 100)):
        super().__init__()
        self.sizes = tuple(sizes)

    def load(self, seed: int) -> DatasetSplits:
        train, val, test = (
            generate_synthetic(n, seed, split) for n, split in zip(self.sizes, ("train", "validation", "test"))
        )
        return DatasetSplits(self.name, label_inventory(), train, val, test, "Other", {"data_dir": None})
