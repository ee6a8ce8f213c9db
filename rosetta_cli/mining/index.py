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
    storage: str = "fp32"      # how the index stores the vectors: fp32, or fp16 (IVF-SQ fp16; GPU flat float16)
    device: str = "cpu"        # cpu | cuda: where the index is built and searched
    gpus: int = 0              # cuda: GPUs the index is spread over (GPU gpu0 .. gpu0+gpus-1)
    gpu0: int = 0              # cuda: first GPU (torchrun: LOCAL_RANK, one GPU per rank)
    block_rows: int | None = None  # flat on cuda: candidate rows per GPU block (search.ShardedFlat)

    @property
    def passes(self) -> int:
        """Passes over the candidate vectors while building (IVF on the CPU: assign, then add; see add_blocks).
        The passes run over candidates pooled in memory once (pool_blocks): the stores are read once."""
        return 2 if self.kind == "ivf" and self.device == "cpu" else 1

    @property
    def build_phases(self) -> str:
        """What the build's progress bar counts, for its label."""
        return " (assign, add)" if self.passes > 1 else ""


@dataclass(frozen=True)
class GpuInfo:
    """What faiss and the machine offer: faiss-gpu present, visible GPUs, the smallest GPU's memory (bytes)."""

    faiss_has_gpu: bool
    n_gpus: int
    gpu_mem: int


def gpu_info() -> GpuInfo:
    """Probe faiss (faiss-gpu has StandardGpuResources) and torch for the GPUs' memory."""
    import faiss

    has = hasattr(faiss, "StandardGpuResources")
    n = int(faiss.get_num_gpus()) if has else 0
    mem = 0
    if n:
        import torch

        mem = min(torch.cuda.get_device_properties(i).total_memory for i in range(n)) if torch.cuda.is_available() \
            else 16 << 30  # faiss sees GPUs torch does not (a CPU torch build): assume a 16 GB card
    return GpuInfo(has, n, mem)


def plan_index(cfg, n_q: int, n_c: int, dim: int) -> IndexPlan:
    """The CPU plan for --index/--nlist/--nprobe (rules in config.py); `rosetta index` uses it as is."""
    return _cpu_plan(cfg.index, cfg.nlist, cfg.nprobe, n_q, n_c, dim)


def plan_for(cfg: config.MineConfig, n_q: int, n_c: int, dim: int) -> IndexPlan:
    """The mining run's plan: choose_plan with this machine's faiss and GPUs. Under torchrun (WORLD_SIZE > 1)
    each rank takes one GPU, LOCAL_RANK's, as its shard of the queries already splits the work."""
    info = gpu_info() if cfg.device != "cpu" else GpuInfo(False, 0, 0)
    n_gpus, gpu0 = info.n_gpus, 0
    if n_gpus and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        n_gpus, gpu0 = 1, int(os.environ.get("LOCAL_RANK", "0")) % info.n_gpus
    plan = choose_plan(n_q, n_c, dim, cfg.device, n_gpus, info.gpu_mem, info.faiss_has_gpu, index=cfg.index,
                       nlist=cfg.nlist, nprobe=cfg.nprobe)
    plan.gpu0 = gpu0 if plan.device == "cuda" else 0
    return plan


def choose_plan(n_query: int, n_base: int, dim: int, device: str, n_gpus: int, gpu_mem: int, faiss_has_gpu: bool,
                index: str = "auto", nlist: int | None = None, nprobe: int | None = None) -> IndexPlan:
    """The index plan for n_query queries over n_base candidates of dim dims (pure: no faiss, no I/O).

    device cuda needs faiss-gpu and a GPU (else UsageError, exit 2, never a silent CPU run); auto uses
    them when present. On a GPU, auto (and flat) is exact flat search over fp16 vectors held in blocks of at
    most GPU_FLAT_BLOCK_BYTES, spread over the GPUs (search.ShardedFlat; exact, so no calibration).
    It needs the fp16 vectors to fit GPU_MEM_FRACTION of the GPUs' memory; otherwise auto takes IVF,
    whose k-means trains on the GPU and whose lists are sharded across the GPUs. HNSW has no GPU form.
    """
    if device == "cuda" and not faiss_has_gpu:
        raise UsageError("--device cuda: this faiss build has no GPU support (faiss-cpu is installed)",
                         hint="scripts/install.sh --cuda installs faiss-gpu in its place; or use --device cpu")
    if device == "cuda" and n_gpus < 1:
        raise UsageError("--device cuda: faiss-gpu sees no CUDA GPU",
                         hint="check nvidia-smi and CUDA_VISIBLE_DEVICES; or use --device cpu")
    on_gpu = device == "cuda" or (device == "auto" and faiss_has_gpu and n_gpus > 0 and index != "hnsw")
    if not on_gpu:
        return _cpu_plan(index, nlist, nprobe, n_query, n_base, dim)
    if index == "hnsw":
        raise UsageError("--index hnsw --device cuda: faiss has no GPU HNSW",
                         hint="use --index auto or flat (exact on the GPU), ivf, or --device cpu for hnsw")
    fp16_bytes = float(n_base) * dim * 2
    room = config.GPU_MEM_FRACTION * gpu_mem * n_gpus
    if index == "flat" or (index == "auto" and fp16_bytes <= room):
        if fp16_bytes > room:
            raise UsageError(f"--index flat --device cuda: {fp16_bytes / 2**30:.1f} GiB of fp16 candidates exceed "
                             f"{room / 2**30:.1f} GiB of GPU memory", hint="use --index ivf, --pca, or --device cpu")
        per_block = max(1, int(min(config.GPU_FLAT_BLOCK_BYTES, config.GPU_MEM_FRACTION * gpu_mem) // (dim * 2)))
        block = max(1, min(per_block, -(-n_base // n_gpus)))
        blocks = -(-n_base // block)
        reason = (f"{'auto' if index == 'auto' else '--index flat'} on cuda: exact fp16 flat search, {blocks} block(s) "
                  f"of <= {block} rows ({block * dim * 2 / 2**30:.2f} GiB) on {min(n_gpus, blocks)} GPU(s)")
        return IndexPlan("flat", reason=reason, storage="fp16", device="cuda", gpus=min(n_gpus, blocks),
                         block_rows=block)
    plan = _cpu_plan("ivf", nlist, nprobe, n_query, n_base, dim)
    plan.reason = ("auto on cuda: fp16 candidates exceed GPU memory; IVF" if index == "auto" else "--index ivf") + \
        f" on cuda (k-means on the GPU, lists sharded over {n_gpus} GPU(s))" + plan.reason[len("--index ivf"):]
    plan.device, plan.gpus = "cuda", n_gpus
    return plan


def _cpu_plan(kind: str, nlist: int | None, nprobe: int | None, n_q: int, n_c: int, dim: int) -> IndexPlan:
    """Resolve --index/--nlist/--nprobe into a CPU plan (rules in config.py)."""
    reason = "--index " + kind
    if kind == "auto":
        work = float(n_q) * n_c * dim
        small = n_c < config.IVF_MIN_CANDIDATES or work <= config.FLAT_MAX_WORK
        kind = "flat" if small else "ivf"
        reason = f"auto: n_query*n_cand*dim = {work:.3g} {'<=' if small else '>'} {config.FLAT_MAX_WORK:.0e}" + (
            f" or n_cand < {config.IVF_MIN_CANDIDATES}" if small else "")
    if kind == "flat":
        return IndexPlan("flat", reason=reason)
    if kind == "hnsw":
        return IndexPlan("hnsw", nprobe=nprobe or config.HNSW_EF_SEARCH, hnsw_m=config.HNSW_M, reason=reason)
    nlist = nlist or max(1, min(int(round(4 * math.sqrt(n_c))), n_c // config.IVF_TRAIN_PER_LIST))
    if nlist > n_c:
        raise UsageError(f"--nlist {nlist}: more lists than candidates ({n_c})", hint="use a smaller --nlist or --index flat")
    nprobe = min(nprobe, nlist) if nprobe else None
    storage = "fp16" if float(n_c) * dim * 4 > config.IVF_FP32_MAX_BYTES else "fp32"
    if storage == "fp16":
        reason += f"; vectors stored as fp16 ({n_c * dim * 4 / 2**30:.1f} GB in fp32 > {config.IVF_FP32_MAX_BYTES / 2**30:.0f} GB)"
    return IndexPlan("ivf", nlist=nlist, nprobe=nprobe, calibrate=nprobe is None, reason=reason, storage=storage)


def new_index(plan: IndexPlan, d: int, seed: int):
    """An empty inner-product faiss index of plan's kind over d-dim vectors (IVF still to be trained).

    flat with block_rows: a search.ShardedFlat (GPU blocks on cuda, IndexFlatIP blocks on the CPU).
    IVF on cuda: a CPU IVF whose k-means assigns with a GPU flat index (clustering_index); build_index
    moves it onto the GPUs once trained."""
    import faiss

    if plan.kind == "flat":
        if plan.block_rows:
            from rosetta_cli.mining.search import ShardedFlat

            gpus = list(range(plan.gpu0, plan.gpu0 + plan.gpus)) if plan.device == "cuda" else []
            return ShardedFlat(d, plan.block_rows, gpus)
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
    if plan.device == "cuda":
        index.clustering_index = kmeans_index(d, plan)
        index.rosetta_keep = index.clustering_index  # SWIG holds a bare pointer: keep the Python object alive
    return index


def kmeans_index(d: int, plan: IndexPlan):
    """The flat index k-means assigns its points with: replicated over the plan's GPUs (faiss-gpu)."""
    import faiss

    gpus = list(range(plan.gpu0, plan.gpu0 + plan.gpus))
    return faiss.index_cpu_to_gpus_list(faiss.IndexFlatIP(d), gpus=gpus)


def to_gpus(index, plan: IndexPlan):
    """A CPU IVF index copied onto the plan's GPUs, its lists sharded across them (one GPU: a plain copy)."""
    import faiss

    co = faiss.GpuMultipleClonerOptions()
    co.shard = True
    gindex = faiss.index_cpu_to_gpus_list(index, co=co, gpus=list(range(plan.gpu0, plan.gpu0 + plan.gpus)))
    gindex.rosetta_on_gpu = True
    return gindex


def pool_blocks(src: VectorSource, c_rows: np.ndarray, dtype) -> list[np.ndarray]:
    """The candidate vectors read (and clip-pooled) once, block by block: [b, d] arrays of dtype, in row order.

    IVF needs them up to three times (training sample, assign pass, add pass). dtype float16 where the index
    stores fp16 anyway (plan.storage): 4.2 GB at the paper's 1.25M x 1,664, the index's own size."""
    return [src.vectors(part).astype(dtype, copy=False) for _, part in groups(c_rows, src.span)]


def take(pool: list[np.ndarray], positions: np.ndarray) -> np.ndarray:
    """Rows at sorted positions of the pooled blocks, as one [n, d] float32 array (no copy of the pool)."""
    starts = np.cumsum([0] + [len(p) for p in pool])
    parts = [pool[b][positions[(positions >= starts[b]) & (positions < starts[b + 1])] - starts[b]]
             for b in range(len(pool))]
    return np.vstack(parts).astype(np.float32)


def build_index(plan: IndexPlan, src: VectorSource, c_rows: np.ndarray, seed: int, tick=None,
                probe: np.ndarray | None = None):
    """Build the plan's index over the candidate vectors of c_rows, reading each store row once.

    flat / hnsw: blocks are read and added in one pass. IVF: the vectors are pooled in memory once
    (pool_blocks), k-means trains on a sample of them (on the GPU for a cuda plan), and they are added
    (CPU: two passes over memory, see add_blocks; cuda: one pass onto the sharded GPU index).
    probe [q, d] (index space): also find each probe's exact top-1 among the same blocks as they are added
    (one GEMM per block, no second pass over the stores). → (index, (scores [q, 1], positions [q, 1]) or None).
    tick(rows) is called plan.passes × len(c_rows) rows in all.
    """

    index = new_index(plan, src.dim, seed)
    if plan.kind == "ivf":
        pool = pool_blocks(src, c_rows, np.float16 if plan.storage == "fp16" else np.float32)
        train = np.searchsorted(c_rows, sample_rows(c_rows, src.span, plan.nlist * config.IVF_TRAIN_PER_LIST, seed))
        index.train(take(pool, train))
        if plan.device == "cuda":
            index = to_gpus(index, plan)
        blocks = lambda: (p.astype(np.float32) for p in pool)
    else:
        blocks = lambda: (src.vectors(part) for _, part in groups(c_rows, src.span))
    added = add_blocks(index, blocks, tick)
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
    except (RuntimeError, TypeError):  # TypeError: no faiss index at all (search.ShardedFlat)
        return None


def reserve_lists(ivf, counts: np.ndarray) -> None:
    """Give each inverted list of `ivf` room for counts[l] more entries, so adding them never reallocates."""
    import faiss

    lists = faiss.downcast_InvertedLists(ivf.invlists)
    for l in np.flatnonzero(counts):
        size = lists.list_size(int(l))
        lists.resize(int(l), size + int(counts[l]))   # one allocation of the final size
        lists.resize(int(l), size)                    # back to its entries; std::vector keeps the capacity


def set_nprobe(index, nprobe: int) -> None:
    """nprobe of a CPU IVF index, or of faiss-gpu's (a GPU IVF is no IndexIVF; sharded, it is IndexShards)."""
    import faiss

    try:
        faiss.extract_index_ivf(index).nprobe = nprobe
    except (RuntimeError, TypeError):
        if hasattr(faiss, "GpuParameterSpace") and getattr(index, "rosetta_on_gpu", False):
            faiss.GpuParameterSpace().set_index_parameter(index, "nprobe", nprobe)
        else:
            index.nprobe = nprobe


def set_search_params(index, plan: IndexPlan) -> None:
    if plan.kind == "ivf":
        set_nprobe(index, plan.nprobe)
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
    if reference is None:
        set_nprobe(index, plan.nlist)
        De, Ie = index.search(xq, 1)
        kind = "all lists of the same index"
    else:
        De, Ie = reference
        kind = "exact search in the index space"
    p = 1
    while p < plan.nlist:
        set_nprobe(index, p)
        D, I = index.search(xq, 1)
        agree = float(np.mean((I[:, 0] == Ie[:, 0]) | (D[:, 0] >= De[:, 0])))  # an equal score agrees
        if agree >= target:
            break
        p = min(2 * p, plan.nlist)
    plan.nprobe = p
    return {"target": target, "nprobe": p, "queries": int(len(xq)), "reference": kind}


def to_device(index, plan: IndexPlan):
    """The index where the plan searches it → (index, 'cpu' | 'cuda:N' | 'cuda:N-M'). Built on the GPUs
    already (ShardedFlat, GPU IVF), it stays; a CPU index (from --index-cache) for a cuda plan is copied over."""
    if plan.device == "cpu":
        return index, "cpu"
    name = f"cuda:{plan.gpu0}" + (f"-{plan.gpu0 + plan.gpus - 1}" if plan.gpus > 1 else "")
    if getattr(index, "rosetta_on_gpu", False):
        return index, name
    return to_gpus(index, plan), name


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
    cpu = faiss.index_gpu_to_cpu(index) if getattr(index, "rosetta_on_gpu", False) else index
    atomic.write_with(path, lambda tmp: faiss.write_index(cpu, tmp))
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
