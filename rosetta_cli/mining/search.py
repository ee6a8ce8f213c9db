"""Top-k search with the documented tie rule, random candidates, and exact streaming search.

Tie rule (TIE_RULE): among equal scores the lower candidate row ranks first. faiss
breaks ties arbitrarily, so `search_topk` asks for k+1 results, sorts them by
(-score, row), and re-searches (doubling k) only the queries whose k-th and last
retrieved scores are equal, i.e. whose tie group may extend past what was retrieved.
Candidate positions index the sorted array of candidate rows, so position order = row order.
"""

from __future__ import annotations

import numpy as np


def sort_ties(D: np.ndarray, I: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort each row of (scores [n,k], ids [n,k]) by score desc, then id asc; id -1 (missing) last."""
    missing = I < 0
    key_score = np.where(missing, np.inf, -D.astype(np.float64))
    key_id = np.where(missing, np.iinfo(np.int64).max, I)
    order = np.lexsort((key_id, key_score), axis=-1)
    return np.take_along_axis(D, order, 1), np.take_along_axis(I, order, 1)


def _ambiguous(D: np.ndarray, I: np.ndarray, k: int, retrieved: int, n_cand: int) -> np.ndarray:
    """Rows whose k-th score equals the last retrieved one (more equal scores may exist beyond)."""
    if retrieved >= n_cand or retrieved <= k:
        return np.zeros(len(D), dtype=bool)
    return (D[:, k - 1] == D[:, retrieved - 1]) & (I[:, retrieved - 1] >= 0)


def search_topk(index, xq: np.ndarray, k: int, n_cand: int, max_k: int | None = None):
    """Top-k (scores [n,k] float32, positions [n,k] int64) of xq [n,d] under the tie rule.

    max_k: the index's largest k (faiss-gpu: 2048); ties that run past it keep faiss's order.
    """
    limit = min(n_cand, max_k or n_cand)
    kk = min(k + 1, limit)
    D, I = sort_ties(*index.search(xq, kk))
    todo = np.flatnonzero(_ambiguous(D, I, k, kk, n_cand))
    D, I = D[:, :k].copy(), I[:, :k].copy()
    while len(todo) and kk < limit:  # rare: exact ties at the k-th place; widen until the tie group is complete
        kk = min(2 * kk, limit)
        D2, I2 = sort_ties(*index.search(np.ascontiguousarray(xq[todo]), kk))
        D[todo], I[todo] = D2[:, :k], I2[:, :k]
        todo = todo[_ambiguous(D2, I2, k, kk, n_cand)]
    return D, I.astype(np.int64)


def random_candidates(n: int, n_cand: int, k: int, seed: int, block: int) -> np.ndarray:
    """[n, k] distinct random positions per query; seeded by (seed, block) so shards and resumes agree."""
    rng = np.random.default_rng([seed, block])
    pos = rng.integers(0, n_cand, size=(n, k))
    if k > 1:
        s = np.sort(pos, axis=1)
        for r in np.flatnonzero((np.diff(s, axis=1) == 0).any(axis=1)):
            pos[r] = rng.choice(n_cand, size=k, replace=False)
    return pos.astype(np.int64)


def exact_topk(xq: np.ndarray, blocks, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k of xq [n,D] over candidate blocks (an iterable of [m,D] arrays, in position order).

    Streams: memory is xq + one block + [n, 2k]. Returns (scores [n,k], positions [n,k]).
    """
    n = len(xq)
    best_D, best_I = np.full((n, 0), -np.inf, np.float32), np.zeros((n, 0), np.int64)
    start = 0
    for x in blocks:
        s = xq @ x.T
        kb = min(k, s.shape[1])
        part = np.argpartition(-s, kb - 1, axis=1)[:, :kb]
        D = np.hstack([best_D, np.take_along_axis(s, part, 1)])
        I = np.hstack([best_I, part + start])
        best_D, best_I = (a[:, :k] for a in sort_ties(D, I))
        start += x.shape[0]
    return best_D, best_I


def recall_at(approx: np.ndarray, exact: np.ndarray) -> dict:
    """recall@k = mean |approx_k ∩ exact_k| / k and recall@1 (top-1 agreement); inputs [n, k] ids."""
    k = exact.shape[1]
    hits = [len(np.intersect1d(a[a >= 0], e)) for a, e in zip(approx, exact)]
    return {"recall@1": float(np.mean(approx[:, 0] == exact[:, 0])), f"recall@{k}": float(np.mean(hits) / k),
            "queries": int(len(exact))}
