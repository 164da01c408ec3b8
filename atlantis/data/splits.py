"""A reader's clean splits made into a job's: seeded validation carve, subsampling, label noise."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from atlantis.data.examples import RelationExample
from atlantis.data.noise import check_rate, inject_noise
from atlantis.data.readers import DatasetReader, DatasetSplits


def subsample(examples: Sequence[RelationExample], n: int | None, seed: int) -> list[RelationExample]:
    """A seeded random subset of `n` examples in their original order (all of them when n is None)."""
    if n is None or n >= len(examples):
        return list(examples)
    keep = set(np.random.default_rng(seed).permutation(len(examples))[:n].tolist())
    return [e for i, e in enumerate(examples) if i in keep]


def build_splits(
    reader: DatasetReader,
    noise_rate: float = 0.0,
    noise_kind: str = "uniform",
    seed: int = 0,
    noise_seed: int | None = None,
    clean_validation: bool = False,
    max_train_examples: int | None = None,
    max_val_examples: int | None = None,
    max_test_examples: int | None = None,
    noise_options: dict | None = None,
) -> DatasetSplits:
    """Load, subsample and corrupt: the examples a job trains, selects and tests on."""
    check_rate(noise_rate)
    splits = reader.load(seed).check_not_empty()
    if splits.task == "extraction" and noise_rate:
        raise ValueError(
            f"dataset {splits.name!r} is framed as end-to-end extraction, which has no label-noise kind: "
            "set noise=0, or use the classifier framing to inject noise"
        )
    splits.train = subsample(splits.train, max_train_examples, seed)
    splits.validation = subsample(splits.validation, max_val_examples, seed + 1)
    splits.test = subsample(splits.test, max_test_examples, seed + 2)
    noise_seed = seed if noise_seed is None else noise_seed
    splits.info.update(noise_rate=noise_rate, noise_kind=noise_kind, noise_seed=noise_seed)
    if splits.task == "extraction":
        return splits
    options = dict(noise_options or {})
    if noise_kind == "incomplete":  # missing labels turn into the dataset's negative label
        options.setdefault("negative", splits.negative_label)
    splits.train = inject_noise(splits.train, noise_rate, noise_kind, splits.labels, noise_seed, **options)
    if not clean_validation:
        # A different stream so validation noise does not mirror the train positions.
        splits.validation = inject_noise(
            splits.validation, noise_rate, noise_kind, splits.labels, noise_seed + 10_007, **options
        )
    return splits
