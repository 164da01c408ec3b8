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


def _padded(xs: list[np.ndarray]) -> np.ndarray:
    """[N, m_max, d]: every block padded with zero rows (a zero row adds log 1 = 0 to a gain)."""
    m_max = max(1, max(len(x) for x in xs))
    out = np.zeros((len(xs), m_max, xs[0].shape[1]))
    for i, x in enumerate(xs):
        out[i, : len(x)] = x
    return out


def _gains(padded: np.ndarray, v_inv: np.ndarray) -> np.ndarray:
    """Gains of a stack of padded blocks, in one batched product (BLAS does the work, not Python)."""
    b, m, d = padded.shape
    projected = (padded.reshape(b * m, d) @ v_inv).reshape(b, m, d)  # one GEMM for the whole stack
    inner = np.einsum("bid,bjd->bij", projected, padded)
    inner += np.eye(m)
    sign, logdet = np.linalg.slogdet(inner)
    return np.where(sign > 0, logdet, 0.0)


def greedy_logdet(
    blocks: list[np.ndarray],
    n: int,
    lambda_rel: float = 1.0,
    lazy: bool = True,
    refresh_every: int = 256,
    batch: int = 64,
) -> GreedyResult:
    """Pick `n` of the blocks ([m_i, d] arrays) maximising log det(λI + Σ X_iᵀ X_i); ties go to the lower index.

    Lazy greedy re-evaluates the `batch` best stale bounds at once: the best fresh gain is picked when it is
    no lower than every stale bound left in the heap, which is exactly plain greedy's choice.
    """
    xs = [np.asarray(b, dtype=np.float64) for b in blocks]
    n = max(0, min(n, len(xs)))
    d = next(x.shape[1] for x in xs)
    lam = relative_lambda(xs, lambda_rel)
    padded = _padded(xs)
    design = lam * np.eye(d)
    v_inv = np.eye(d) / lam
    order: list[int] = []
    gains: list[float] = []
    evaluations = 0
    heap: list[tuple[float, int]] = []
    if lazy:
        initial = np.concatenate([_gains(padded[i : i + 1024], v_inv) for i in range(0, len(xs), 1024)])
        heap = [(-g, i) for i, g in enumerate(initial.tolist())]
        evaluations += len(xs)
        heapq.heapify(heap)
    remaining = np.ones(len(xs), dtype=bool)
    while len(order) < n:
        if lazy:
            while True:
                top = [heapq.heappop(heap) for _ in range(min(batch, len(heap)))]
                ids = np.array([i for _, i in top])
                fresh = _gains(padded[ids], v_inv)
                evaluations += len(ids)
                candidates = sorted(zip((-fresh).tolist(), ids.tolist()))
                best = candidates[0]
                if not heap or best <= heap[0]:
                    for entry in candidates[1:]:
                        heapq.heappush(heap, entry)
                    i, gain = best[1], -best[0]
                    break
                for entry in candidates:
                    heapq.heappush(heap, entry)
        else:
            ids = np.flatnonzero(remaining)
            fresh = np.concatenate([_gains(padded[ids[j : j + 1024]], v_inv) for j in range(0, len(ids), 1024)])
            evaluations += len(ids)
            best = int(np.argmax(fresh))  # the first maximum: ties go to the lower index
            i, gain = int(ids[best]), float(fresh[best])
        remaining[i] = False
        order.append(i)
        gains.append(gain)
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
