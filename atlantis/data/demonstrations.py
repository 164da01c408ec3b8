"""Few-shot demonstrations for prompting: which labelled examples precede a query in its prompt.

`stratified`: k per class from a pool, drawn once with the seed and shared by every query (one prompt
prefix); `knn`: per query, the k pool examples whose sentences are most similar (TF-IDF cosine, KATE-style,
most similar last). A query never sees itself as a demonstration.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from atlantis.data.examples import RelationExample

SELECTIONS = ("stratified", "knn")
POOLS = ("noisy_train", "clean_seed")


def demo_pool(train: Sequence[RelationExample], validation: Sequence[RelationExample], pool: str):
    """noisy_train: the training examples with their (possibly corrupted) labels; clean_seed: the validation
    examples with their clean labels (a small hand-checked seed set)."""
    if pool == "noisy_train":
        return list(train)
    if pool == "clean_seed":
        return [e.with_label(e.clean_label) for e in validation]
    raise ValueError(f"prompt.demo_pool must be one of {POOLS}, got {pool!r}")


class Demonstrations:
    """demos(query) -> the examples shown before `query`, in prompt order."""

    def __init__(
        self,
        pool: Sequence[RelationExample],
        labels: Sequence[str],
        shots: int = 1,
        selection: str = "stratified",
        seed: int = 0,
    ):
        if selection not in SELECTIONS:
            raise ValueError(f"prompt.demo_selection must be one of {SELECTIONS}, got {selection!r}")
        if shots < 1:
            raise ValueError(f"prompt.shots must be >= 1 for demonstrations, got {shots}")
        self.pool, self.labels, self.shots, self.selection = list(pool), list(labels), shots, selection
        if not self.pool:
            raise ValueError("the demonstration pool is empty")
        rng = np.random.default_rng(seed)
        if selection == "stratified":
            # shots per class plus one spare, for the query that is itself a demonstration
            self.by_class = {}
            for label in self.labels:
                members = [e for e in self.pool if e.label == label]
                order = rng.permutation(len(members))[: shots + 1]
                self.by_class[label] = [members[i] for i in order]
            self.order = rng.permutation(len(self.labels)).tolist()  # classes in a seeded order, not alphabetical
        else:
            from sklearn.feature_extraction.text import TfidfVectorizer

            self.vectorizer = TfidfVectorizer().fit([e.text for e in self.pool])
            self.matrix = self.vectorizer.transform([e.text for e in self.pool])

    def __call__(self, query: RelationExample) -> list[RelationExample]:
        if self.selection == "stratified":
            demos = []
            for i in self.order:
                members = [e for e in self.by_class[self.labels[i]] if e.id != query.id]
                demos += members[: self.shots]
            return demos
        similarity = (self.matrix @ self.vectorizer.transform([query.text]).T).toarray().ravel()
        ranked = [i for i in np.argsort(-similarity, kind="stable") if self.pool[i].id != query.id]
        return [self.pool[i] for i in reversed(ranked[: self.shots])]  # most similar last, nearest the query
