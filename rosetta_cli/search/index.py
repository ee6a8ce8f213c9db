"""`rosetta index`: the done rows of feature stores → embeddings → a faiss index in INDEX_DIR.

    INDEX_DIR/
      embeddings.zarr   kind "embeddings", [N, 1, d] float32, unit norm: one row per done source row
                        (clip table copied, so hits need no source store); status per row = resume unit
      sources.npy       int64 [N, 2]: (position of the source store in index.json "stores", its row)
      index.faiss       the faiss index over embeddings (inner product = cosine)
      index.json        written LAST, atomically: what it was made from and the index parameters.
                        Without it (or with status != "complete") the index is never opened.

The space is the dual encoder's (--model) or, without a model, the frozen encoder's pooled features.
Sharding: `--shard I/N` processes fill disjoint chunk-aligned blocks of the one embeddings.zarr
(as extract shards fill one store) and stop; a final run without --shard embeds whatever is left
and builds the index once.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from rosetta_cli.contrastive.api import load_dual_encoder
from rosetta_cli.errors import DimensionMismatch, StoreError, UsageError
from rosetta_cli.eval.metrics import l2_normalize
from rosetta_cli.mining import config as mining_config
from rosetta_cli.mining.index import add_blocks, new_index, plan_index, plan_meta, set_search_params
from rosetta_cli.provenance import command_line, now_iso, to_jsonable
from rosetta_cli.runtime import atomic
from rosetta_cli.runtime.guard import Action, output_action
from rosetta_cli.runtime.interrupt import StopAtStep
from rosetta_cli.runtime.progress import SILENT, Progress
from rosetta_cli.runtime.shard import parse_shard
from rosetta_cli.store import DONE, Store
from rosetta_cli.store.schema import CLIP_COLUMNS
from rosetta_cli.store.core import require_finite
from rosetta_cli.errors import Interrupted
from rosetta_cli.store.backends import holders

FORMAT = "rosetta-index"
FORMAT_VERSION = 1
INDEX_KINDS = ("auto", "flat", "ivf", "hnsw")
RECALL_TARGET = 0.95         # recall@10 against exact that the IVF nprobe calibration must reach
CALIBRATION_QUERIES = 200    # index vectors used as calibration queries
CALIBRATION_K = 10
META, EMB, SOURCES, FAISS = "index.json", "embeddings.zarr", "sources.npy", "index.faiss"


@dataclass
class IndexConfig:
    stores: list = field(default_factory=list)  # features stores whose done rows are indexed
    out: str = ""
    model: str | None = None     # dual-encoder MODEL_DIR; None: frozen pooled features
    index: str = "auto"          # auto (as `mine` chooses: flat below 50k clips or while N*N*d <= 2e13, else IVF) | flat | ivf | hnsw
    nlist: int | None = None
    nprobe: int | None = None    # None: calibrated to RECALL_TARGET recall@10 against exact
    recall: float = RECALL_TARGET
    shard: str | None = None     # "I/N": embed this share only, do not build the index
    batch_rows: int = 16384      # rows per read + encode block (chunk-aligned)
    seed: int = 0
    device: str = "auto"         # the model's forward passes: auto (cuda when available) | cpu | cuda
    resume: bool = False
    overwrite: bool = False

    def check(self) -> None:
        if not self.stores:
            raise UsageError("no --store given", hint="pass --store STORE (repeat for several)")
        if not self.out:
            raise UsageError("no --out INDEX_DIR given")
        if self.index not in INDEX_KINDS:
            raise UsageError(f"--index {self.index!r}: choose one of {', '.join(INDEX_KINDS)}")
        if not 0 < self.recall <= 1:
            raise UsageError(f"--recall {self.recall}: must be in (0, 1]")
        if self.batch_rows < 1:
            raise UsageError("--batch-rows must be >= 1")


@dataclass
class IndexResult:
    out: str
    rows: int                  # clips in the index (done rows of all stores)
    embedded: int              # rows this run embedded
    dim: int
    space: str                 # "model" or "frozen"
    built: bool                # False for a --shard run (the final run builds)
    skipped: int = 0           # rows of the stores not indexed because not done (failed or pending)
    plan: dict = field(default_factory=dict)
    calibration: dict = field(default_factory=dict)
    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    timings: dict = field(default_factory=dict)  # phase → {wall_s, cpu_s} (cpu_s: all threads of this process)

    def to_dict(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------ what the index is made from
def encoder_id(enc: dict | None) -> str | None:
    """'name@sha16' of a store's encoder meta: what a query's encoder must equal."""
    if not enc:
        return None
    return f"{enc.get('name')}@{str(enc.get('weights_sha256') or enc.get('fingerprint') or '')[:16]}"


def open_sources(paths) -> list[Store]:
    """The input stores: features (or translations) of one frozen encoder and one shape."""
    stores = [Store.open(p, kind=("features", "translations")) for p in paths]
    first = stores[0]
    for s in stores[1:]:
        if encoder_id(s.meta.get("encoder")) != encoder_id(first.meta.get("encoder")):
            raise StoreError(f"{s.path}: encoder {encoder_id(s.meta.get('encoder'))} differs from {first.path}: "
                             f"{encoder_id(first.meta.get('encoder'))}", hint="index stores of one frozen encoder")
        if (s.dim, s.frames) != (first.dim, first.frames):
            raise DimensionMismatch(f"{s.path}: features [T={s.frames}, D={s.dim}] differ from {first.path}: "
                                    f"[T={first.frames}, D={first.dim}]", hint="index stores of one encoder and --frames")
    return stores


def source_entry(s: Store) -> dict:
    """Provenance of one input store, with what a video query must reproduce (encoder, frames, decoder)."""
    ext = s.meta.get("extract") or {}
    cfg = s.meta.get("config") or {}
    return {"path": str(Path(s.path).absolute()), "id": s.id, "fingerprint": s.fingerprint, "rows": s.n_rows,
            "kind": s.kind, "encoder": s.meta.get("encoder"), "text_encoder": s.meta.get("text_encoder"),
            "frames": ext.get("frames", cfg.get("frames")), "decoder": ext.get("decoder", cfg.get("decoder")),
            "precision": ext.get("precision", cfg.get("precision")), "feature_frames": s.frames}


def model_entry(enc) -> dict | None:
    if enc is None:
        return None
    return {"path": str(Path(enc.path).absolute()), "name": enc.name, "fingerprint": enc.fingerprint(),
            "run_id": enc.meta.get("run_id", ""), "input_dim": enc.input_dim, "dim": enc.dim,
            "has_text": enc.model.text is not None, "text_dim": enc.text_dim}


def done_rows(stores: list[Store]) -> np.ndarray:
    """int64 [N, 2] (store position, row) of every done row, in store order."""
    parts = [np.stack([np.full(int(m.sum()), i), np.flatnonzero(m)], 1) for i, s in enumerate(stores)
             for m in [s.status() == DONE]]
    out = np.concatenate(parts).astype(np.int64) if parts else np.zeros((0, 2), np.int64)
    if len(out) == 0:
        raise StoreError(f"{stores[0].path}: no done rows to index", hint="finish the extraction first (`rosetta extract` resumes)")
    return out


def source_key(stores: list[Store], enc) -> dict:
    """What the embeddings depend on: a resumed index must have the same."""
    return {"stores": [[s.id, s.fingerprint] for s in stores], "model": enc.fingerprint() if enc is not None else None}


# ------------------------------------------------------------------ embedding
def encode_features(feats: np.ndarray, enc) -> np.ndarray:
    """Frozen features [n, T, D] → unit vectors [n, d]: through the model, or pooled over T."""
    if enc is not None:
        return enc.encode_video(feats)
    return l2_normalize(np.asarray(feats, np.float32).mean(axis=1))


def _read_rows(store: Store, rows: np.ndarray) -> np.ndarray:
    """features of sorted rows [n] → [n, T, D]: one contiguous read of their span."""
    lo, hi = int(rows[0]), int(rows[-1]) + 1
    out = store.features(slice(lo, hi))[rows - lo]
    require_finite(store, out, rows)
    return out


def embed_block(stores: list[Store], src: np.ndarray, enc) -> np.ndarray:
    """Rows src [n, 2] (store, row) → [n, d] float32 unit vectors."""
    out = []
    for i in np.unique(src[:, 0]):
        rows = src[src[:, 0] == i, 1]
        out.append(encode_features(_read_rows(stores[int(i)], rows), enc))
    return np.concatenate(out)


def _create_embeddings(path: Path, stores, src, dim: int, key: dict, cfg: IndexConfig, enc) -> None:
    """embeddings.zarr with N pending rows, made under a temp name and renamed (racing shards: one wins)."""
    import pandas as pd

    parts = []
    for i, s in enumerate(stores):
        rows = src[src[:, 0] == i, 1]
        parts.append(s.clips().iloc[rows])
    clips = pd.concat(parts, ignore_index=True)[list(CLIP_COLUMNS)]
    clips.attrs["labels"] = sorted({lab for s in stores for lab in s.labels})
    clips.attrs["skills"] = sorted({k for s in stores for k in s.skills})
    tmp = path.with_name(f".{path.name}.creating-{os.getpid()}.zarr")
    encoder = {"name": enc.name, "kind": "dual-encoder", "fingerprint": enc.fingerprint()} if enc is not None else \
        {**(stores[0].meta.get("encoder") or {}), "pooled": True}
    out = Store.create(tmp, kind="embeddings", clips=clips, frames=1, dim=dim, dtype="float32",
                       chunk_rows=min(65536, cfg.batch_rows), config=cfg,
                       attrs={"encoder": encoder, "search_key": key}, overwrite=True)
    for j, s in enumerate(stores):
        out.add_parent(f"store{j}", s)
    out.close()
    try:
        os.rename(tmp, path)
    except OSError:  # another shard published first: use theirs
        shutil.rmtree(tmp, ignore_errors=True)


def _save_npy(path: str, arr: np.ndarray) -> None:
    with open(path, "wb") as f:  # a file object: np.save would append .npy to a temp name
        np.save(f, arr, allow_pickle=False)


def _stale_only(emb: Store, stores: list[Store], key: dict) -> bool:
    """The same store paths (in order) and model as the index was built from, but a store rewritten
    since (new fingerprint, or a new id after --overwrite): the index is stale, not foreign."""
    was = [Path(p["path"]).resolve() for p in emb.meta.get("parents", []) if str(p.get("role", "")).startswith("store")]
    return was == [Path(s.path).resolve() for s in stores] and (emb.meta.get("search_key") or {}).get("model") == key["model"]


def _discard(out: Path) -> None:
    for f in (META, FAISS, SOURCES):
        (out / f).unlink(missing_ok=True)
    shutil.rmtree(out / EMB, ignore_errors=True)


def _prepare(cfg: IndexConfig, stores, enc, dim: int, progress: Progress) -> tuple[Store, np.ndarray]:
    out = Path(cfg.out)
    key = source_key(stores, enc)
    src = done_rows(stores)
    if (out / EMB).exists() and cfg.resume:
        with Store.open(out / EMB, kind="embeddings") as old:
            stale = (json.loads(json.dumps(old.meta.get("search_key"))) != json.loads(json.dumps(key))
                     and _stale_only(old, stores, key))
        if stale:
            # a stale index (its stores were rewritten): nothing in it can be reused, so --resume rebuilds
            progress.note(f"{out}: its stores changed since it was built; rebuilding it")
            _discard(out)
    if not (out / SOURCES).exists():
        atomic.write_with(out / SOURCES, lambda p: _save_npy(p, src))
    if not (out / EMB).exists():
        _create_embeddings(out / EMB, stores, src, dim, key, cfg, enc)
    emb = Store.open(out / EMB, mode="r+", kind="embeddings")
    old = np.load(out / SOURCES, allow_pickle=False)
    if json.loads(json.dumps(emb.meta.get("search_key"))) != json.loads(json.dumps(key)) or not np.array_equal(old, src):
        raise UsageError(f"{out}: holds embeddings of other stores or another model, so it cannot be resumed",
                         hint="pass --overwrite to rebuild it, or choose another --out")
    if emb.dim != dim:
        raise DimensionMismatch(f"{out / EMB}: {emb.dim}-d embeddings, but this run makes {dim}-d",
                                hint="pass --overwrite to rebuild")
    return emb, src


def _embed(cfg, stores, enc, emb: Store, src: np.ndarray, share: tuple[int, int], progress: Progress,
           halt=lambda: False) -> int:
    """Embed the pending blocks of this share, until `halt()` (Ctrl-C) between two blocks. Returns rows embedded."""
    i, n = share
    blocks = list(emb.blocks(max(emb.chunk_rows, (cfg.batch_rows // emb.chunk_rows) * emb.chunk_rows)))
    mine = [blocks[k] for k in np.array_split(np.arange(len(blocks)), n)[i]] if blocks else []
    status = emb.status()
    todo = [(a, b) for a, b in mine if (status[a:b] != DONE).any()]
    progress.start("embed", sum(b - a for a, b in mine), done=sum(b - a for a, b in mine) - sum(b - a for a, b in todo),
                   unit="clips")
    for a, b in todo:
        if halt():
            break
        vec = embed_block(stores, src[a:b], enc)
        emb.write_rows(a, features=vec[:, None, :], status=DONE)
        progress.advance(b - a)
    return sum(b - a for a, b in todo)


# ------------------------------------------------------------------ faiss
def read_embeddings(emb: Store) -> np.ndarray:
    """[N, d] float32 (one copy)."""
    x = np.empty((emb.n_rows, emb.dim), np.float32)
    for a, b in emb.blocks(65536):
        x[a:b] = emb.features(slice(a, b))[:, 0]
    return x


def build_faiss(cfg: IndexConfig, x: np.ndarray, progress: Progress, clock=None):
    """(index, plan, calibration) over x [N, d] unit vectors, chosen by mining's plan_index."""

    n, d = x.shape
    # A search index serves many queries over its life: plan as if every clip were queried once.
    plan = plan_index(cfg, n, n, d)
    progress.start(f"build {plan.kind}{plan.build_phases}", plan.passes * n, unit="clips")
    index = new_index(plan, d, cfg.seed)
    if plan.kind == "ivf":
        rng = np.random.default_rng(cfg.seed)
        train = np.sort(rng.choice(n, min(n, plan.nlist * mining_config.IVF_TRAIN_PER_LIST), replace=False))
        index.train(x[train])
    if clock:
        clock.lap("train")
    for _ in add_blocks(index, lambda: (x[a:a + 65536] for a in range(0, n, 65536)), progress.advance):
        pass
    if clock:
        clock.lap("add")
    calib = {}
    if plan.kind == "ivf" and plan.calibrate:
        calib = calibrate(index, plan, x, cfg.recall, cfg.seed)
        if clock:
            clock.lap("calibrate")
    if plan.kind != "flat":
        set_search_params(index, plan)
    return index, plan, calib


def recall_at_k(found: np.ndarray, exact: np.ndarray) -> float:
    """Mean |found ∩ exact| / k over rows of two [q, k] id arrays."""
    k = exact.shape[1]
    return float(np.mean([len(set(f) & set(e)) / k for f, e in zip(found.tolist(), exact.tolist())]))


def calibrate(index, plan, x: np.ndarray, target: float, seed: int) -> dict:
    """Smallest power-of-two nprobe whose recall@10 against an exact scan reaches target (index vectors as queries)."""
    import faiss

    rng = np.random.default_rng(seed + 1)
    q = x[np.sort(rng.choice(len(x), min(len(x), CALIBRATION_QUERIES), replace=False))]
    k = min(CALIBRATION_K, len(x))
    _, exact = faiss.knn(q, x, k, faiss.METRIC_INNER_PRODUCT)
    ivf = faiss.extract_index_ivf(index)
    p = 1
    while True:
        ivf.nprobe = p
        _, found = index.search(q, k)
        rec = recall_at_k(found, exact)
        if rec >= target or p >= plan.nlist:
            plan.nprobe = p
            return {"target": target, f"recall@{k}": round(rec, 4), "queries": int(len(q)), "nprobe": p}
        p = min(2 * p, plan.nlist)


# ------------------------------------------------------------------ the stage
class _Clock:
    """Wall and process CPU seconds per phase: on a shared machine cpu_s shows the work, wall_s the wait."""

    def __init__(self):
        self.out, self.t = {}, (time.perf_counter(), time.process_time())

    def lap(self, phase: str) -> None:
        w, c = time.perf_counter(), time.process_time()
        self.out[phase] = {"wall_s": round(w - self.t[0], 2), "cpu_s": round(c - self.t[1], 2)}
        self.t = (w, c)


def _guard(cfg: IndexConfig, sharded: bool) -> None:
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file", hint="pass a directory path")
    holds = out.is_dir() and any((out / f).exists() for f in (META, EMB, SOURCES, FAISS))
    action = output_action(out, holds, what="a search index", overwrite=cfg.overwrite and not sharded,
                           resume=cfg.resume or sharded)
    if action is Action.REPLACE:
        _discard(out)
    if not sharded:
        (out / META).unlink(missing_ok=True)  # from here on, the index is incomplete until index.json is back


LOCK = ".lock"  # held by the run that builds the index (no --shard); a --shard I/N run holds .shard-I-of-N.lock


def _lock(out: Path, share: tuple[int, int]):
    """Hold the folder's lock for this run, or fail naming the process that holds it.

    Two builders in one folder would mix their files (index.json of one, sources.npy of the other);
    shards share the folder by design (disjoint blocks), so each holds its own lock, and a builder
    and a shard never run together."""
    from filelock import FileLock

    own = out / (LOCK if share[1] == 1 else f".shard-{share[0]}-of-{share[1]}.lock")
    others = [out / LOCK] if share[1] > 1 else sorted(out.glob(".shard-*-of-*.lock"))
    lock = FileLock(own)
    _acquire(lock, out)
    for f in others:  # held elsewhere now? (taken and let go at once)
        try:
            _acquire(FileLock(f), out)
            FileLock(f).release()
        except BaseException:
            lock.release()
            raise
    return lock


def _acquire(lock, out: Path) -> None:
    from filelock import Timeout

    try:
        lock.acquire(timeout=0)
    except Timeout:
        found = holders(lock.lock_file)
        who = "; ".join(f"pid {pid}: {cmd}" for pid, cmd, *_ in found[:2]) or "pid not found: another user or machine"
        stop = f"or stop it (kill {found[0][0]})" if found else "or stop it"
        raise UsageError(f"{out}: another `rosetta index` is writing this index ({who})",
                         hint=f"wait for it to finish, {stop}, then rerun with --resume") from None


def run(cfg: IndexConfig, progress: Progress = SILENT) -> IndexResult:
    """Embed the stores' done rows into cfg.out and (unless sharded) build and publish the faiss index."""
    cfg.check()
    t0 = time.perf_counter()
    share = parse_shard(cfg.shard)
    if cfg.overwrite and share[1] > 1:
        raise UsageError("--overwrite cannot be combined with --shard", hint="delete INDEX_DIR first, then start the shards")
    stores = open_sources(cfg.stores)
    enc = _load_model(cfg, stores[0])
    dim = enc.dim if enc is not None else stores[0].dim
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file", hint="pass a directory path")
    out.mkdir(parents=True, exist_ok=True)
    lock = _lock(out, share)
    try:
        # the first Ctrl-C stops between two blocks (zarr's writes are never cut), keeping every block done
        with StopAtStep() as ctrl_c:
            return _run_locked(cfg, stores, enc, dim, share, t0, progress, halt=lambda: ctrl_c.requested)
    except KeyboardInterrupt:
        raise _interrupted(out) from None
    finally:
        lock.release()


def _interrupted(out: Path):
    done = 0
    if (out / EMB).exists():
        with Store.open(out / EMB, kind="embeddings") as emb:
            done, n = int((emb.status() == DONE).sum()), emb.n_rows
        kept = f"{done} of {n} clips embedded are kept"
    else:
        kept = "nothing was embedded yet"
    return Interrupted(f"{out}: index interrupted; {kept}", hint="rerun the same command with --resume to continue")


def _run_locked(cfg: IndexConfig, stores, enc, dim: int, share, t0: float, progress: Progress,
                halt=lambda: False) -> IndexResult:
    import resource

    _guard(cfg, share[1] > 1)
    clock = _Clock()
    emb, src = _prepare(cfg, stores, enc, dim, progress)
    if halt():
        raise KeyboardInterrupt
    if share[1] > 1 and (emb.status() != DONE).any():
        # A shard that will write rows makes the index incomplete. One on a complete index (same inputs,
        # every row done: _prepare refused any other) writes nothing, so the served index stays served.
        (Path(cfg.out) / META).unlink(missing_ok=True)
    embedded = _embed(cfg, stores, enc, emb, src, share, progress, halt)
    if halt():
        raise KeyboardInterrupt
    clock.lap("embed")
    space = "model" if enc is not None else "frozen"
    skipped = sum(s.n_rows for s in stores) - len(src)
    if share[1] > 1:
        return IndexResult(str(cfg.out), len(src), embedded, dim, space, built=False, skipped=skipped,
                           seconds=time.perf_counter() - t0)
    emb.finalize()
    x = read_embeddings(emb)
    clock.lap("read")
    index, plan, calib = build_faiss(cfg, x, progress, clock)
    del x
    import faiss

    out = Path(cfg.out)
    atomic.write_with(out / FAISS, lambda p: faiss.write_index(index, p))
    clock.lap("write")

    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "status": "complete", "created": now_iso(),
            "command": command_line(), "config": to_jsonable(asdict(cfg)), "space": space, "dim": dim,
            "ntotal": int(index.ntotal), "stores": [source_entry(s) for s in stores], "model": model_entry(enc),
            "embeddings": {"path": EMB, "id": emb.id, "fingerprint": emb.fingerprint},
            "index": {**plan_meta(plan), "faiss": type(index).__name__}, "calibration": calib,
            "seconds": round(seconds, 2), "peak_rss_mb": round(peak, 1), "timings": clock.out}
    atomic.write_text(out / META, json.dumps(meta, indent=2))
    return IndexResult(str(out), len(src), embedded, dim, space, True, skipped, plan_meta(plan), calib,
                       round(seconds, 2), round(peak, 1), clock.out)


def _load_model(cfg: IndexConfig, store: Store):
    if not cfg.model:
        return None
    from rosetta_cli.runtime.dist import resolve_device

    # load_dual_encoder takes a torch device: "auto" must be resolved first
    enc = load_dual_encoder(cfg.model, device=resolve_device(cfg.device))
    if store.dim != enc.input_dim:
        raise DimensionMismatch(f"{store.path}: features are {store.dim}-d but {cfg.model} expects {enc.input_dim}-d",
                                hint="index stores made with the frozen encoder the model was trained on")
    return enc
