"""SemEval-2010 Task 8: the official release files (CRLF, 4 lines per example) or the hub copy."""

from __future__ import annotations

import re
from pathlib import Path

from atlantis.data.examples import DatasetFormatError, RelationExample, check_label, extract_marked_entities
from atlantis.data.readers import DatasetReader, DatasetSplits, carve_validation

HUB_ID = "SemEvalWorkshop/sem_eval_2010_task_8"
OTHER = "Other"
RELATIONS = (
    "Cause-Effect",
    "Component-Whole",
    "Content-Container",
    "Entity-Destination",
    "Entity-Origin",
    "Instrument-Agency",
    "Member-Collection",
    "Message-Topic",
    "Product-Producer",
)
# The hub's ClassLabel order: relations alphabetically, (e1,e2) before (e2,e1), then Other.
DIRECTED_LABELS = tuple(f"{r}({d})" for r in RELATIONS for d in ("e1,e2", "e2,e1")) + (OTHER,)
COLLAPSED_LABELS = RELATIONS + (OTHER,)
SPLIT_FILES = {"train": "TRAIN_FILE.TXT", "test": "TEST_FILE_FULL.TXT"}
_DIRECTION = re.compile(r"\(e[12],e[12]\)$")
_ID_LINE = re.compile(r'^(\d+)\t"(.*)"$')


def collapse_direction(label: str) -> str:
    """Cause-Effect(e2,e1) -> Cause-Effect; labels without a direction are returned unchanged."""
    return _DIRECTION.sub("", label)


def reverse_direction(label: str) -> str | None:
    """Cause-Effect(e1,e2) <-> Cause-Effect(e2,e1); None for labels without a direction."""
    if label.endswith("(e1,e2)"):
        return label[:-7] + "(e2,e1)"
    if label.endswith("(e2,e1)"):
        return label[:-7] + "(e1,e2)"
    return None


def label_inventory(directed: bool) -> list[str]:
    return list(DIRECTED_LABELS if directed else COLLAPSED_LABELS)


def parse_release_file(path: str | Path, directed: bool = True) -> list[RelationExample]:
    """Parse TRAIN_FILE.TXT / TEST_FILE_FULL.TXT; raises DatasetFormatError naming file and line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"SemEval file not found: {path}")
    # Text mode with universal newlines turns the release's CRLF into LF.
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise DatasetFormatError(f"{path}: the file is empty; expected 4-line SemEval records")
    examples, seen = [], set()
    for start in range(0, len(lines), 4):
        record = lines[start : start + 4] + [""] * (4 - len(lines[start : start + 4]))
        line_no = start + 1
        where = f"{path}:{line_no}"
        match = _ID_LINE.match(record[0])
        if not match:
            raise DatasetFormatError(f'{where}: expected `<id>\\t"<sentence>"`, got {record[0]!r}')
        example_id, text = match.groups()
        if example_id in seen:
            raise DatasetFormatError(f"{where}: example id {example_id} appears twice")
        seen.add(example_id)
        head, tail = extract_marked_entities(text, f"{where} (id {example_id})")
        label = check_label(record[1].strip(), DIRECTED_LABELS, f"{path}:{line_no + 1} (id {example_id})")
        if not record[2].startswith("Comment:"):
            raise DatasetFormatError(f"{path}:{line_no + 2}: expected a `Comment:` line, got {record[2]!r}")
        if record[3].strip():
            raise DatasetFormatError(f"{path}:{line_no + 3}: expected a blank line, got {record[3]!r}")
        if not directed:
            label = collapse_direction(label)
        examples.append(RelationExample(example_id, text, head, tail, label, label))
    return examples


def load_semeval(
    split: str, data_dir: str | Path | None = None, directed: bool = True, hub_id: str = HUB_ID
) -> list[RelationExample]:
    """Examples of `split` ('train' or 'test') from the release files in `data_dir`, else from the hub."""
    if split not in SPLIT_FILES:
        raise ValueError(f"SemEval has splits {list(SPLIT_FILES)}, not {split!r}")
    if data_dir:
        return parse_release_file(Path(data_dir) / SPLIT_FILES[split], directed=directed)
    return _load_from_hub(split, directed, hub_id)


def _load_from_hub(split: str, directed: bool, hub_id: str) -> list[RelationExample]:
    import datasets

    rows = datasets.load_dataset(hub_id, split=split)
    names = rows.features["relation"].names
    first_id = 1 if split == "train" else 8001  # the release's numbering
    examples = []
    for offset, row in enumerate(rows):
        example_id = str(first_id + offset)
        where = f"{hub_id}[{split}] id {example_id}"
        head, tail = extract_marked_entities(row["sentence"], where)
        label = check_label(names[row["relation"]], DIRECTED_LABELS, where)
        if not directed:
            label = collapse_direction(label)
        examples.append(RelationExample(example_id, row["sentence"], head, tail, label, label))
    return examples


def read_distribution_file(path: str | Path) -> dict[str, int]:
    """The first ('ALL') block of TRAIN_DISTRIB.TXT as {relation: count} (direction collapsed)."""
    counts: dict[str, int] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if counts and not line:
                break
            match = re.match(r"^([A-Za-z-]+)\s*:\s*(\d+)", line)
            if match and match.group(1) != "TOTAL":
                counts[match.group(1)] = int(match.group(2))
    return counts


class SemEvalReader(DatasetReader):
    """SemEval-2010 Task 8: 8,000 train sentences (a seeded validation carve of `val_size`) and 2,717 test."""

    name = "semeval"
    env_subdir = "semeval2010_task8"

    def __init__(
        self, data_dir: str | None = None, hub_id: str = HUB_ID, directed: bool = True, val_size: int | float = 800
    ):
        super().__init__(data_dir, hub_id)
        self.directed = directed
        self.val_size = val_size

    def load(self, seed: int) -> DatasetSplits:
        data_dir = self.local_source()
        kwargs = {"data_dir": data_dir, "directed": self.directed, "hub_id": self.hub_id or HUB_ID}
        train, val = carve_validation(load_semeval("train", **kwargs), self.val_size, seed)
        test = load_semeval("test", **kwargs)
        return DatasetSplits(
            self.name, label_inventory(self.directed), train, val, test, OTHER, {"data_dir": data_dir}
        )
