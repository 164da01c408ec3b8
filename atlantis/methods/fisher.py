"""FisherSFT's selection (Deb et al. 2025): greedily maximise F(S) = log det(λI + Σ_{i∈S} X_iᵀ X_i).

X_i ([m_i, d]) holds example i's last-layer embeddings at its supervised positions; a sentence's tokens
count jointly (a rank-m_i update). The gain of i given S is log det(I + X_i V⁻¹ X_iᵀ) (matrix determinant
lemma) with V = λI + Σ_S X_jᵀ X_j, kept as V⁻¹ by Woodbury updates. F is monotone submodular, so lazy
greedy (stale gains are upper bounds) returns exactly the plain greedy sequence with far fewer evaluations.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np


@dataclass
class GreedyResult:
    order: list[int]  # picked indices, in pick order (each prefix is the greedy set of its size)
    gains: list[float]  # the gain of each pick when it was picked
    logdet: float  # F(S) for the whole pick, including the λI prior
    lam: float
    evaluations: int  # gain evaluations (plain greedy: about n·N; lazy: a few × (N + n))


def relative_lambda(blocks: list[np.ndarray], lambda_rel: float) -> float:
    """λ = lambda_rel · mean_i ‖X_i‖_F² / d: one average example of prior information, scale-free."""
    d = next(b.shape[1] for b in blocks if b.ndim == 2)
    mean_sq = float(np.mean([np.square(b).sum() for b in blocks]))
    return lambda_rel * mean_sq / d if mean_sq > 0 else 1.0


def _gain(x: np.ndarray, v_inv: np.ndarray) -> float:
    if not len(x):
        return 0.0
    inner = np.eye(len(x)) + x @ v_inv @ x.T
    sign, logdet = np.linalg.slogdet(inner)
    return float(logdet) if sign > 0 else 0.0


def greedy_logdet(
    blocks: list[np.ndarray], n: int, lambda_rel: float = 1.0, lazy: bool = True, refresh_every: int = 256
) -> GreedyResult:
    """Pick `n` of the blocks ([m_i, d] arrays) maximising log det(λI + Σ X_iᵀ X_i); ties go to the lower index."""
    xs = [np.asarray(b, dtype=np.float64) for b in blocks]
    n = max(0, min(n, len(xs)))
    d = next(x.shape[1] for x in xs)
    lam = relative_lambda(xs, lambda_rel)
    design = lam * np.eye(d)
    v_inv = np.eye(d) / lam
    order: list[int] = []
    gains: list[float] = []
    evaluations = 0
    if lazy:
        heap = [(-_gain(x, v_inv), i) for i, x in enumerate(xs)]
        evaluations += len(xs)
        heapq.heapify(heap)
    remaining = set(range(len(xs)))
    while len(order) < n:
        if lazy:
            while True:
                _, i = heapq.heappop(heap)
                fresh = _gain(xs[i], v_inv)
                evaluations += 1
                if not heap or (-fresh, i) <= heap[0]:
                    break
                heapq.heappush(heap, (-fresh, i))
        else:
            scored = [(-_gain(xs[j], v_inv), j) for j in sorted(remaining)]
            evaluations += len(scored)
            neg, i = min(scored)
            fresh = -neg
        remaining.discard(i)
        order.append(i)
        gains.append(fresh)
        x = xs[i]
        if len(x):
            design += x.T @ x
            u = v_inv @ x.T
            v_inv -= u @ np.linalg.solve(np.eye(len(x)) + x @ u, u.T)
            v_inv = (v_inv + v_inv.T) / 2
        if refresh_every and len(order) % refresh_every == 0:
            v_inv = np.linalg.inv(design)  # stops Woodbury round-off from drifting
    sign, logdet = np.linalg.slogdet(design)
    return GreedyResult(order, gains, float(logdet), lam, evaluations)
