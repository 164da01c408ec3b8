"""A trusted seed: k gold-labelled examples per class, drawn before any noise, that no corruption touches.

The trusted-data setting (Hendrycks et al. 2018, GLC; Ren et al. 2018, L2RW): a few clean labels beside many weak
ones. The trusted examples are drawn seeded and stratified by their clean label, kept out of validation and test,
and a method's training set is the noisy examples, the trusted ones, or both (`use`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from atlantis.data.examples import RelationExample

# union: noisy ∪ trusted trains (every method sees the same gold labels); none: the noisy-only setting
# (the trusted examples only feed a trusted reference); only: the trusted examples alone (SFT on the gold seed).
TRUSTED_USES = ("union", "none", "only")


def check_use(use: str) -> str:
    if use not in TRUSTED_USES:
        raise ValueError(f"trusted.use must be one of {TRUSTED_USES}, got {use!r}")
    return use


def draw_trusted(
    pool: Sequence[RelationExample], labels: Sequence[str], per_class: int, seed: int
) -> tuple[list[RelationExample], dict[str, int]]:
    """(k examples per class of `pool` by clean label, seeded, in pool order; the classes that had fewer: how
    many they lacked). Every trusted example carries its clean label."""
    if per_class < 0:
        raise ValueError(f"trusted.per_class must be >= 0, got {per_class}")
    rng = np.random.default_rng(seed)
    chosen: set[int] = set()
    shortfall = {}
    for label in labels:  # the inventory's order: the draw does not depend on the pool's label order
        members = [i for i, e in enumerate(pool) if e.clean_label == label]
        take = rng.permutation(len(members))[:per_class]
        chosen.update(members[j] for j in take.tolist())
        if len(members) < per_class:
            shortfall[label] = per_class - len(members)
    trusted = [e.with_label(e.clean_label) for i, e in enumerate(pool) if i in chosen]
    return trusted, shortfall


def combine(noisy: list[RelationExample], trusted: list[RelationExample], use: str) -> list[RelationExample]:
    """The training examples under `use` (noisy first, then trusted)."""
    return {"union": noisy + trusted, "none": list(noisy), "only": list(trusted)}[check_use(use)]


def check_disjoint(trusted: Sequence[RelationExample], **splits: Sequence[RelationExample]) -> None:
    """Refuse a trusted id that is also in one of `splits` (validation, test, the noisy training set)."""
    ids = {e.id for e in trusted}
    for name, examples in splits.items():
        shared = sorted(ids & {e.id for e in examples})
        if shared:
            raise ValueError(f"{len(shared)} trusted examples are also in {name}, e.g. {shared[:5]}")
