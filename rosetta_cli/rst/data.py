"""Training pairs for the RST: synchronized (ego, exo) rows of paired stores, split, normalised, streamed.

A paired store holds ego and exo rows of the same moments; rows of one moment share a non-empty
`sync_id` (its prefix before "/" names the take when the dataset has takes). Every done ego row is
paired with every done exo row of its moment. Items are (store index, ego row, exo row).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from rosetta_cli.errors import DimensionMismatch, UsageError
from rosetta_cli.eval.split import held_out_takes, in_takes, take_of
from rosetta_cli.store import resident as res
from rosetta_cli.store.stream import ChunkCache, batches, chunk_shuffled_order, shard

NEED = ("a paired store needs done rows of view 'ego' and of view 'exo' that share a non-empty sync_id "
        "outside the benchmark splits test/val (e.g. `rosetta toy` writes one, or `rosetta extract` a "
        "synchronized Ego-Exo4D manifest)")


@dataclass
class PairSet:
    """Aligned item arrays [n_items]: store index, ego row, exo row, sync_id, held-out flag."""

    store: np.ndarray
    ego: np.ndarray
    exo: np.ndarray
    sync: np.ndarray
    val: np.ndarray

    def subset(self, mask: np.ndarray) -> "PairSet":
        return PairSet(self.store[mask], self.ego[mask], self.exo[mask], self.sync[mask], self.val[mask])

    def __len__(self) -> int:
        return len(self.ego)


def store_pairs(store, index: int) -> pd.DataFrame:
    """DataFrame [store, ego, exo, sync] of the synchronized pairs inside one store."""
    df = pd.DataFrame({"row": np.arange(store.n_rows), "view": store.column("view"),
                       "sync": store.column("sync_id"), "status": store.status()})
    df = df[store.trainable_mask() & (df.sync.astype(str) != "").to_numpy()]  # benchmark (test/val) rows never train
    ego = df[df.view == "ego"][["row", "sync"]].rename(columns={"row": "ego"})
    exo = df[df.view == "exo"][["row", "sync"]].rename(columns={"row": "exo"})
    pairs = ego.merge(exo, on="sync").sort_values(["ego", "exo"], kind="stable")
    pairs.insert(0, "store", index)
    return pairs


def build_pairs(stores, val_frac: float, split_seed: int) -> tuple[PairSet, list[str]]:
    """All pairs of all stores, with a held-out share of takes (never trained on; eval.split). → (pairs, held-out takes)."""
    frames = [store_pairs(s, i) for i, s in enumerate(stores)]
    df = pd.concat(frames, ignore_index=True)
    if df.empty:
        paths = ", ".join(str(s.path) for s in stores)
        raise UsageError(f"{paths}: no synchronized ego/exo pairs", hint=NEED)
    sync = df["sync"].astype(str).to_numpy()
    takes = take_of(sync)
    held = held_out_takes(takes, val_frac, split_seed)
    val = in_takes(takes, held)
    return PairSet(df["store"].to_numpy(np.int64), df["ego"].to_numpy(np.int64), df["exo"].to_numpy(np.int64),
                   sync, val), held


def check_dims(stores) -> dict:
    """All paired stores must share frames and dim (ego and exo rows live in the same arrays)."""
    dims = {(s.frames, s.dim) for s in stores}
    if len(dims) > 1:
        got = ", ".join(f"{s.path}: T={s.frames} D={s.dim}" for s in stores)
        raise DimensionMismatch(f"paired stores disagree on feature shape ({got})",
                                hint="train on stores extracted with the same encoder and frame count")
    (frames, dim), = dims
    return {"ego_frames": frames, "ego_dim": dim, "exo_frames": frames, "exo_dim": dim,
            "dtype": stores[0].dtype}


def norm_stats(stores, pairs: PairSet) -> dict:
    """Per-dim mean/std of the training ego and exo features (over rows and frames), read block by block.

    → {"ego_mean", "ego_std", "exo_mean", "exo_std"}: lists of D floats (JSON, stored in the checkpoint),
    and "exo_absmax": the largest |normalised exo value| (a float; the sampler's x0 clamp, see diffusion.py).
    """
    out = {}
    for view, rows_of in (("ego", pairs.ego), ("exo", pairs.exo)):
        s1 = s2 = 0.0
        n = 0
        lo, hi = np.inf, -np.inf
        for i, store in enumerate(stores):
            rows = np.unique(rows_of[pairs.store == i])
            for a, b in store.blocks():
                sel = rows[(rows >= a) & (rows < b)]
                if len(sel):
                    x = store.features(slice(a, b))[sel - a].astype(np.float64).reshape(-1, store.dim)
                    s1, s2, n = s1 + x.sum(0), s2 + (x * x).sum(0), n + len(x)
                    lo, hi = np.minimum(lo, x.min(0)), np.maximum(hi, x.max(0))    # per dim [D]
        mean = s1 / n
        std = np.maximum(np.sqrt(np.maximum(s2 / n - mean * mean, 0.0)), 1e-6)  # constant dims → 0, not inf
        out[f"{view}_mean"] = mean.astype(np.float32).tolist()
        out[f"{view}_std"] = std.astype(np.float32).tolist()
        if view == "exo":  # in the float32 units the model sees: max over dims of max |x - mean| / std
            m32, s32 = mean.astype(np.float32).astype(np.float64), std.astype(np.float32).astype(np.float64)
            out["exo_absmax"] = float(np.max(np.maximum(hi - m32, m32 - lo) / s32))
    return out


class PairStream:
    """Batches of (ego [b, T, D], exo [b, T, D]) raw arrays in the stored dtype for training step s.

    (fp16 stays fp16 here: numpy's fp16 → fp32 cast costs more than the whole gather; torch casts on device.)

    The item order of epoch e is a chunk-shuffled permutation drawn from (seed, e); step s reads batch
    s mod steps_per_epoch of that order, so any step's batch is reproducible without replaying history.
    Reads go through one LRU ChunkCache per store: memory holds at most `cache_chunks` chunks per store.

    resident (auto | ram | gpu | off; store.resident.resolve, `budget` injects the free memory): load
    every store's features once and gather batches from memory, the same rows and values as the
    streaming path. `self.resident` is the mode chosen; in "gpu" mode a batch is a pair of torch
    tensors on `device` (stored dtype) instead of numpy arrays.
    """

    def __init__(self, stores, pairs: PairSet, batch_size: int, seed: int, rank: int = 0, world: int = 1,
                 cache_chunks: int = 64, buffer_chunks: int = 16, resident: str = "off", device: str = "cpu",
                 budget: dict | None = None):
        self.stores, self.pairs = stores, pairs
        self.batch_size, self.seed, self.rank, self.world = batch_size, seed, rank, world
        self.buffer_chunks = buffer_chunks
        self.resident = resident_mode(stores, resident, device, budget)
        self.caches, self.memory = [], None
        if self.resident == "off":
            self.caches = [ChunkCache(s.features, s.n_rows, s.chunk_rows, cache_chunks) for s in stores]
        else:  # one array of every store's rows; store i's row r at offsets[i] + r
            self.memory, self.offsets = res.load(stores, "features", device if self.resident == "gpu" else None)
        offsets = np.cumsum([0] + [-(-s.n_rows // s.chunk_rows) for s in stores])
        chunk_rows = np.array([s.chunk_rows for s in stores])
        # global chunk id of each item's ego row: the shuffle unit (chunk_rows=1 below)
        self.keys = offsets[pairs.store] + pairs.ego // chunk_rows[pairs.store]
        self.steps_per_epoch = len(shard(np.arange(len(pairs)), rank, world, batch_size)) // batch_size
        if self.steps_per_epoch == 0:
            raise UsageError(f"only {len(pairs)} training pairs for a batch of {batch_size} × {world} process(es)",
                             hint="lower --batch-size")
        self._epoch, self._batches = None, None

    def epoch_batches(self, epoch: int) -> list[np.ndarray]:
        if epoch != self._epoch:
            rng = np.random.default_rng([self.seed, epoch])
            order = chunk_shuffled_order(self.keys, 1, rng, self.buffer_chunks)
            self._batches = list(batches(shard(order, self.rank, self.world, self.batch_size), self.batch_size))
            self._epoch = epoch
        return self._batches

    def batch(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """Items of global step `step` → (ego, exo) [b, T, D] in the stored dtype (torch tensors on the
        device when resident on the GPU)."""
        idx = self.epoch_batches(step // self.steps_per_epoch)[step % self.steps_per_epoch]
        return self.read(idx)

    def read(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Items idx [b] → (ego, exo) [b, T, D] in the first store's dtype."""
        p = self.pairs
        if self.memory is not None:
            at = self.offsets[p.store[idx]]
            return self.memory.get(at + p.ego[idx]), self.memory.get(at + p.exo[idx])
        ego = np.empty((len(idx), *self._shape()), dtype=self.stores[0].dtype)
        exo = np.empty_like(ego)
        for i, cache in enumerate(self.caches):
            sel = p.store[idx] == i
            if sel.any():
                ego[sel] = cache.get(p.ego[idx[sel]])
                exo[sel] = cache.get(p.exo[idx[sel]])
        return ego, exo

    def _shape(self):
        return self.stores[0].frames, self.stores[0].dim


def resident_mode(stores, resident: str, device: str, budget: dict | None = None) -> str:
    """The mode `resident` resolves to for these stores' features (store.resident.resolve)."""
    need = sum(res.nbytes(s) for s in stores)
    return res.resolve(resident, {"gpu": need, "ram": need}, device, budget, what="the paired stores' features")
