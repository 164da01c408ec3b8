"""One interface for every dataset: a reader gives the clean splits and the label inventory.

A dataset config names its reader with `_target_` (conf/dataset/*.yaml); a new dataset is a new reader class
and a config file, nothing else.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from atlantis.data.examples import DatasetFormatError, RelationExample

DATA_DIR_ENV = "ATLANTIS_DATA_DIR"


@dataclass
class DatasetSplits:
    """The three splits of one dataset and its closed label inventory."""

    name: str
    labels: list[str]
    train: list[RelationExample]
    validation: list[RelationExample]
    test: list[RelationExample]
    negative_label: str | None = None  # excluded from the official / micro scores ("Other", "no_relation")
    info: dict = field(default_factory=dict)
    # "classification": the label is one of `labels`; "extraction": the label is the text of the sentence's
    # relations (atlantis.eval.extraction), generated and parsed, and `labels` is empty.
    task: str = "classification"
    # gold-labelled examples held out of the noisy training set (trusted.per_class; atlantis.data.trusted): they
    # feed a trusted reference and, under trusted.use=union, train beside the noisy ones (they are in `train` too)
    trusted: list[RelationExample] = field(default_factory=list)

    def split(self, name: str) -> list[RelationExample]:
        splits = {"train": self.train, "validation": self.validation, "test": self.test, "trusted": self.trusted}
        return splits[name]

    def check_not_empty(self) -> DatasetSplits:
        for split_name in ("train", "validation", "test"):
            if not self.split(split_name):
                raise DatasetFormatError(f"dataset {self.name!r}: the {split_name} split is empty")
        return self


def resolve_data_dir(data_dir: str | None, subdir: str) -> str | None:
    """`data_dir` if given, else $ATLANTIS_DATA_DIR/<subdir> if that variable is set, else None (hub)."""
    if data_dir:
        return str(data_dir)
    root = os.environ.get(DATA_DIR_ENV)
    return os.path.join(root, subdir) if root else None


def carve_validation(
    examples: Sequence[RelationExample], size: int | float, seed: int
) -> tuple[list[RelationExample], list[RelationExample]]:
    """Split off a seeded validation set: `size` examples (an int) or that fraction (a float < 1)."""
    n_val = int(round(size * len(examples))) if isinstance(size, float) and size < 1 else int(size)
    if not 0 < n_val < len(examples):
        raise ValueError(f"validation size {size!r} leaves no train or no validation examples of {len(examples)}")
    order = np.random.default_rng(seed).permutation(len(examples))
    val_idx = set(order[:n_val].tolist())
    train = [e for i, e in enumerate(examples) if i not in val_idx]
    val = [e for i, e in enumerate(examples) if i in val_idx]
    return train, val


class DatasetReader:
    """Base of the readers. `data_dir`: local files (else $ATLANTIS_DATA_DIR/<env_subdir>, else the hub copy)."""

    name = "dataset"
    env_subdir: str | None = None  # the dataset's folder under $ATLANTIS_DATA_DIR; None: needs no files
    # True: a test instance may hold several relations (document-level RE): label scoring keeps every label that
    # outscores the negative one, and `test_metrics` scores those sets.
    relation_sets = False
    # The dataset's own test metrics beside the task's: the class path of a function
    # fn(reader, records, labels, negative_label, seed) -> dict of metrics (eval/ is this layer's peer, so by path).
    test_metrics: str | None = None

    def __init__(self, data_dir: str | None = None, hub_id: str | None = None):
        self.data_dir = data_dir
        self.hub_id = hub_id

    def local_source(self) -> str | None:
        """Where the files are read from; None when they come from the hub."""
        return resolve_data_dir(self.data_dir, self.env_subdir) if self.env_subdir else "embedded"

    def load(self, seed: int) -> DatasetSplits:
        """The clean splits (a seeded validation carve where the release has none)."""
        raise NotImplementedError

    def resample_negatives(self, train: list[RelationExample], seed: int) -> tuple[list[RelationExample], dict]:
        """The training examples this dataset's own pipeline would build from an annotation that misses facts
        (`noise_kind=incomplete`), and what it did. A reader that samples its negative examples samples them
        again here, the missed pairs being unannotated now; the others keep the examples as they are."""
        return list(train), {}


def read_json_array(path: Path, what: str) -> list:
    """A dataset file holding one JSON array; a missing or malformed file names itself and the position."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} file not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DatasetFormatError(f"{path}:{err.lineno}:{err.colno}: malformed JSON ({err.msg})") from err
    if not isinstance(data, list):
        raise DatasetFormatError(f"{path}: expected a JSON array, got {type(data).__name__}")
    return data
