"""A reader's clean splits made into a job's: seeded validation carve, subsampling, label noise."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence

import numpy as np

from atlantis.data.examples import RelationExample
from atlantis.data.noise import check_rate, inject_noise, missing_label_counts
from atlantis.data.readers import DatasetReader, DatasetSplits
from atlantis.data.trusted import check_disjoint, check_use, combine, draw_trusted

log = logging.getLogger(__name__)


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
    trusted_per_class: int = 0,
    trusted_use: str = "union",
) -> DatasetSplits:
    """Load, subsample and corrupt: the examples a job trains, selects and tests on.

    trusted_per_class: k gold-labelled examples per class, drawn (seed + 3) before any noise from the training
    examples the subsample left out (else out of the training set); `trusted_use` says whether they train beside
    the noisy ones (union), not at all (none) or alone (only)."""
    check_rate(noise_rate)
    check_use(trusted_use)
    splits = reader.load(seed).check_not_empty()
    if splits.task == "extraction" and noise_rate:
        raise ValueError(
            f"dataset {splits.name!r} is framed as end-to-end extraction, which has no label-noise kind: "
            "set noise=0, or use the classifier framing to inject noise"
        )
    pool = splits.train
    splits.train = subsample(pool, max_train_examples, seed)
    if trusted_per_class:
        draw_trusted_split(splits, pool, trusted_per_class, trusted_use, seed + 3)
    splits.validation = subsample(splits.validation, max_val_examples, seed + 1)
    splits.test = subsample(splits.test, max_test_examples, seed + 2)
    noise_seed = seed if noise_seed is None else noise_seed
    splits.info.update(noise_rate=noise_rate, noise_kind=noise_kind, noise_seed=noise_seed)
    if splits.task == "extraction":
        return splits
    options = dict(noise_options or {})
    train_options = options
    if noise_kind == "incomplete":  # missing labels turn into the dataset's negative label
        options.setdefault("negative", splits.negative_label)
        if trusted_per_class and trusted_use == "union":  # a pair holding a gold relation is annotated
            train_options = dict(options, annotated=splits.trusted)
    before = splits.train
    splits.train = inject_noise(splits.train, noise_rate, noise_kind, splits.labels, noise_seed, **train_options)
    if noise_kind == "incomplete":
        splits.info["missing_labels"] = missing_label_counts(before, splits.train, splits.negative_label)
        # a dataset that samples its negatives draws them again, from the pairs the annotation now leaves out
        splits.train, resampled = reader.resample_negatives(splits.train, noise_seed + 20_011)
        if resampled:
            splits.info["negative_sampling"] = resampled
    if trusted_per_class:  # the gold seed joins (or replaces) the corrupted set: no noise ever touches it
        splits.train = combine(splits.train, splits.trusted, trusted_use)
    if not clean_validation:
        # A different stream so validation noise does not mirror the train positions.
        splits.validation = inject_noise(
            splits.validation, noise_rate, noise_kind, splits.labels, noise_seed + 10_007, **options
        )
    return splits


def draw_trusted_split(splits: DatasetSplits, pool, per_class: int, use: str, seed: int) -> None:
    """Set `splits.trusted` and record it in info: drawn from the training examples the subsample left out, a class
    they hold too few of topped up out of the training set (those examples leave it)."""
    if splits.task == "extraction":
        raise ValueError(f"dataset {splits.name!r} is end-to-end extraction: a trusted seed needs classes")
    chosen = {e.id for e in splits.train}
    outside = [e for e in pool if e.id not in chosen]
    trusted, shortfall = draw_trusted(outside, splits.labels, per_class, seed)
    source = "outside_train_subsample" if outside else "train"
    if shortfall:  # the missing ones come out of the training set, class by class
        extra = []
        for label, missing in shortfall.items():
            members = [e for e in splits.train if e.clean_label == label]
            drawn, _ = draw_trusted(members, [label], missing, seed + 1)
            extra += drawn
        taken = {e.id for e in extra}
        splits.train = [e for e in splits.train if e.id not in taken]
        counts = Counter(e.clean_label for e in trusted + extra)  # what the training set could not fill either
        shortfall = {label: per_class - counts[label] for label in shortfall if counts[label] < per_class}
        where = {e.id: i for i, e in enumerate(pool)}
        trusted = sorted(trusted + extra, key=lambda e: where[e.id])  # in the pool's order
        if outside:
            source = "outside_train_subsample+train"
    check_disjoint(trusted, train=splits.train, validation=splits.validation, test=splits.test)
    if shortfall:
        log.warning("trusted seed: %d classes have fewer than %d examples: %s", len(shortfall), per_class, shortfall)
    splits.trusted = trusted
    splits.info["trusted"] = {"per_class": per_class, "use": use, "n": len(trusted), "shortfall": shortfall,
                              "from": source, "ids": [e.id for e in trusted]}  # fmt: skip
