"""Datasets by name: train / validation / test examples and the label inventory, noise applied."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from atlantis.data import conll04, semeval, synthetic
from atlantis.data.examples import DatasetFormatError, RelationExample
from atlantis.data.noise import check_rate, inject_noise

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

    def split(self, name: str) -> list[RelationExample]:
        return {"train": self.train, "validation": self.validation, "test": self.test}[name]


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


def subsample(examples: Sequence[RelationExample], n: int | None, seed: int) -> list[RelationExample]:
    """A seeded random subset of `n` examples in their original order (all of them when n is None)."""
    if n is None or n >= len(examples):
        return list(examples)
    keep = set(np.random.default_rng(seed).permutation(len(examples))[:n].tolist())
    return [e for i, e in enumerate(examples) if i in keep]


def load_clean_splits(
    name: str,
    data_dir: str | None = None,
    seed: int = 0,
    val_size: int | float = 800,
    directed: bool = True,
    include_no_relation: bool = False,
    synthetic_sizes: Sequence[int] = (400, 100, 100),
    hub_id: str | None = None,
) -> DatasetSplits:
    """Clean splits of dataset `name` ('semeval', 'conll04', 'synthetic') before noise or subsampling."""
    if name == "semeval":
        data_dir = resolve_data_dir(data_dir, "semeval2010_task8")
        kwargs = {"data_dir": data_dir, "directed": directed, **({"hub_id": hub_id} if hub_id else {})}
        full_train = semeval.load_semeval("train", **kwargs)
        train, val = carve_validation(full_train, val_size, seed)
        test = semeval.load_semeval("test", **kwargs)
        labels, negative = semeval.label_inventory(directed), semeval.OTHER
    elif name == "conll04":
        data_dir = resolve_data_dir(data_dir, "conll04")
        kwargs = {"data_dir": data_dir, "include_no_relation": include_no_relation}
        kwargs.update({"hub_id": hub_id} if hub_id else {})
        train, val, test = (conll04.load_conll04(s, **kwargs) for s in ("train", "validation", "test"))
        labels = conll04.label_inventory(include_no_relation)
        negative = conll04.NO_RELATION if include_no_relation else None
    elif name == "synthetic":
        n_train, n_val, n_test = synthetic_sizes
        train, val, test = (
            synthetic.generate_synthetic(n, seed, split)
            for n, split in ((n_train, "train"), (n_val, "validation"), (n_test, "test"))
        )
        labels, negative = synthetic.label_inventory(), "Other"
    else:
        raise ValueError(f"unknown dataset {name!r}; expected semeval, conll04 or synthetic")
    for split_name, split in (("train", train), ("validation", val), ("test", test)):
        if not split:
            raise DatasetFormatError(f"dataset {name!r}: the {split_name} split is empty")
    return DatasetSplits(name, labels, train, val, test, negative, {"data_dir": data_dir})


def build_splits(
    name: str,
    noise_rate: float = 0.0,
    noise_kind: str = "uniform",
    seed: int = 0,
    noise_seed: int | None = None,
    clean_validation: bool = False,
    max_train_examples: int | None = None,
    max_val_examples: int | None = None,
    max_test_examples: int | None = None,
    noise_options: dict | None = None,
    **dataset_options,
) -> DatasetSplits:
    """Load, subsample and corrupt: the examples a job trains, selects and tests on."""
    check_rate(noise_rate)
    splits = load_clean_splits(name, seed=seed, **dataset_options)
    splits.train = subsample(splits.train, max_train_examples, seed)
    splits.validation = subsample(splits.validation, max_val_examples, seed + 1)
    splits.test = subsample(splits.test, max_test_examples, seed + 2)
    noise_seed = seed if noise_seed is None else noise_seed
    options = dict(noise_options or {})
    splits.train = inject_noise(splits.train, noise_rate, noise_kind, splits.labels, noise_seed, **options)
    if not clean_validation:
        # A different stream so validation noise does not mirror the train positions.
        splits.validation = inject_noise(
            splits.validation, noise_rate, noise_kind, splits.labels, noise_seed + 10_007, **options
        )
    splits.info.update(noise_rate=noise_rate, noise_kind=noise_kind, noise_seed=noise_seed)
    return splits
