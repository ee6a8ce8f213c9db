"""The mining run: block-streamed, resumable and shardable; writes one pairs store.

Blocks. Query rows are cut into global blocks [b*S, (b+1)*S) with S = --block-rows
rounded up to the ego store's chunk size. Shard I/N takes the contiguous block range
[I*B/N, (I+1)*B/N) of the B blocks, so concatenating the shard outputs in shard
order (`rosetta store merge`) gives exactly the single-run table, which is ordered
by query_row, then rank.

Resume. Each finished block is saved as OUT.partial/block-NNNNNN.npz (atomic rename);
OUT.partial/run.json holds the run key (inputs' fingerprints and every parameter that
changes results). A rerun with the same key skips saved blocks; a different key
discards them. The partial directory is removed once OUT is written.

Memory: the index (+ the candidates' normalised narration embeddings for weights)
plus one query block.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from rosetta_cli.errors import UsageError
from rosetta_cli.mining import config as C
from rosetta_cli.mining import index as IX
from rosetta_cli.mining.search import exact_topk, random_candidates, recall_at, search_topk
from rosetta_cli.mining.vectors import Inputs, VectorSource, fit_pca, groups, normalized_text, open_inputs, \
    sample_rows, sources
from rosetta_cli.provenance import to_jsonable
from rosetta_cli.store import Store
from rosetta_cli.store import schema as S


GPU_MAX_K = 2048


class Reporter:
    """Progress/log sink; the CLI passes a Rich-backed one. Default: silent."""

    def log(self, msg: str) -> None:
        pass

    def task(self, desc: str, total: int):
        return lambda n: None


@dataclass
class MineResult:
    out: Path
    pairs: int
    queries: int
    candidates: int
    skipped: dict
    index: dict
    recall: dict | None
    seconds: dict
    resumed_blocks: int
    peak_rss_mb: float
    notes: list = field(default_factory=list)


@dataclass
class Engine:
    """What searching one block needs."""

    strategy: str
    k: int
    c_rows: np.ndarray
    qsrc: VectorSource | None
    csrc: VectorSource | None
    index: object = None
    exo_text: np.ndarray | None = None  # n(e_exo) [n_cand, Dt] for weights
    max_k: int | None = None            # faiss-gpu's largest k
    meta: dict = field(default_factory=dict)


def resolve_shard(shard: tuple[int, int] | None) -> tuple[int, int]:
    """--shard wins; otherwise torchrun's RANK/WORLD_SIZE; otherwise (0, 1)."""
    if shard and shard != (0, 1):
        return shard
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return (int(os.environ.get("RANK", "0")), world) if world > 1 else (0, 1)


def shard_output_path(out, i: int, n: int) -> Path:
    """OUT for a single run; OUT's stem + '.shard-III-of-NNN' + suffix for shard I of N."""
    out = Path(out)
    if n == 1:
        return out
    return out.with_name(f"{out.name[:-len(out.suffix)]}.shard-{i:03d}-of-{n:03d}{out.suffix}")


def _round_up(n: int, m: int) -> int:
    return max(m, -(-n // m) * m)


def mine(cfg: C.MineConfig, reporter: Reporter | None = None) -> MineResult:
    """Run stage 3 for cfg; see the module docstring for blocks, shards and resume."""
    rep = reporter or Reporter()
    if cfg.strategy not in C.STRATEGIES:
        raise UsageError(f"--strategy {cfg.strategy!r}: choose one of {', '.join(C.STRATEGIES)}")
    if cfg.index not in C.INDEX_KINDS or cfg.device not in C.DEVICES:
        raise UsageError(f"--index {cfg.index} / --device {cfg.device}: unknown value")
    if S.backend_for(cfg.out) is None:
        raise UsageError(f"--out {cfg.out}: a pairs store path must end in .zarr or .h5")
    cfg.shard = resolve_shard(cfg.shard)
    out = shard_output_path(cfg.out, *cfg.shard)
    if out.exists() and not cfg.overwrite:
        raise UsageError(f"{out}: already exists", hint="pass --overwrite to replace it, or choose another --out")
    inp = open_inputs(cfg)
    try:
        return _run(cfg, inp, out, rep)
    finally:
        inp.close()


def _check_sizes(cfg: C.MineConfig, inp: Inputs) -> None:
    n_c = len(inp.c_rows)
    if n_c == 0:
        raise UsageError(f"{inp.exo.path}: no candidates (0 done rows of {inp.exo.n_rows})",
                         hint="finish extraction of the exo store (rosetta extract resumes), then mine")
    if len(inp.q_rows) == 0:
        raise UsageError(f"{inp.ego.path}: no queries (0 rows done in every input)",
                         hint="finish extraction/translation of the ego store first")
    if not 1 <= cfg.topk <= n_c:
        raise UsageError(f"--topk {cfg.topk}: must be between 1 and the number of candidates ({n_c})")


def _run(cfg: C.MineConfig, inp: Inputs, out: Path, rep: Reporter) -> MineResult:
    t0, seconds = time.perf_counter(), {}
    _check_sizes(cfg, inp)
    for note in inp.notes:
        rep.log(note)
    span_q = _round_up(cfg.block_rows, inp.ego.chunk_rows)
    span_c = _round_up(cfg.block_rows, inp.exo.chunk_rows)
    i, n = cfg.shard
    n_blocks = -(-inp.ego.n_rows // span_q)
    mine_blocks = range(i * n_blocks // n, (i + 1) * n_blocks // n)
    lo, hi = mine_blocks.start * span_q, min(mine_blocks.stop * span_q, inp.ego.n_rows)
    my_rows = inp.q_rows[(inp.q_rows >= lo) & (inp.q_rows < hi)]
    partial = Partial(out, _run_key(cfg, inp, span_q))
    if partial.discarded:
        rep.log(f"{partial.dir}: left by a run with other inputs or parameters; starting afresh")
    pending = [b for b in mine_blocks if not partial.has(b)]
    engine = None
    if pending or (cfg.check_recall and cfg.strategy != "random"):
        engine = _prepare(cfg, inp, span_q, span_c, rep)
        partial.save_meta("index", engine.meta)
        seconds["prepare"] = round(time.perf_counter() - t0, 2)
    t1 = time.perf_counter()
    _search_blocks(engine, inp, pending, span_q, cfg.seed, partial, rep)
    seconds["search"] = round(time.perf_counter() - t1, 2)
    table = partial.load(mine_blocks)
    recall = _check_recall(cfg, engine, table, my_rows, rep) if cfg.check_recall else None
    seconds["recall"] = recall["seconds"] if recall else 0.0
    index_meta = partial.load_meta("index")
    t2 = time.perf_counter()
    attrs = _attrs(cfg, inp, index_meta, recall, my_rows, table, (lo, hi), span_q)
    _write(out, cfg, inp, table, attrs)
    partial.remove()
    seconds["write"] = round(time.perf_counter() - t2, 2)
    seconds["total"] = round(time.perf_counter() - t0, 2)
    return MineResult(out, len(table["query_row"]), len(my_rows), len(inp.c_rows), inp.skipped, index_meta, recall,
                      seconds, len(mine_blocks) - len(pending), _peak_rss_mb(), list(inp.notes))


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _run_key(cfg: C.MineConfig, inp: Inputs, span_q: int) -> dict:
    """Everything that changes the mined rows of a block (so that resumed blocks stay valid)."""
    c = to_jsonable(cfg)
    for drop in ("ego", "exo", "out", "translated", "index_cache", "check_recall", "overwrite", "block_rows"):
        c.pop(drop, None)
    fps = {r: s.fingerprint for r, s in (("ego", inp.ego), ("exo", inp.exo), ("translated", inp.translated)) if s}
    return {"config": c, "text_weight": inp.w, "span": span_q, "inputs": fps}


# ---------------------------------------------------------------- preparing the index
def _prepare(cfg: C.MineConfig, inp: Inputs, span_q: int, span_c: int, rep: Reporter) -> Engine:
    qsrc, csrc = sources(inp, span_q, span_c)
    eng = Engine(cfg.strategy, cfg.topk, inp.c_rows, qsrc, csrc)
    if cfg.strategy == "random":
        eng.meta = {"kind": "none (random)", "device": "cpu"}
    else:
        t = time.perf_counter()
        dim = cfg.pca or csrc.raw_dim
        plan = IX.plan_index(cfg, len(inp.q_rows), len(inp.c_rows), dim)
        rep.log(f"index: {plan.kind} ({plan.reason})")
        index, pca, cached = _load_or_build(cfg, inp, csrc, plan, rep)
        qsrc.proj = csrc.proj
        cal = None
        if plan.calibrate:
            xq = qsrc.vectors(sample_rows(inp.q_rows, inp.ego.chunk_rows, C.CALIBRATION_QUERIES, cfg.seed))
            cal = IX.calibrate_nprobe(index, plan, xq)
            rep.log(f"nprobe {plan.nprobe} (calibrated: recall@1 {cal['recall@1']} on {cal['queries']} queries)")
        eng.index, device = IX.to_device(index, plan, cfg.device)
        IX.set_search_params(eng.index, plan)
        eng.max_k = GPU_MAX_K if device.startswith("cuda") else None
        if eng.max_k and cfg.topk > eng.max_k:
            raise UsageError(f"--topk {cfg.topk}: faiss-gpu returns at most {GPU_MAX_K}", hint="use --device cpu")
        eng.meta = {**IX.plan_meta(plan), "device": device, "dim": int(csrc.dim), "pca": pca, "calibration": cal,
                    "from_cache": cached, "seconds": round(time.perf_counter() - t, 2)}
    if inp.has_text:
        dtype = np.float16 if len(inp.c_rows) * inp.exo.text_dim * 4 > (1 << 30) else np.float32
        eng.exo_text = normalized_text(inp.exo, inp.c_rows, span_c, dtype)
    return eng


def _fit_and_build(cfg, inp: Inputs, csrc: VectorSource, plan, rep: Reporter):
    pca = fit_pca(csrc, inp.c_rows, cfg.pca, cfg.seed) if cfg.pca else None
    if pca:
        rep.log(f"PCA {pca['from_dim']} → {pca['dim']} dims keeps {pca['energy']:.1%} of the energy")
    tick = rep.task(f"index {plan.kind}", len(inp.c_rows))
    return IX.build_index(plan, csrc, inp.c_rows, cfg.seed, tick), pca


def _load_or_build(cfg, inp: Inputs, csrc: VectorSource, plan, rep: Reporter):
    """(index, pca meta, from_cache). With --index-cache: reuse a matching cache or build it once (locked)."""
    if cfg.index_cache is None:
        return (*_fit_and_build(cfg, inp, csrc, plan, rep), False)
    path = Path(cfg.index_cache)
    key = IX.cache_key(inp.exo, csrc, plan, cfg.pca, cfg.seed, inp.c_rows)
    lock = IX.CacheLock(path)
    if IX.cache_matches(path, key) or not lock.acquire(lambda: IX.cache_matches(path, key)):
        index, csrc.proj, extra = IX.load_cached(path, key)
        rep.log(f"index: reused {path}")
        return index, extra.get("pca"), True
    try:
        if path.exists():
            rep.log(f"{path}: cached index does not match these inputs/parameters; rebuilding it")
        index, pca = _fit_and_build(cfg, inp, csrc, plan, rep)
        IX.save_cached(path, key, index, csrc.proj, {"pca": pca})
    finally:
        lock.release()
    return index, pca, False


# ---------------------------------------------------------------- searching
def _search_blocks(eng: Engine | None, inp: Inputs, blocks: list, span_q: int, seed: int, partial, rep) -> None:
    todo = [(b, inp.q_rows[(inp.q_rows >= b * span_q) & (inp.q_rows < (b + 1) * span_q)]) for b in blocks]
    tick = rep.task("mine", sum(len(r) for _, r in todo))
    for b, rows in todo:
        partial.save(b, _mine_block(eng, inp, b, rows, seed) if len(rows) else None)
        tick(len(rows))


def _mine_block(eng: Engine, inp: Inputs, b: int, rows: np.ndarray, seed: int) -> dict:
    """One query block → flat arrays (query_row, candidate_row, rank, score, weight), ordered by row then rank."""
    n_c, k = len(eng.c_rows), eng.k
    if eng.strategy == "random":
        pos = random_candidates(len(rows), n_c, k, seed, b)
        D = np.full(pos.shape, np.nan, np.float32)
    else:
        D, pos = search_topk(eng.index, eng.qsrc.vectors(rows), k, n_c, eng.max_k)
    valid = pos >= 0
    w = _weights(eng, inp, rows, pos)
    q = np.repeat(rows, k).reshape(-1, k)
    rank = np.broadcast_to(np.arange(k, dtype=np.int32) + C.RANK_BASE, pos.shape)
    cand = eng.c_rows[np.where(valid, pos, 0)]
    return {"query_row": q[valid], "candidate_row": cand[valid], "rank": rank[valid],
            "score": D[valid].astype(np.float32), "weight": w[valid]}


def _weights(eng: Engine, inp: Inputs, rows: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """cos(e_ego, e_exo) clipped to [0, 1] per (query, rank) [n, k]; 1.0 when a store has no text."""
    if eng.exo_text is None:
        return np.ones(pos.shape, np.float32)
    eq = normalized_text(inp.ego, rows, eng.qsrc.span if eng.qsrc else inp.ego.chunk_rows)
    ec = eng.exo_text[np.where(pos >= 0, pos, 0)].astype(np.float32)  # [n, k, Dt]
    return np.clip(np.einsum("nd,nkd->nk", eq, ec), 0.0, 1.0).astype(np.float32)


def _check_recall(cfg: C.MineConfig, eng: Engine | None, table: dict, rows: np.ndarray, rep: Reporter) -> dict | None:
    """recall@1 / recall@k of the mined top-k vs exact search in the full (un-projected) space on sampled queries."""
    if cfg.strategy == "random" or eng is None or len(rows) == 0:
        rep.log("--check-recall: not applicable to --strategy random")
        return None
    t = time.perf_counter()
    rng = np.random.default_rng([cfg.seed, 1])
    sample = np.sort(rng.choice(rows, size=min(cfg.check_recall, len(rows)), replace=False))
    xq = eng.qsrc.vectors(sample, project=False)
    blocks = (eng.csrc.vectors(p, project=False) for _, p in groups(eng.c_rows, eng.csrc.span))
    _, pos = exact_topk(xq, blocks, cfg.topk)
    approx = np.full((len(sample), cfg.topk), -1, np.int64)
    qr, rk = table["query_row"], table["rank"] - C.RANK_BASE
    sel = np.isin(qr, sample)
    approx[np.searchsorted(sample, qr[sel]), rk[sel]] = table["candidate_row"][sel]
    rec = recall_at(approx, eng.c_rows[pos])
    rec.update(space="full (exact, no PCA)", seconds=round(time.perf_counter() - t, 2))
    at_k = f", recall@{cfg.topk} {rec[f'recall@{cfg.topk}']:.4f}" if cfg.topk > 1 else ""
    rep.log(f"recall@1 {rec['recall@1']:.4f}{at_k} vs exact search on {rec['queries']} sampled queries")
    return rec


# ---------------------------------------------------------------- partial results and output
_COLS = ("query_row", "candidate_row", "rank", "score", "weight")
_DTYPES = {"query_row": np.int64, "candidate_row": np.int64, "rank": np.int32, "score": np.float32,
           "weight": np.float32}


class Partial:
    """OUT.partial/: run.json (key), block-NNNNNN.npz per finished block, <name>.json side data."""

    def __init__(self, out: Path, key: dict):
        self.dir = Path(f"{out}.partial")
        key = json.loads(json.dumps(key))
        run = self.dir / "run.json"
        self.discarded = self.dir.exists() and (not run.exists() or json.loads(run.read_text()) != key)
        if self.discarded:
            shutil.rmtree(self.dir)  # made by a different run: its blocks are not ours
        self.dir.mkdir(parents=True, exist_ok=True)
        if not run.exists():
            _atomic_write(run, json.dumps(key, indent=2))

    def _block(self, b: int) -> Path:
        return self.dir / f"block-{b:06d}.npz"

    def has(self, b: int) -> bool:
        return self._block(b).exists()

    def save(self, b: int, arrays: dict | None) -> None:
        arrays = arrays or {c: np.zeros(0, _DTYPES[c]) for c in _COLS}
        tmp = self.dir / f"block-{b:06d}.tmp{os.getpid()}.npz"
        np.savez(tmp, **arrays)
        os.replace(tmp, self._block(b))

    def load(self, blocks) -> dict:
        parts = []
        for b in blocks:
            with np.load(self._block(b)) as z:  # NpzFile keeps its file open until closed
                parts.append({c: z[c] for c in _COLS})
        return {c: np.concatenate([p[c] for p in parts] + [np.zeros(0, _DTYPES[c])]).astype(_DTYPES[c]) for c in _COLS}

    def save_meta(self, name: str, obj) -> None:
        _atomic_write(self.dir / f"{name}.json", json.dumps(to_jsonable(obj)))

    def load_meta(self, name: str):
        p = self.dir / f"{name}.json"
        return json.loads(p.read_text()) if p.exists() else None

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


_SCORE_DOC = {
    "rst": "(1-W)*cos(T(z_ego), z_exo) + W*cos(e_ego, e_exo)",
    "visual": "(1-W)*cos(z_ego, z_exo) + W*cos(e_ego, e_exo)",
    "text": "cos(e_ego, e_exo)",
    "random": "NaN (random pairs are not scored)",
}


def _attrs(cfg, inp: Inputs, index_meta, recall, my_rows, table, row_range, span_q) -> dict:
    score = _SCORE_DOC[cfg.strategy]
    if index_meta and index_meta.get("pca"):
        score += f" computed after PCA to {index_meta['pca']['dim']} dims (approximate)"
    counts = np.bincount(np.searchsorted(my_rows, table["query_row"]), minlength=len(my_rows)) if len(my_rows) else []
    return {"strategy": cfg.strategy, "topk": cfg.topk, "text_weight": inp.w, "rank_base": C.RANK_BASE,
            "tie_rule": C.TIE_RULE, "score": score,
            "weight": "cos(e_ego, e_exo) clipped to [0, 1]; 1.0 when a store has no narration embeddings",
            "index": index_meta, "recall": recall, "skipped": inp.skipped, "queries": int(len(my_rows)),
            "candidates": int(len(inp.c_rows)), "incomplete_queries": int(np.sum(np.asarray(counts) < cfg.topk)),
            "shard": list(cfg.shard), "query_row_range": [int(row_range[0]), int(row_range[1])],
            "block_rows": span_q, "seed": cfg.seed, "order": "query_row, then rank"}


def _write(out: Path, cfg, inp: Inputs, table: dict, attrs: dict) -> None:
    df = pd.DataFrame({c: table[c] for c in _COLS})
    df["query_clip_id"] = _clip_ids(inp.ego, df["query_row"].to_numpy())
    df["candidate_clip_id"] = _clip_ids(inp.exo, df["candidate_row"].to_numpy())
    store = Store.create_pairs(out, df[list(S.PAIR_COLUMNS)], attrs=attrs, config=cfg, overwrite=cfg.overwrite)
    try:
        for role, s in (("ego", inp.ego), ("exo", inp.exo), ("translated", inp.translated)):
            if s is not None:
                store.add_parent(role, s)
        store.finalize()
    finally:
        store.close()


def _clip_ids(store: Store, rows: np.ndarray) -> np.ndarray:
    if len(rows) == 0:
        return np.zeros(0, dtype=object)
    lo, hi = int(rows.min()), int(rows.max()) + 1
    return store.column("clip_id", slice(lo, hi))[rows - lo]
