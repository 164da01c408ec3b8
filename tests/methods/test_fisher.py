"""FisherSFT's greedy log-det selection: properties that fail when the algebra or the laziness is wrong."""

import numpy as np
import pytest

from atlantis.methods.fisher import _gain, greedy_logdet, relative_lambda


def random_blocks(n=40, d=6, seed=0, max_m=3):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(rng.integers(1, max_m + 1), d)) * rng.uniform(0.3, 2.0) for _ in range(n)]


def logdet_of(blocks, picked, lam):
    d = blocks[0].shape[1]
    design = lam * np.eye(d) + sum(blocks[i].T @ blocks[i] for i in picked)
    return np.linalg.slogdet(design)[1]


def test_gain_is_the_brute_force_logdet_difference():
    blocks = random_blocks()
    lam = relative_lambda(blocks, 1.0)
    chosen = [3, 7, 11]
    design = lam * np.eye(6) + sum(blocks[i].T @ blocks[i] for i in chosen)
    for i in (0, 5, 20):
        brute = logdet_of(blocks, chosen + [i], lam) - logdet_of(blocks, chosen, lam)
        assert abs(_gain(blocks[i], np.linalg.inv(design)) - brute) < 1e-8


@pytest.mark.parametrize("refresh_every", [0, 4])
def test_greedy_logdet_equals_a_direct_slogdet_of_the_chosen_set(refresh_every):
    blocks = random_blocks(seed=1)
    result = greedy_logdet(blocks, 15, refresh_every=refresh_every)
    assert abs(result.logdet - logdet_of(blocks, result.order, result.lam)) < 1e-8
    # The gains add up to F(S) - F(empty): Woodbury kept V^-1 exact along the way.
    assert abs(sum(result.gains) - (result.logdet - 6 * np.log(result.lam))) < 1e-8


@pytest.mark.parametrize("batch", [1, 4, 64])
def test_lazy_greedy_picks_what_plain_greedy_picks(batch):
    blocks = random_blocks(n=60, seed=2)
    lazy = greedy_logdet(blocks, 25, lazy=True, batch=batch)
    plain = greedy_logdet(blocks, 25, lazy=False)
    assert lazy.order == plain.order
    if batch < 8:
        assert lazy.evaluations < plain.evaluations / 3


def test_greedy_beats_random_subsets_of_the_same_size():
    blocks = random_blocks(n=80, seed=3)
    result = greedy_logdet(blocks, 10)
    rng = np.random.default_rng(0)
    randoms = [logdet_of(blocks, rng.choice(80, 10, replace=False), result.lam) for _ in range(200)]
    assert result.logdet > max(randoms)


def test_duplicates_are_not_picked_before_distinct_examples():
    rng = np.random.default_rng(4)
    distinct = [rng.normal(size=(1, 8)) for _ in range(8)]
    blocks = distinct + [b.copy() for b in distinct]  # every example twice
    order = greedy_logdet(blocks, 8).order
    assert len({i % 8 for i in order}) == 8, order


def test_two_clusters_one_pick_from_each_unlike_top_norm():
    # Cluster A (norm 2) and cluster B (norm 1) along orthogonal directions.
    rng = np.random.default_rng(5)
    a = [np.array([[2.0, 0, 0]]) + rng.normal(scale=0.01, size=(1, 3)) for _ in range(5)]
    b = [np.array([[0, 1.0, 0]]) + rng.normal(scale=0.01, size=(1, 3)) for _ in range(5)]
    order = greedy_logdet(a + b, 2).order
    assert {i < 5 for i in order} == {True, False}


def test_scale_invariance_and_prefix_property():
    blocks = random_blocks(n=50, seed=6)
    base = greedy_logdet(blocks, 20).order
    assert greedy_logdet([10 * b for b in blocks], 20).order == base
    assert greedy_logdet(blocks, 35).order[:20] == base


def test_budget_edges():
    blocks = random_blocks(n=5)
    assert greedy_logdet(blocks, 0).order == []
    assert sorted(greedy_logdet(blocks, 99).order) == list(range(5))
