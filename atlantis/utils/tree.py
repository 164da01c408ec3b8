"""Walks over nested settings (dicts and lists, as a resolved config or a metrics.json holds them)."""

from __future__ import annotations

from collections.abc import Callable, Iterator


def map_strings(tree, fn: Callable[[str], object]):
    """`tree` with every string leaf replaced by `fn(leaf)`; other leaves as they are."""
    if isinstance(tree, dict):
        return {key: map_strings(value, fn) for key, value in tree.items()}
    if isinstance(tree, list):
        return [map_strings(value, fn) for value in tree]
    return fn(tree) if isinstance(tree, str) else tree


def string_leaves(tree) -> Iterator[str]:
    """Every string leaf of `tree`, in order."""
    if isinstance(tree, dict):
        tree = list(tree.values())
    if isinstance(tree, list):
        for value in tree:
            yield from string_leaves(value)
    elif isinstance(tree, str):
        yield tree
