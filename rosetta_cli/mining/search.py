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


class ShardedFlat:
    """Exact inner-product search over candidate blocks of at most block_rows vectors, one flat index per block.

    gpus [ids]: each block is a faiss GpuIndexFlatIP holding float16 vectors, the blocks dealt round-robin
    over the GPUs (config.GPU_FLAT_BLOCK_BYTES bounds a block); []: IndexFlatIP blocks on the CPU, the same
    block and merge logic, so that it is tested without a GPU. The merge is exact: any vector among the
    overall top-k is among its own block's top-k, so the top-k of the blocks' top-k lists is the top-k.
    Positions are global (block offset + position in the block), in the order the vectors were added.
    Quacks like a faiss index for search_topk: d, ntotal, add(x), search(xq, k).
    """

    def __init__(self, d: int, block_rows: int, gpus: list[int] | tuple = ()):
        self.d, self.block_rows, self.gpus = d, int(block_rows), list(gpus)
        self.blocks: list = []
        self.ntotal = 0
        self.rosetta_on_gpu = bool(self.gpus)
        self._res = {}

    def _new_block(self):
        import faiss

        if not self.gpus:
            return faiss.IndexFlatIP(self.d)
        g = self.gpus[len(self.blocks) % len(self.gpus)]
        if g not in self._res:
            self._res[g] = faiss.StandardGpuResources()
        cfg = faiss.GpuIndexFlatConfig()
        cfg.device, cfg.useFloat16 = g, True
        return faiss.GpuIndexFlatIP(self._res[g], self.d, cfg)

    def add(self, x: np.ndarray) -> None:
        """Append x [n, d] (float32), filling the last block before opening a new one."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        self.ntotal += len(x)
        while len(x):
            if not self.blocks or self.blocks[-1].ntotal >= self.block_rows:
                self.blocks.append(self._new_block())
            room = self.block_rows - self.blocks[-1].ntotal
            self.blocks[-1].add(x[:room])
            x = x[room:]

    def search(self, xq: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores [n, k] float32, positions [n, k] int64) over all blocks; -1 where fewer than k exist."""
        xq = np.ascontiguousarray(xq, dtype=np.float32)
        parts = self._per_block(xq, k)
        D = np.hstack([p[0] for p in parts])
        I = np.hstack([np.where(p[1] >= 0, p[1] + off, -1) for p, off in
                       zip(parts, np.cumsum([0] + [b.ntotal for b in self.blocks[:-1]]))])
        D, I = sort_ties(D, I)
        if D.shape[1] < k:
            pad = k - D.shape[1]
            D = np.hstack([D, np.full((len(D), pad), -np.inf, np.float32)])
            I = np.hstack([I, np.full((len(I), pad), -1, np.int64)])
        return D[:, :k], I[:, :k].astype(np.int64)

    def _per_block(self, xq: np.ndarray, k: int) -> list:
        """Each block's (scores, positions in the block). With several GPUs, one thread per GPU searches that
        GPU's blocks (faiss releases the GIL, and a GPU's resources are never shared between threads)."""
        def one(b):
            return b.search(xq, min(k, b.ntotal))
        if len(self.gpus) < 2 or len(self.blocks) < 2:
            return [one(b) for b in self.blocks]
        from concurrent.futures import ThreadPoolExecutor

        mine = [list(range(i, len(self.blocks), len(self.gpus))) for i in range(len(self.gpus))]  # round-robin
        out = [None] * len(self.blocks)

        def run(ids):
            for i in ids:
                out[i] = one(self.blocks[i])
        with ThreadPoolExecutor(len(self.gpus)) as pool:
            list(pool.map(run, mine))
        return out
