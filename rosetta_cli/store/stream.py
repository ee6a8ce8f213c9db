"""Chunk-shuffled streaming from stores: training never loads a whole store.

Items (e.g. training pairs) are keyed by the store row they read first. Chunks are
visited in random order; the items of `buffer_chunks` chunks are shuffled together
and cut into batches. Rows are read through an LRU cache of whole decoded chunks,
so each chunk is decompressed about once per epoch.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Iterator

import numpy as np


def chunk_shuffled_order(key_rows: np.ndarray, chunk_rows: int, rng: np.random.Generator,
                         buffer_chunks: int = 16) -> np.ndarray:
    """Permutation of item indices [n_items]: chunk order shuffled, then items shuffled within a buffer.

    key_rows: [n_items] the store row each item reads first.
    """
    key_rows = np.asarray(key_rows)
    chunks = key_rows // chunk_rows
    uniq = np.unique(chunks)
    rng.shuffle(uniq)
    by_chunk = {c: np.flatnonzero(chunks == c) for c in uniq} if len(uniq) < 4096 else _group(chunks)
    out = []
    for i in range(0, len(uniq), buffer_chunks):
        buf = np.concatenate([by_chunk[c] for c in uniq[i:i + buffer_chunks]])
        rng.shuffle(buf)
        out.append(buf)
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def _group(chunks: np.ndarray) -> dict:
    order = np.argsort(chunks, kind="stable")
    sorted_c = chunks[order]
    bounds = np.flatnonzero(np.diff(sorted_c)) + 1
    return {int(g[0]): idx for g, idx in zip(np.split(sorted_c, bounds), np.split(order, bounds))}


def shard(order: np.ndarray, rank: int, world: int, batch_size: int) -> np.ndarray:
    """Equal-length per-rank slices (trailing remainder dropped so ranks step together)."""
    per = (len(order) // (world * batch_size)) * batch_size if world > 1 else len(order)
    return order[rank * per:(rank + 1) * per] if world > 1 else order


def batches(order: np.ndarray, batch_size: int, drop_last: bool = True) -> Iterator[np.ndarray]:
    stop = len(order) - (len(order) % batch_size if drop_last else 0)
    for i in range(0, stop, batch_size):
        yield order[i:i + batch_size]


class ChunkCache:
    """Row reads of one array through an LRU cache of whole chunks.

    read_block(start, stop) -> np.ndarray rows [stop-start, ...] (e.g. store.features / store.pooled).
    """

    def __init__(self, read_block: Callable[[slice], np.ndarray], n_rows: int, chunk_rows: int, max_chunks: int = 64):
        self.read_block = read_block
        self.n_rows = n_rows
        self.chunk_rows = chunk_rows
        self.max_chunks = max_chunks
        self.cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self.misses = 0

    def _chunk(self, c: int) -> np.ndarray:
        if c in self.cache:
            self.cache.move_to_end(c)
            return self.cache[c]
        self.misses += 1
        data = self.read_block(slice(c * self.chunk_rows, min((c + 1) * self.chunk_rows, self.n_rows)))
        self.cache[c] = data
        if len(self.cache) > self.max_chunks:
            self.cache.popitem(last=False)
        return data

    def get(self, rows: np.ndarray) -> np.ndarray:
        """rows [b] → stacked rows [b, ...] in the given order."""
        rows = np.asarray(rows)
        chunks = rows // self.chunk_rows
        first = self._chunk(int(chunks[0]))
        out = np.empty((len(rows), *first.shape[1:]), dtype=first.dtype)
        for c in np.unique(chunks):
            sel = chunks == c
            out[sel] = self._chunk(int(c))[rows[sel] - c * self.chunk_rows]
        return out
