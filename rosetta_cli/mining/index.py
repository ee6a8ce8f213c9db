"""faiss indexes over the candidate vectors: choice (--index auto), build, cache, GPU, nprobe calibration.

Index ids are positions in the sorted array of candidate rows (done exo rows).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from filelock import FileLock, Timeout

from rosetta_cli.errors import UsageError
from rosetta_cli.mining import config
from rosetta_cli.mining.vectors import VectorSource, groups, sample_rows
from rosetta_cli.runtime import atomic
from rosetta_cli.mining.search import exact_topk


@dataclass
class IndexPlan:
    kind: str                 # flat | ivf | hnsw
    nlist: int | None = None
    nprobe: int | None = None  # ivf: lists probed; hnsw: efSearch
    hnsw_m: int | None = None
    calibrate: bool = False    # derive nprobe from a recall target
    reason: str = ""
    storage: str = "fp32"      # ivf: how the index stores the vectors, fp32 (IVF-Flat) or fp16 (IVF-SQ fp16)

    @property
    def passes(self) -> int:
        """Passes over the candidate vectors while building (IVF: assign, then add; see add_blocks)."""
        return 2 if self.kind == "ivf" else 1

    @property
    def build_phases(self) -> str:
        """What the build's progress bar counts, for its label."""
        return " (assign, add)" if self.passes > 1 else ""


def plan_index(cfg: config.MineConfig, n_q: int, n_c: int, dim: int) -> IndexPlan:
    """Resolve --index/--nlist/--nprobe into a concrete plan (rules in config.py)."""
    kind, reason = cfg.index, "--index " + cfg.index
    if kind == "auto":
        work = float(n_q) * n_c * dim
        small = n_c < config.IVF_MIN_CANDIDATES or work <= config.FLAT_MAX_WORK
        kind = "flat" if small else "ivf"
        reason = f"auto: n_query*n_cand*dim = {work:.3g} {'<=' if small else '>'} {config.FLAT_MAX_WORK:.0e}" + (
            f" or n_cand < {config.IVF_MIN_CANDIDATES}" if small else "")
    if kind == "flat":
        return IndexPlan("flat", reason=reason)
    if kind == "hnsw":
        return IndexPlan("hnsw", nprobe=cfg.nprobe or config.HNSW_EF_SEARCH, hnsw_m=config.HNSW_M, reason=reason)
    nlist = cfg.nlist or max(1, min(int(round(4 * math.sqrt(n_c))), n_c // config.IVF_TRAIN_PER_LIST))
    if nlist > n_c:
        raise UsageError(f"--nlist {nlist}: more lists than candidates ({n_c})", hint="use a smaller --nlist or --index flat")
    nprobe = min(cfg.nprobe, nlist) if cfg.nprobe else None
    storage = "fp16" if float(n_c) * dim * 4 > config.IVF_FP32_MAX_BYTES else "fp32"
    if storage == "fp16":
        reason += f"; vectors stored as fp16 ({n_c * dim * 4 / 2**30:.1f} GB in fp32 > {config.IVF_FP32_MAX_BYTES / 2**30:.0f} GB)"
    return IndexPlan("ivf", nlist=nlist, nprobe=nprobe, calibrate=nprobe is None, reason=reason, storage=storage)


def new_index(plan: IndexPlan, d: int, seed: int):
    """An empty inner-product faiss index of plan's kind over d-dim vectors (IVF still to be trained)."""
    import faiss

    if plan.kind == "flat":
        return faiss.IndexFlatIP(d)
    if plan.kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, plan.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = config.HNSW_EF_CONSTRUCTION
        return index
    if plan.storage == "fp16":
        index = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(d), d, plan.nlist, faiss.ScalarQuantizer.QT_fp16,
                                              faiss.METRIC_INNER_PRODUCT)
        index.by_residual = False  # fp16 of the vector itself: no per-list decoding work, same precision
    else:
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, plan.nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.niter, index.cp.seed, index.cp.spherical = config.IVF_KMEANS_ITERS, seed, True
    return index


def build_index(plan: IndexPlan, src: VectorSource, c_rows: np.ndarray, seed: int, tick=None,
                probe: np.ndarray | None = None):
    """Build a CPU index over the candidate vectors of c_rows (added block by block; IVF: two passes, see add_blocks).

    probe [q, d] (index space): also find each probe's exact top-1 among the same blocks as they are added
    (one GEMM per block, no second pass over the stores). → (index, (scores [q, 1], positions [q, 1]) or None).
    tick(rows) is called plan.passes × len(c_rows) rows in all.
    """

    index = new_index(plan, src.dim, seed)
    if plan.kind == "ivf":
        train = sample_rows(c_rows, src.span, plan.nlist * config.IVF_TRAIN_PER_LIST, seed)
        index.train(src.vectors(train))
    added = add_blocks(index, lambda: (src.vectors(part) for _, part in groups(c_rows, src.span)), tick)
    if probe is None:
        for _ in added:
            pass
        return index, None
    return index, exact_topk(probe, added, 1)


def add_blocks(index, blocks, tick=None):
    """Add the vectors of `blocks()` (a callable giving a fresh iterator of [b, d] arrays) to `index`;
    a generator that yields each block [b, d] float32 once it is added. Ids are positions, in order.

    IVF indexes take two passes: the first assigns every vector to its list (the coarse quantizer's
    top-1, what index.add computes), each list is then sized for its final count, and the second pass
    adds the blocks with those assignments. faiss grows a list by std::vector resizes (doubling and
    copying), and the freed copies stay in the heap: adding 300k x 512 fp16 vectors in 16k blocks
    raised RSS by 453 MB for 288 MB of codes, and by 277 MB when sized first. The index is identical
    (same lists, same order within each list); the price is reading the vectors twice.
    """
    ivf = _ivf_of(index)
    assign = None
    if ivf is not None:
        assign = []
        for x in blocks():
            assign.append(ivf.quantizer.search(np.ascontiguousarray(x, dtype=np.float32), 1)[1].ravel())
            if tick:
                tick(len(x))
        assign = np.concatenate(assign) if assign else np.zeros(0, np.int64)
        reserve_lists(ivf, np.bincount(assign, minlength=ivf.nlist))
    off = 0
    for x in blocks():
        x = np.ascontiguousarray(x, dtype=np.float32)
        if assign is None:
            index.add(x)
        else:
            from faiss.contrib.ivf_tools import add_preassigned

            add_preassigned(ivf, x, np.ascontiguousarray(assign[off:off + len(x)], dtype=np.int64))
        off += len(x)
        if tick:
            tick(len(x))
        yield x


def _ivf_of(index):
    """The IndexIVF inside `index` (None for flat / HNSW)."""
    import faiss

    try:
        return faiss.extract_index_ivf(index)
    except RuntimeError:
        return None


def reserve_lists(ivf, counts: np.ndarray) -> None:
    """Give each inverted list of `ivf` room for counts[l] more entries, so adding them never reallocates."""
    import faiss

    lists = faiss.downcast_InvertedLists(ivf.invlists)
    for l in np.flatnonzero(counts):
        size = lists.list_size(int(l))
        lists.resize(int(l), size + int(counts[l]))   # one allocation of the final size
        lists.resize(int(l), size)                    # back to its entries; std::vector keeps the capacity


def set_search_params(index, plan: IndexPlan) -> None:
    import faiss

    if plan.kind == "ivf":
        try:
            faiss.extract_index_ivf(index).nprobe = plan.nprobe
        except (RuntimeError, TypeError):  # a GPU IVF index is no IndexIVF; it has its own nprobe
            index.nprobe = plan.nprobe
    elif plan.kind == "hnsw":
        index.hnsw.efSearch = plan.nprobe


def calibrate_nprobe(index, plan: IndexPlan, xq: np.ndarray, target: float = config.AUTO_RECALL_TARGET,
                     reference: tuple | None = None) -> dict:
    """Smallest power-of-two nprobe whose top-1 agrees with the reference on xq for `target` of the queries.

    reference: (scores, positions) [q, 1] of exact search in the index space, found while the index was built
    (build_index's probe). Without it (an index reused from --index-cache) the reference is the same index
    searched over all its lists, which scans every vector once per query: at 1.25M x 1,664 dims that took
    over 26 minutes on 2 cores, against seconds for the GEMM. The run's recall check (run._recall) still
    measures the result against exact full-space search.
    """
    ivf = __import__("faiss").extract_index_ivf(index)
    if reference is None:
        ivf.nprobe = plan.nlist
        De, Ie = index.search(xq, 1)
        kind = "all lists of the same index"
    else:
        De, Ie = reference
        kind = "exact search in the index space"
    p = 1
    while p < plan.nlist:
        ivf.nprobe = p
        D, I = index.search(xq, 1)
        agree = float(np.mean((I[:, 0] == Ie[:, 0]) | (D[:, 0] >= De[:, 0])))  # an equal score agrees
        if agree >= target:
            break
        p = min(2 * p, plan.nlist)
    plan.nprobe = p
    return {"target": target, "nprobe": p, "queries": int(len(xq)), "reference": kind}


def to_device(index, plan: IndexPlan, device: str):
    """Move the index to a GPU when faiss has GPU support and --device allows. Returns (index, 'cpu'|'cuda:N')."""
    import faiss

    ngpu = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
    if device == "cpu" or (device == "auto" and ngpu == 0):
        return index, "cpu"
    if ngpu == 0:
        raise UsageError("--device cuda: this faiss build has no GPU support or sees no GPU",
                         hint="pip uninstall faiss-cpu && pip install 'rosetta-cli[gpu]' (see README, GPU), or --device cpu")
    if plan.kind == "hnsw":
        return index, "cpu"  # faiss has no GPU HNSW
    gpu = int(os.environ.get("LOCAL_RANK", "0")) % ngpu
    res = faiss.StandardGpuResources()
    gindex = faiss.index_cpu_to_gpu(res, gpu, index)
    gindex.rosetta_res = res  # keep the resources alive as long as the index
    return gindex, f"cuda:{gpu}"


# ---------------------------------------------------------------- cache (--index-cache)
def cache_key(exo, src: VectorSource, plan: IndexPlan, pca_dim: int | None, seed: int, c_rows: np.ndarray) -> dict:
    """What the cached index depends on: the exo store's content, the candidate vector recipe and the build params."""
    return {"exo_id": exo.id, "exo_fingerprint": exo.fingerprint, "text_weight": src.w,
            "candidates": int(len(c_rows)), "rows_hash": _rows_hash(c_rows),
            "pca": pca_dim, "kind": plan.kind, "nlist": plan.nlist,
            "hnsw_m": plan.hnsw_m, "seed": seed, "storage": plan.storage}


def _rows_hash(rows: np.ndarray) -> str:
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(rows, dtype=np.int64).tobytes()).hexdigest()[:16]


def _read_sidecar(path: Path) -> dict | None:
    try:
        return json.loads(Path(f"{path}.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None


def cache_matches(path: Path, key: dict) -> bool:
    meta = _read_sidecar(path)
    return bool(meta) and path.exists() and meta.get("key") == json.loads(json.dumps(key))


def load_cached(path: Path, key: dict):
    """(index, projection or None, extra dict) if PATH and its sidecar PATH.json match key, else None."""
    if not cache_matches(path, key):
        return None
    import faiss

    meta = _read_sidecar(path)
    proj = np.load(f"{path}.pca.npy") if meta.get("has_pca") else None
    return faiss.read_index(str(path)), proj, meta.get("extra") or {}


def save_cached(path: Path, key: dict, index, proj: np.ndarray | None, extra: dict) -> None:
    """Write index, projection and sidecar JSON atomically (runtime.atomic; the sidecar last, so it vouches)."""
    import faiss

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_with(path, lambda tmp: faiss.write_index(index, tmp))
    if proj is not None:
        def save_proj(tmp: str) -> None:
            with open(tmp, "wb") as f:  # a file object: np.save would append ".npy" to a name
                np.save(f, proj)
        atomic.write_with(Path(f"{path}.pca.npy"), save_proj)
    summary = {"ntotal": int(index.ntotal), "d": int(index.d)}
    atomic.write_text(Path(f"{path}.json"), json.dumps({"key": key, "has_pca": proj is not None, "index": summary,
                                                        "extra": extra}, indent=2))


class CacheLock:
    """Exclusive build lock PATH.lock, so that shards sharing --index-cache build the index once.

    A filelock.FileLock (an OS lock on the file, fcntl on Unix): the OS drops it when its holder dies,
    so a killed builder never leaves a lock to take over by hand. Keep the CacheLock referenced while
    building: a collected FileLock releases its lock."""

    def __init__(self, path: Path, poll_s: float = 2.0):
        self.lock, self.poll_s = FileLock(f"{path}.lock"), poll_s

    @property
    def held(self) -> bool:
        return self.lock.is_locked

    def acquire(self, ready) -> bool:
        """True: we hold the lock (build). False: `ready()` became true while another process built it."""
        Path(self.lock.lock_file).parent.mkdir(parents=True, exist_ok=True)
        while True:
            try:
                self.lock.acquire(timeout=self.poll_s)
            except Timeout:
                if ready():
                    return False
                continue
            if ready():  # built by the holder we waited for: nothing left to build
                self.lock.release()
                return False
            return True

    def release(self) -> None:
        if self.lock.is_locked:
            self.lock.release()


def plan_meta(plan: IndexPlan) -> dict:
    return {k: v for k, v in asdict(plan).items() if v is not None and v != ""}
