"""Training data for stage 4: which rows pair with which, checked inputs, and batch streams.

Two item sources, mixed in every batch in a fixed ratio (so every rank's batch has the
same shape, which the cross-rank gather needs):
  paired  synchronized (ego row, exo row) of the paired store P: rows with the same
          non-empty sync_id; w = 1. Takes (sync_id prefix before '/') are split into
          train / held-out (the held-out ones feed the retrieval monitor only).
  pseudo  (query_row into EGO, candidate_row into EXO, weight) from the pairs store;
          the positive of L_vs is row query_row of the translations store.
          `--unpaired-fraction F` keeps a seeded, nested subset of the ego queries.
Every item carries a moment key (int64) so that the losses can mask same-moment false
negatives: paired items key by sync_id (codes >= 0), pseudo items by their ego query row
(-1 - row < 0), two namespaces that cannot collide.
Benchmark rows (split test/val) never train and never enter the PCA sample (trainable_mask).
Each source is an `ItemStream`: the global batch at step s is a pure function of
(seed, s), so an exact resume needs nothing but the step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rosetta_cli.errors import DimensionMismatch, StoreError, UsageError
from rosetta_cli.eval.split import DEFAULT_SPLIT_SEED, held_out_takes, in_takes, take_of
from rosetta_cli.store import Store
from rosetta_cli.store import resident as res
from rosetta_cli.store.core import check_ego_exo, check_translations, require_finite
from rosetta_cli.store.stream import ChunkCache, chunk_shuffled_order, feature_reader


@dataclass
class Sources:
    """The opened input stores (None where not given)."""
    paired: Store | None = None
    ego: Store | None = None
    exo: Store | None = None
    pairs: Store | None = None
    translated: Store | None = None
    notes: list = field(default_factory=list)  # what was implied / dropped, for the user and the log

    def stores(self) -> dict:
        return {k: getattr(self, k) for k in ("paired", "ego", "exo", "pairs", "translated") if getattr(self, k)}


def open_sources(cfg) -> Sources:
    """Open and cross-check the stores named in a PretrainConfig (raises UsageError family)."""
    if not cfg.paired and not cfg.pairs:
        raise UsageError("nothing to train on: give --paired P and/or --pairs PAIRS (with --ego/--exo)",
                         hint="e.g. rosetta pretrain --paired paired.zarr --out model")
    if cfg.pairs and not (cfg.ego and cfg.exo):
        raise UsageError("--pairs needs --ego and --exo (the stores its rows point into)")
    if cfg.translated and not cfg.pairs:
        raise UsageError("--translated is used with --pairs (it holds the RST translations of the ego store)")
    src = Sources(paired=Store.open(cfg.paired, kind="features") if cfg.paired else None)
    if cfg.pairs:
        src.ego, src.exo = Store.open(cfg.ego, kind="features"), Store.open(cfg.exo, kind="features")
        check_ego_exo(src.ego, src.exo)
        src.pairs = Store.open(cfg.pairs, kind="pairs")
        check_pairs_provenance(src.pairs, src.ego, src.exo)
        if cfg.translated and cfg.synthetic:
            src.translated = Store.open(cfg.translated, kind=("translations", "features"))
            src.notes += check_translations(src.translated, src.ego)
        elif not cfg.translated and cfg.synthetic:
            src.notes.append("no --translated store: training without the video-synthetic loss L_vs")
    check_dims(src)
    return src


def check_pairs_provenance(pairs: Store, ego: Store, exo: Store) -> None:
    """The pairs store must have been mined from exactly these ego / exo stores (parents by id)."""
    parents = {p.get("role"): p for p in pairs.meta.get("parents", [])}
    for role, store in (("ego", ego), ("exo", exo)):
        rec = parents.get(role)
        if rec is None:
            raise StoreError(f"{pairs.path}: records no {role!r} parent store, so its rows cannot be trusted to "
                             f"index {store.path}", hint="re-mine it with `rosetta mine`, which records its inputs")
        if rec.get("id") != store.id:
            raise StoreError(f"{pairs.path}: was mined from {role} store {rec.get('path', '?')} (id {rec.get('id')}), "
                             f"not {store.path} (id {store.id})",
                             hint=f"pass the --{role} store the pairs were mined from, or re-mine")
    n = pairs.n_rows
    if n and (pairs.b.read("pairs/query_row").max() >= ego.n_rows or pairs.b.read("pairs/candidate_row").max() >= exo.n_rows):
        raise StoreError(f"{pairs.path}: row indices exceed the ego/exo stores", hint="re-mine against these stores")


def check_dims(src: Sources) -> None:
    """One feature dim D across every visual store; one text dim across the text sources."""
    vis = {k: s for k, s in src.stores().items() if k != "pairs"}
    dims = {k: s.dim for k, s in vis.items()}
    if len(set(dims.values())) > 1:
        raise DimensionMismatch(f"feature dims differ between inputs: {dims}",
                                hint="all stores must come from the same frozen encoder (same D)")
    tdims = {k: s.text_dim for k, s in (("paired", src.paired), ("ego", src.ego)) if s is not None and s.text_dim}
    if len(set(tdims.values())) > 1:
        raise DimensionMismatch(f"text embedding dims differ: {tdims}", hint="use one text encoder for all stores")


# ---------------------------------------------------------------------------- item tables
@dataclass
class PairedItems:
    ego_rows: np.ndarray      # [n] train pairs, rows of P
    exo_rows: np.ndarray      # [n]
    val_ego: np.ndarray       # held-out ego rows of P
    val_exo: np.ndarray       # held-out exo rows of P
    n_takes: int = 0
    n_val_takes: int = 0
    keys: np.ndarray | None = None  # [n] int64 moment key (code of the sync_id, >= 0): same moment, same key

    def __post_init__(self):
        if self.keys is None:  # every pair its own moment (no masking) when not given
            self.keys = np.arange(len(self.ego_rows), dtype=np.int64)


def paired_items(store: Store, val_frac: float, split_seed: int = DEFAULT_SPLIT_SEED) -> PairedItems:
    """All (ego, exo) row pairs sharing a non-empty sync_id among done, non-test rows, split by take (eval.split)."""
    import pandas as pd

    df = pd.DataFrame({"view": store.column("view"), "sync_id": store.column("sync_id")})
    df["row"] = np.arange(len(df))
    df = df[store.trainable_mask() & (df["sync_id"] != "")]  # benchmark (test/val) rows never train
    ego, exo = df[df["view"] == "ego"], df[df["view"] == "exo"]
    both = ego.merge(exo, on="sync_id", suffixes=("_ego", "_exo")).sort_values(["row_ego", "row_exo"])
    takes = take_of(df["sync_id"].to_numpy())
    val = held_out_takes(takes, val_frac, split_seed)
    is_val = in_takes(take_of(both["sync_id"].to_numpy()), val)
    val_ego = ego[in_takes(take_of(ego["sync_id"].to_numpy()), val)]["row"].to_numpy()
    val_exo = exo[in_takes(take_of(exo["sync_id"].to_numpy()), val)]["row"].to_numpy()
    train = both[~is_val]
    keys = pd.factorize(train["sync_id"])[0].astype(np.int64) if len(train) else np.zeros(0, np.int64)
    return PairedItems(train["row_ego"].to_numpy(), train["row_exo"].to_numpy(), val_ego, val_exo,
                       n_takes=len(set(takes)), n_val_takes=len(val), keys=keys)


@dataclass
class PseudoItems:
    query_rows: np.ndarray    # [n] rows of EGO (and of the translations store)
    cand_rows: np.ndarray     # [n] rows of EXO
    weight: np.ndarray        # [n] float32 soft weight w in [0, 1]
    dropped: int = 0          # pairs whose query or candidate row is not DONE (or is a benchmark row)
    n_queries_all: int = 0    # distinct usable ego queries before --unpaired-fraction

    @property
    def keys(self) -> np.ndarray:
        """[n] int64 moment keys (see pseudo_keys)."""
        return pseudo_keys(self.query_rows)

    def subset(self, keep: np.ndarray) -> "PseudoItems":
        return PseudoItems(self.query_rows[keep], self.cand_rows[keep], self.weight[keep], self.dropped,
                           self.n_queries_all)


def pseudo_keys(query_rows: np.ndarray) -> np.ndarray:
    """[n] int64 moment keys of pseudo items: -1 - query_row. Negative, so never equal to a paired
    item's key (a sync_id code >= 0); items of one ego query (top-k > 1) share the key."""
    return -1 - np.asarray(query_rows, dtype=np.int64)


def exo_keys(exo_rows: np.ndarray, paired: bool) -> np.ndarray:
    """[n] int64 exo clip identities: the paired store's exo rows (>= 0), or -1 - row of the unpaired
    exo store (< 0), so the two stores never share a key; one exo clip, one key."""
    rows = np.asarray(exo_rows, dtype=np.int64)
    return rows if paired else -1 - rows


def pseudo_items(pairs: Store, ego: Store, exo: Store, max_rank: int, soft: bool) -> PseudoItems:
    """Pairs with rank < max_rank whose two rows are trainable (DONE, not a benchmark split).
    Weights: the store's narration similarity clipped to [0, 1] (a negative w would push a pair
    apart); non-finite → 1."""
    df = pairs.pairs()
    df = df[df["rank"] < max_rank]
    q, c = df["query_row"].to_numpy(np.int64), df["candidate_row"].to_numpy(np.int64)
    ok = ego.trainable_mask()[q] & exo.trainable_mask()[c]
    w = df["weight"].to_numpy(np.float32)
    w = np.where(np.isfinite(w), np.clip(w, 0.0, 1.0), 1.0).astype(np.float32)
    if not soft:
        w = np.ones_like(w)
    return PseudoItems(q[ok], c[ok], w[ok], dropped=int((~ok).sum()), n_queries_all=len(np.unique(q[ok])))


def unpaired_subset(query_rows: np.ndarray, n_ego_rows: int, fraction: float, seed: int) -> np.ndarray:
    """bool [n] over pseudo items: those whose ego query is among the first round(F * q) of the
    q distinct queries, in a fixed seeded priority order of the ego store's rows.

    The order depends only on (seed, n_ego_rows), so subsets are nested (F=0.25 within 0.5 within 1)
    and pick the same ego clips for every pairs store mined from this ego store."""
    query_rows = np.asarray(query_rows, dtype=np.int64)
    if fraction >= 1.0 or len(query_rows) == 0:
        return np.ones(len(query_rows), bool)
    priority = np.random.default_rng([seed, 0x0F5A]).permutation(n_ego_rows)   # [N] rank of each ego row
    uniq = np.unique(query_rows)
    k = max(1, int(round(fraction * len(uniq))))
    chosen = uniq[np.argsort(priority[uniq], kind="stable")[:k]]
    return np.isin(query_rows, chosen)


# ---------------------------------------------------------------------------- streams
class ItemStream:
    """Endless chunk-shuffled passes over n items; `global_batch(step)` → item indices [per_step].

    Pass p uses the permutation from rng(seed, stream_id, p); a pass's trailing remainder
    (< per_step items) is skipped, so every step has a full batch."""

    def __init__(self, key_rows: np.ndarray, chunk_rows: int, per_step: int, seed: int, stream_id: int,
                 buffer_chunks: int = 16):
        self.key_rows, self.chunk_rows, self.per_step = np.asarray(key_rows), chunk_rows, per_step
        self.seed, self.stream_id, self.buffer_chunks = seed, stream_id, buffer_chunks
        self.usable = (len(self.key_rows) // per_step) * per_step
        self._pass, self._order = -1, None

    @property
    def steps_per_pass(self) -> int:
        return self.usable // self.per_step

    def _order_of(self, p: int) -> np.ndarray:
        if p != self._pass:
            rng = np.random.default_rng([self.seed, self.stream_id, p])
            self._order = chunk_shuffled_order(self.key_rows, self.chunk_rows, rng, self.buffer_chunks)
            self._pass = p
        return self._order

    def global_batch(self, step: int) -> np.ndarray:
        p, off = divmod(step * self.per_step, self.usable)
        return self._order_of(p)[off:off + self.per_step]


def narrated(text: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stored narration embeddings [n, Dt] → (a copy with non-narrated rows zeroed [n, Dt] float32,
    has_text [n] bool). extract writes a zero vector for a clip without narration, and an imported
    array may hold NaN: both mean "no narration", so such items are left out of L_vt."""
    x = np.asarray(text, dtype=np.float32)
    has = np.isfinite(x).all(axis=1) & (np.abs(np.nan_to_num(x)).sum(axis=1) > 0)
    return np.where(has[:, None], np.nan_to_num(x), 0.0).astype(np.float32), has


def count_narrated(store: Store, rows: np.ndarray) -> int:
    """How many of `rows` (may repeat) have a narration embedding, read chunk by chunk."""
    rows = np.asarray(rows, dtype=np.int64)
    total = 0
    for start, stop in store.blocks():
        sel = rows[(rows >= start) & (rows < stop)]
        if len(sel):
            total += int(narrated(store.text(slice(start, stop))[sel - start])[1].sum())
    return total


# ---------------------------------------------------------------------------- row readers
class ArrayReader:
    """Row reads from an in-memory array (the benchmark's baseline; small monitor sets)."""

    def __init__(self, array: np.ndarray):
        self.array = array

    def get(self, rows: np.ndarray) -> np.ndarray:
        return self.array[rows]


def make_readers(src: Sources, in_memory: bool = False, cache_chunks: int = 64) -> dict:
    """name → reader with .get(rows): {paired,ego,exo,translated}_feat and {paired,ego}_text.

    Features of uncompressed zarr stores are read row by row (RowReader): the exo side of
    pseudo-pairs is random access, and at paper scale no chunk cache holds its store. Narrations
    (blosc-compressed, read in the ego side's chunk-shuffled order) and other stores go through
    an LRU ChunkCache of `cache_chunks` decoded chunks."""
    arrays = {}
    for name in ("paired", "ego", "exo", "translated"):
        s = getattr(src, name)
        if s is not None:
            arrays[f"{name}_feat"] = (s, s.features)
            if name in ("paired", "ego") and s.text_dim:
                arrays[f"{name}_text"] = (s, s.text)
    if in_memory:
        return {k: ArrayReader(fn()) for k, (s, fn) in arrays.items()}
    return {k: feature_reader(s, cache_chunks) if k.endswith("_feat")
            else ChunkCache(fn, s.n_rows, s.chunk_rows, max_chunks=cache_chunks) for k, (s, fn) in arrays.items()}


def _arrays(src: Sources) -> dict:
    """name → (store, "features" | "text") of every array the batches read."""
    out = {}
    for name in ("paired", "ego", "exo", "translated"):
        s = getattr(src, name)
        if s is not None:
            out[f"{name}_feat"] = (s, "features")
            if name in ("paired", "ego") and s.text_dim:
                out[f"{name}_text"] = (s, "text")
    return out


def resident_mode(src: Sources, resident: str, device: str, budget: dict | None = None) -> str:
    """The mode `resident` (auto | ram | gpu | off) resolves to for these stores (store.resident.resolve).
    GPU residency holds the features on the device; narrations stay in RAM (data.narrated is numpy)."""
    arrays = _arrays(src).values()
    feats = sum(res.nbytes(s, w) for s, w in arrays if w == "features")
    text = sum(res.nbytes(s, w) for s, w in arrays if w == "text")
    return res.resolve(resident, {"gpu": feats, "ram": feats + text, "ram_extra": text}, device, budget,
                       what="the training stores")


def open_readers(src: Sources, resident: str = "off", device: str = "cpu", cache_chunks: int = 64,
                 budget: dict | None = None) -> tuple[dict, str]:
    """The readers of make_readers, resident in memory when `resident` says so. → (readers, mode).

    mode "off": make_readers (streaming). "ram": every array loaded once into RAM (numpy). "gpu":
    features loaded onto `device` (their .get returns torch tensors there, stored dtype), narrations in
    RAM. Either way a reader's .get(rows) holds the rows and values the streaming reader returns, so
    batches are unchanged; resident readers need no prefetch (batches.local_batch reads them directly).
    """
    mode = resident_mode(src, resident, device, budget)
    if mode == "off":
        return make_readers(src, cache_chunks=cache_chunks), mode
    readers = {}
    for name, (s, what) in _arrays(src).items():
        on_gpu = mode == "gpu" and what == "features"
        readers[name] = res.load([s], what, device if on_gpu else None)[0]
    return readers, mode


def pooled_sample(src: Sources, n: int, seed: int) -> np.ndarray:
    """About n pooled trainable features [m, D] from the training stores (for the PCA init).
    Only DONE rows outside the benchmark splits: test/val clips must not shape the model either.
    Whole random chunks are read, so a huge store costs a few chunk reads, not n."""
    rng = np.random.default_rng(seed)
    stores = [s for s in (src.paired, src.ego, src.exo) if s is not None]
    parts = []
    for s in stores:
        want = max(1, n // len(stores))
        trainable = s.trainable_mask()
        for start, stop in sorted(_random_blocks(s, want, rng)):
            keep = trainable[start:stop]
            if keep.any():
                x = s.pooled(slice(start, stop))[keep]
                require_finite(s, x, start + np.flatnonzero(keep))  # the PCA init's SVD would fail on them
                parts.append(x)
    return np.concatenate(parts, axis=0) if parts else np.zeros((0, 1), np.float32)


def _random_blocks(s: Store, want: int, rng: np.random.Generator) -> list:
    blocks = list(s.blocks())
    order = rng.permutation(len(blocks))
    out, got = [], 0
    for i in order:
        if got >= want:
            break
        start, stop = blocks[i]
        stop = min(stop, start + want - got)
        out.append((start, stop))
        got += stop - start
    return out
