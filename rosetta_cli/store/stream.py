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


def direct_rows(store) -> bool:
    """Whether `store.features(rows)` reads just the rows asked for: uncompressed zarr features
    (the default codec; backends._RawChunks). Compressed or HDF5 features decode whole chunks,
    so those go through a ChunkCache instead."""
    return store.b.name == "zarr" and store.meta.get("codec") == "none"


def feature_reader(store, cache_chunks: int = 64) -> "RowReader | ChunkCache":
    """A reader with .get(rows) of `store`'s features: row reads where the store allows them
    (direct_rows), else an LRU cache of `cache_chunks` decoded chunks."""
    if direct_rows(store):
        return RowReader(store.features)
    return ChunkCache(store.features, store.n_rows, store.chunk_rows, max_chunks=cache_chunks)


class RowReader:
    """Row reads straight from a store array (any order, repeats allowed), with no chunk cache.

    For uncompressed zarr features (the default codec) `Store.features(rows)` reads each row's own
    bytes (or one span of a dense chunk), so a random row costs ~10 KB of I/O, not the 10 MB chunk
    around it: what the random exo side of pseudo-pairs needs once the store outgrows any cache.
    read_rows: int64 rows [b] → array [b, ...] (e.g. store.features).
    """

    def __init__(self, read_rows: Callable[[np.ndarray], np.ndarray]):
        self.read_rows = read_rows

    def get(self, rows: np.ndarray) -> np.ndarray:
        return self.read_rows(np.asarray(rows, dtype=np.int64))


def gather_window(reads: list[list[tuple[str, np.ndarray]]], readers: dict) -> list[list[np.ndarray]]:
    """The rows of several steps, read with one sorted call per reader.

    reads: per step, a list of (reader name, rows [b]); readers: name → object with .get(rows).
    Returns, per step, the arrays [b, ...] in the order of its reads — exactly what
    `readers[name].get(rows)` would return for each, so batching never changes a batch.
    Rows are de-duplicated and sorted per reader, so each chunk (or row) is read once per window.
    """
    by_name: dict[str, list] = {}
    for s, step_reads in enumerate(reads):
        for j, (name, rows) in enumerate(step_reads):
            by_name.setdefault(name, []).append((s, j, np.asarray(rows, dtype=np.int64)))
    out: list[list] = [[None] * len(r) for r in reads]
    for name, items in by_name.items():
        allrows = np.concatenate([rows for _, _, rows in items])
        uniq, inv = np.unique(allrows, return_inverse=True)
        data = readers[name].get(uniq) if len(uniq) else None
        off = 0
        for s, j, rows in items:
            out[s][j] = data[inv[off:off + len(rows)]] if len(rows) else readers[name].get(rows)
            off += len(rows)
    return out


class Prefetcher:
    """Step-indexed items loaded `window` steps at a time, the next window in a background thread.

    load(start, stop) -> list of the items of steps [start, stop). Which step gets which item is
    fixed by `load` alone: the thread only changes *when* a window is read, never what it holds,
    so a batch stays a pure function of its step (bit-exact resume, 1 rank = 2 ranks).
    Windows start at the first step asked for (a resume at step s reads [s, s+window) first).
    Any step may be asked for; a step outside the current and the prefetched window is loaded
    synchronously (a jump, e.g. in tests). Errors in the thread surface at the `get` that needs them.
    """

    def __init__(self, load: Callable[[int, int], list], window: int, background: bool = True,
                 stop: int | None = None):
        from concurrent.futures import ThreadPoolExecutor

        self.load, self.window, self.stop = load, max(1, int(window)), stop  # stop: no prefetch past it
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="rosetta-prefetch") if background else None
        self.start, self.items = -1, []
        self.next = None  # (start, Future) of the window after the current one

    def _fetch(self, start: int):
        end = start + self.window if self.stop is None or start >= self.stop else min(start + self.window, self.stop)
        return self.load(start, end)

    def get(self, step: int):
        if not self.start <= step < self.start + len(self.items):
            if self.next is not None and self.next[0] == step:
                self.items = self.next[1].result()
            else:
                if self.next is not None:
                    self.next[1].cancel()
                self.items = self._fetch(step)
            self.start, self.next = step, None
        nxt = self.start + len(self.items)
        if self.next is None and self.pool is not None and (self.stop is None or nxt < self.stop):
            self.next = (nxt, self.pool.submit(self._fetch, nxt))
        return self.items[step - self.start]

    def close(self) -> None:
        if self.pool is not None:
            if self.next is not None:
                self.next[1].cancel()
            self.pool.shutdown(wait=True)
            self.pool, self.next = None, None
