"""The mining run: block-streamed, resumable and shardable; writes one pairs store.

Blocks. Query rows are cut into global blocks [b*S, (b+1)*S) with S = --block-rows
rounded up to the ego store's chunk size. Shard I/N takes the contiguous block range
[I*B/N, (I+1)*B/N) of the B blocks, so concatenating the shard outputs in shard
order (`rosetta store merge`) gives exactly the single-run table, which is ordered
by query_row, then rank.

Resume. Each finished block is saved as OUT.partial/block-NNNNNN.npz (atomic rename);
OUT.partial/run.json holds the run key (inputs' fingerprints and every parameter that
changes results). A rerun with the same key skips saved blocks; a different key
discards them (so does --no-resume). The partial directory is removed once OUT is written.
A finished OUT is replaced only with --overwrite (runtime.guard); the new store is written
beside it and renamed onto it.

Recall. Approximate search (IVF, HNSW, or any PCA) is checked by default: exact search in
the full space on 256 sampled queries (--check-recall N; 0: off) gives recall@1 / recall@k,
recorded in the store attrs and the summary, with a warning below 0.95. The nprobe
calibration is no such check: it compares nprobe with all lists of the same index, so it
always reaches its target at nprobe = nlist. Exact search (flat, no PCA) records 1.0.

Memory: the index (+ the candidates' normalised narration embeddings for weights)
plus one query block.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from rosetta_cli.errors import Interrupted, UsageError
from rosetta_cli.mining import config
from rosetta_cli.mining import index as mining_index
from rosetta_cli.mining.search import exact_topk, random_candidates, recall_at, search_topk
from rosetta_cli.mining.vectors import Inputs, VectorSource, fit_pca, groups, normalized_text, open_inputs, \
    sample_rows, sources
from rosetta_cli.provenance import to_jsonable
from rosetta_cli.runtime import atomic
from rosetta_cli.runtime.guard import Action, output_action
from rosetta_cli.runtime.progress import SILENT, Progress
from rosetta_cli.runtime.shard import parse_shard
from rosetta_cli.store import Store
from rosetta_cli.store import schema


GPU_MAX_K = 2048


@dataclass
class MineResult:
    """What `rosetta mine --json` prints: counts, the index used, the recall check, timings."""

    out: Path
    pairs: int
    queries: int
    candidates: int
    skipped: dict
    index: dict | None
    recall: dict | None     # the recall check (see _recall); None: off, or --strategy random
    seconds: dict
    resumed_blocks: int
    peak_rss_mb: float
    notes: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return to_jsonable(self)


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


def resolve_shard(shard: tuple[int, int]) -> tuple[int, int]:
    """--shard wins; otherwise torchrun's RANK/WORLD_SIZE; otherwise (0, 1)."""
    if shard != (0, 1):
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


def run(cfg: config.MineConfig, progress: Progress = SILENT) -> MineResult:
    """Run stage 3 for cfg; see the module docstring for blocks, shards, resume and the recall check."""
    cfg.check()
    shard = resolve_shard(parse_shard(cfg.shard))
    cfg = replace(cfg, shard=f"{shard[0]}/{shard[1]}")  # a copy: the recorded config names the shard it ran
    out = shard_output_path(cfg.out, *shard)
    # A finished OUT cannot be continued: replace it (--overwrite) or refuse. OUT.partial/ is resumed below.
    output_action(out, out.exists(), what="a pairs store", overwrite=cfg.overwrite, resumable=False)
    inp = open_inputs(cfg)
    try:
        return _run(cfg, shard, inp, out, progress)
    finally:
        inp.close()


def _check_sizes(cfg: config.MineConfig, inp: Inputs) -> None:
    n_c = len(inp.c_rows)
    if n_c == 0:
        raise UsageError(f"{inp.exo.path}: no candidates (0 done rows of {inp.exo.n_rows})",
                         hint="finish extraction of the exo store (rosetta extract resumes), then mine")
    if len(inp.q_rows) == 0:
        raise UsageError(f"{inp.ego.path}: no queries (0 rows done in every input)",
                         hint="finish extraction/translation of the ego store first")
    if not 1 <= cfg.topk <= n_c:
        raise UsageError(f"--topk {cfg.topk}: must be between 1 and the number of candidates ({n_c})")


def _run(cfg: config.MineConfig, shard: tuple[int, int], inp: Inputs, out: Path, progress: Progress) -> MineResult:
    t0, seconds = time.perf_counter(), {}
    _check_sizes(cfg, inp)
    for note in inp.notes:
        progress.note(note)
    span_q = _round_up(cfg.block_rows, inp.ego.chunk_rows)
    span_c = _round_up(cfg.block_rows, inp.exo.chunk_rows)
    i, n = shard
    n_blocks = -(-inp.ego.n_rows // span_q)
    mine_blocks = range(i * n_blocks // n, (i + 1) * n_blocks // n)
    lo, hi = mine_blocks.start * span_q, min(mine_blocks.stop * span_q, inp.ego.n_rows)
    my_rows = inp.q_rows[(inp.q_rows >= lo) & (inp.q_rows < hi)]
    partial = Partial.open(out, _run_key(cfg, shard, inp, span_q), cfg.resume, progress)
    pending = [b for b in mine_blocks if not partial.has(b)]
    if pending:  # a fully resumed run needs no index: its blocks and index meta are saved
        engine = _prepare(cfg, inp, span_q, span_c, progress)
        partial.save_meta("index", engine.meta)
        seconds["prepare"] = round(time.perf_counter() - t0, 2)
        t1 = time.perf_counter()
        try:
            _search_blocks(engine, inp, mine_blocks, pending, span_q, cfg.seed, partial, progress)
        except KeyboardInterrupt:
            kept = sum(partial.has(b) for b in mine_blocks)
            raise Interrupted(f"{out}: mine interrupted; {kept} of {len(mine_blocks)} query blocks are kept in "
                              f"{partial.dir}", hint="rerun the same command to resume") from None
        seconds["search"] = round(time.perf_counter() - t1, 2)
    else:
        seconds["search"] = 0.0
    table = partial.load(mine_blocks)
    index_meta = partial.load_meta("index")
    recall = _recall(cfg, inp, index_meta, table, my_rows, (span_q, span_c), progress)
    seconds["recall"] = recall["seconds"] if recall else 0.0
    notes = list(inp.notes) + ([recall["warning"]] if recall and recall.get("warning") else [])
    t2 = time.perf_counter()
    attrs = _attrs(cfg, shard, inp, index_meta, recall, my_rows, table, (lo, hi), span_q)
    _write(out, cfg, inp, table, attrs)
    partial.remove()
    seconds["write"] = round(time.perf_counter() - t2, 2)
    seconds["total"] = round(time.perf_counter() - t0, 2)
    return MineResult(out, len(table["query_row"]), len(my_rows), len(inp.c_rows), inp.skipped, index_meta, recall,
                      seconds, len(mine_blocks) - len(pending), _peak_rss_mb(), notes)


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _run_key(cfg: config.MineConfig, shard: tuple[int, int], inp: Inputs, span_q: int) -> dict:
    """Everything that changes the mined rows of a block (so that resumed blocks stay valid)."""
    c = to_jsonable(cfg)
    for drop in ("ego", "exo", "out", "translated", "index_cache", "check_recall", "overwrite", "resume",
                 "block_rows"):
        c.pop(drop, None)
    c["shard"] = list(shard)
    fps = {r: s.fingerprint for r, s in (("ego", inp.ego), ("exo", inp.exo), ("translated", inp.translated)) if s}
    return {"config": c, "text_weight": inp.w, "span": span_q, "inputs": fps}


# ---------------------------------------------------------------- preparing the index
def _prepare(cfg: config.MineConfig, inp: Inputs, span_q: int, span_c: int, progress: Progress) -> Engine:
    qsrc, csrc = sources(inp, span_q, span_c)
    eng = Engine(cfg.strategy, cfg.topk, inp.c_rows, qsrc, csrc)
    if cfg.strategy == "random":
        eng.meta = {"kind": "none (random)", "device": "cpu"}
    else:
        t = time.perf_counter()
        dim = cfg.pca or csrc.raw_dim
        plan = mining_index.plan_for(cfg, len(inp.q_rows), len(inp.c_rows), dim)
        progress.note(f"index: {plan.kind} ({plan.reason})")
        cal_rows = sample_rows(inp.q_rows, inp.ego.chunk_rows, config.CALIBRATION_QUERIES, cfg.seed) if plan.calibrate else None
        index, pca, cached, ref = _load_or_build(cfg, inp, csrc, qsrc, plan, cal_rows, progress)
        qsrc.proj = csrc.proj
        cal = None
        if plan.calibrate:
            cal = mining_index.calibrate_nprobe(index, plan, qsrc.vectors(cal_rows), reference=ref)
            progress.note(f"nprobe {plan.nprobe} of {plan.nlist} lists (calibrated on {cal['queries']} queries against "
                          f"{cal['reference']}; the recall check below measures it against exact search)")
        eng.index, device = mining_index.to_device(index, plan)
        mining_index.set_search_params(eng.index, plan)
        eng.max_k = GPU_MAX_K if device.startswith("cuda") else None
        if eng.max_k and cfg.topk > eng.max_k:
            raise UsageError(f"--topk {cfg.topk}: faiss-gpu returns at most {GPU_MAX_K}", hint="use --device cpu")
        eng.meta = {**mining_index.plan_meta(plan), "device": device, "dim": int(csrc.dim), "pca": pca, "calibration": cal,
                    "from_cache": cached, "seconds": round(time.perf_counter() - t, 2)}
    if inp.has_text:
        dtype = np.float16 if len(inp.c_rows) * inp.exo.text_dim * 4 > (1 << 30) else np.float32
        eng.exo_text = normalized_text(inp.exo, inp.c_rows, span_c, dtype)
    return eng


def _fit_and_build(cfg, inp: Inputs, csrc: VectorSource, qsrc: VectorSource, plan, cal_rows, progress: Progress):
    """(index, pca meta, exact top-1 of the calibration queries in index space or None)."""
    pca = fit_pca(csrc, inp.c_rows, cfg.pca, cfg.seed) if cfg.pca else None
    if pca:
        progress.note(f"PCA {pca['from_dim']} → {pca['dim']} dims keeps {pca['energy']:.1%} of the energy")
    probe = None
    if cal_rows is not None:
        qsrc.proj = csrc.proj
        probe = qsrc.vectors(cal_rows)
    progress.start(f"index {plan.kind}{plan.build_phases}", plan.passes * len(inp.c_rows), unit="rows")
    index, ref = mining_index.build_index(plan, csrc, inp.c_rows, cfg.seed, progress.advance, probe=probe)
    return index, pca, ref


def _load_or_build(cfg, inp: Inputs, csrc: VectorSource, qsrc: VectorSource, plan, cal_rows, progress: Progress):
    """(index, pca meta, from_cache, calibration reference). With --index-cache: reuse a matching cache or
    build it once (locked); a reused index has no calibration reference (calibrate_nprobe falls back)."""
    if cfg.index_cache is not None and plan.block_rows:
        progress.note("--index-cache: not used by exact flat search on the GPU (building it is one read of the store)")
    if cfg.index_cache is None or plan.block_rows:
        index, pca, ref = _fit_and_build(cfg, inp, csrc, qsrc, plan, cal_rows, progress)
        return index, pca, False, ref
    path = Path(cfg.index_cache)
    key = mining_index.cache_key(inp.exo, csrc, plan, cfg.pca, cfg.seed, inp.c_rows)
    lock = mining_index.CacheLock(path)
    if mining_index.cache_matches(path, key) or not lock.acquire(lambda: mining_index.cache_matches(path, key)):
        index, csrc.proj, extra = mining_index.load_cached(path, key)
        progress.note(f"index: reused {path}")
        return index, extra.get("pca"), True, None
    try:
        if path.exists():
            progress.note(f"{path}: cached index does not match these inputs/parameters; rebuilding it")
        index, pca, ref = _fit_and_build(cfg, inp, csrc, qsrc, plan, cal_rows, progress)
        mining_index.save_cached(path, key, index, csrc.proj, {"pca": pca})
    finally:
        lock.release()
    return index, pca, False, ref


# ---------------------------------------------------------------- searching
def _search_blocks(eng: Engine, inp: Inputs, blocks: range, pending: list, span_q: int, seed: int, partial,
                   progress: Progress) -> None:
    """Mine each pending block and save it to the partial directory (progress in query rows)."""
    def rows_of(b: int) -> np.ndarray:
        return inp.q_rows[(inp.q_rows >= b * span_q) & (inp.q_rows < (b + 1) * span_q)]

    todo = [(b, rows_of(b)) for b in pending]
    total = int(sum(len(rows_of(b)) for b in blocks))
    progress.start("mine", total, done=total - sum(len(r) for _, r in todo), unit="queries")
    for b, rows in todo:
        partial.save(b, _mine_block(eng, inp, b, rows, seed) if len(rows) else None)
        progress.advance(len(rows))


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
    rank = np.broadcast_to(np.arange(k, dtype=np.int32) + config.RANK_BASE, pos.shape)
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


def _is_exact(index_meta: dict) -> bool:
    """A flat index without PCA searches the very vectors the check would: its top-k is exact."""
    return index_meta.get("kind") == "flat" and not index_meta.get("pca")


def _recall(cfg: config.MineConfig, inp: Inputs, index_meta: dict | None, table: dict, rows: np.ndarray, spans,
            progress: Progress) -> dict | None:
    """The recall check: recall@1 / recall@k of the mined top-k vs exact search in the full space.

    Approximate search (IVF, HNSW or PCA) is checked on cfg.recall_queries sampled queries (default 256)
    and warns below RECALL_WARN_BELOW; exact search (flat, no PCA) records 1.0 without a check.
    None when the check is off (--check-recall 0) or does not apply (random, no queries).
    """
    n_check = cfg.recall_queries
    if n_check == 0 or len(rows) == 0 or index_meta is None:
        return None
    if cfg.strategy == "random":
        if cfg.check_recall:
            progress.note("--check-recall: not applicable to --strategy random")
        return None
    k = cfg.topk
    base = {"target": config.RECALL_WARN_BELOW}
    if _is_exact(index_meta):
        return {"check": "exact", "recall@1": 1.0, f"recall@{k}": 1.0, "queries": 0,
                "space": "exact search (flat index, no PCA): nothing to check", "seconds": 0.0, **base}
    t = time.perf_counter()
    progress.note(f"recall check: exact search on {min(n_check, len(rows))} sampled queries")
    rec = sampled_recall(inp, table, rows, n_check, k, cfg.seed, spans)
    rec = {"check": "sampled", **rec, "space": "full (exact, no PCA)", "seconds": round(time.perf_counter() - t, 2),
           **base}
    at_k = f", recall@{k} {rec[f'recall@{k}']:.4f}" if k > 1 else ""
    msg = f"recall@1 {rec['recall@1']:.4f}{at_k} vs exact search on {rec['queries']} sampled queries"
    if min(rec["recall@1"], rec[f"recall@{k}"]) < config.RECALL_WARN_BELOW:
        rec["warning"] = (f"warning: {msg}, below {config.RECALL_WARN_BELOW}: the pairs differ from exact search; "
                          "raise --nprobe, drop --pca, or use --index flat")
        msg = rec["warning"]
    progress.note(msg)
    return rec


def sampled_recall(inp: Inputs, table: dict, rows: np.ndarray, n: int, k: int, seed: int, spans) -> dict:
    """recall_at(mined, exact) on min(n, len(rows)) query rows sampled with seed (exact: streamed, no PCA)."""
    qsrc, csrc = sources(inp, *spans)
    rng = np.random.default_rng([seed, 1])
    sample = np.sort(rng.choice(rows, size=min(n, len(rows)), replace=False))
    xq = qsrc.vectors(sample, project=False)
    blocks = (csrc.vectors(p, project=False) for _, p in groups(inp.c_rows, csrc.span))
    _, pos = exact_topk(xq, blocks, k)
    approx = np.full((len(sample), k), -1, np.int64)
    qr, rk = table["query_row"], table["rank"] - config.RANK_BASE
    sel = np.isin(qr, sample)
    approx[np.searchsorted(sample, qr[sel]), rk[sel]] = table["candidate_row"][sel]
    return recall_at(approx, inp.c_rows[pos])


# ---------------------------------------------------------------- partial results and output
_COLS = ("query_row", "candidate_row", "rank", "score", "weight")
_DTYPES = {"query_row": np.int64, "candidate_row": np.int64, "rank": np.int32, "score": np.float32,
           "weight": np.float32}


class Partial:
    """OUT.partial/: run.json (key), block-NNNNNN.npz per finished block, <name>.json side data."""

    def __init__(self, out: Path, key: dict):
        self.dir, self.key = Path(f"{out}.partial"), json.loads(json.dumps(key))

    @classmethod
    def open(cls, out: Path, key: dict, resume: bool, progress: Progress) -> "Partial":
        """Resume OUT.partial/ when resume and its key matches; otherwise start it afresh."""
        p = cls(out, key)
        run = p.dir / "run.json"
        # resume=False is "replace what is there": exactly one of the two is set, so the guard never refuses
        action = output_action(p.dir, p.dir.exists(), what="a partial mining run", overwrite=not resume, resume=resume)
        if action is Action.REPLACE:
            progress.note(f"{p.dir}: discarded (--no-resume)")
        elif action is Action.RESUME and (not run.exists() or json.loads(run.read_text()) != p.key):
            progress.note(f"{p.dir}: left by a run with other inputs or parameters; starting afresh")
            action = Action.REPLACE
        if action is Action.REPLACE:
            shutil.rmtree(p.dir)  # its blocks are not this run's
        p.dir.mkdir(parents=True, exist_ok=True)
        if not run.exists():
            atomic.write_text(run, json.dumps(p.key, indent=2))
        return p

    def _block(self, b: int) -> Path:
        return self.dir / f"block-{b:06d}.npz"

    def has(self, b: int) -> bool:
        return self._block(b).exists()

    def save(self, b: int, arrays: dict | None) -> None:
        arrays = arrays or {c: np.zeros(0, _DTYPES[c]) for c in _COLS}

        def write(tmp: str) -> None:
            with open(tmp, "wb") as f:  # a file object: np.savez would append ".npz" to a name
                np.savez(f, **arrays)
        atomic.write_with(self._block(b), write)

    def load(self, blocks) -> dict:
        parts = []
        for b in blocks:
            with np.load(self._block(b)) as z:  # NpzFile keeps its file open until closed
                parts.append({c: z[c] for c in _COLS})
        return {c: np.concatenate([p[c] for p in parts] + [np.zeros(0, _DTYPES[c])]).astype(_DTYPES[c]) for c in _COLS}

    def save_meta(self, name: str, obj) -> None:
        atomic.write_text(self.dir / f"{name}.json", json.dumps(to_jsonable(obj)))

    def load_meta(self, name: str):
        p = self.dir / f"{name}.json"
        return json.loads(p.read_text()) if p.exists() else None

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


_SCORE_DOC = {
    "rst": "(1-W)*cos(T(z_ego), z_exo) + W*cos(e_ego, e_exo)",
    "visual": "(1-W)*cos(z_ego, z_exo) + W*cos(e_ego, e_exo)",
    "text": "cos(e_ego, e_exo)",
    "random": "NaN (random pairs are not scored)",
}


def _attrs(cfg, shard, inp: Inputs, index_meta, recall, my_rows, table, row_range, span_q) -> dict:
    score = _SCORE_DOC[cfg.strategy]
    if index_meta and index_meta.get("pca"):
        score += f" computed after PCA to {index_meta['pca']['dim']} dims (approximate)"
    counts = np.bincount(np.searchsorted(my_rows, table["query_row"]), minlength=len(my_rows)) if len(my_rows) else []
    return {"strategy": cfg.strategy, "topk": cfg.topk, "text_weight": inp.w, "rank_base": config.RANK_BASE,
            "tie_rule": config.TIE_RULE, "score": score,
            "weight": "cos(e_ego, e_exo) clipped to [0, 1]; 1.0 when a store has no narration embeddings",
            "index": index_meta, "recall": recall, "skipped": inp.skipped, "queries": int(len(my_rows)),
            "candidates": int(len(inp.c_rows)), "incomplete_queries": int(np.sum(np.asarray(counts) < cfg.topk)),
            "shard": list(shard), "query_row_range": [int(row_range[0]), int(row_range[1])],
            "block_rows": span_q, "seed": cfg.seed, "order": "query_row, then rank"}


def _write(out: Path, cfg, inp: Inputs, table: dict, attrs: dict) -> None:
    """Write the pairs store beside OUT, then rename it onto OUT: an old OUT survives a crash mid-write."""
    df = pd.DataFrame({c: table[c] for c in _COLS})
    df["query_clip_id"] = _clip_ids(inp.ego, df["query_row"].to_numpy())
    df["candidate_clip_id"] = _clip_ids(inp.exo, df["candidate_row"].to_numpy())
    tmp = out.with_name(f".{out.name[:-len(out.suffix)]}.tmp-{os.getpid()}{out.suffix}")  # keeps the backend suffix
    try:
        store = Store.create_pairs(tmp, df[list(schema.PAIR_COLUMNS)], attrs=attrs, config=cfg, overwrite=True)
        try:
            for role, s in (("ego", inp.ego), ("exo", inp.exo), ("translated", inp.translated)):
                if s is not None:
                    store.add_parent(role, s)
            store.finalize()
        finally:
            store.close()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)
        raise
    if tmp.is_dir():
        atomic.replace_dir(tmp, out)   # zarr: a directory
    else:
        os.replace(tmp, out)           # hdf5: one file, renamed over the old one atomically


def _clip_ids(store: Store, rows: np.ndarray) -> np.ndarray:
    if len(rows) == 0:
        return np.zeros(0, dtype=object)
    lo, hi = int(rows.min()), int(rows.max()) + 1
    return store.column("clip_id", slice(lo, hi))[rows - lo]
