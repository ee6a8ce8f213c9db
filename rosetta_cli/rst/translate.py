"""`rosetta translate`: an ego store → a store of kind "translations" (hallucinated exo features).

The output is row-aligned with the ego store: same clip table (labels in the same vocabulary order),
same chunking, the ego text embeddings copied (mining builds concat(T(z_ego), e_ego) from one store),
features [N, T_exo, D] (the exo shape the RST was trained on; [N, 1, D] for clip-level features).
Parents: role "ego" (the ego store) and role "rst" (id = fingerprint = sha256 of the RST weights).

Row i's noise is seeded from (seed, i, draw), so the output is the same for any --batch-size, --shard
split or number of torchrun ranks (up to GEMM rounding across batch shapes). Shards and ranks own whole
store chunks (writes never collide); inside a process, batches of --batch-size rows span chunks. A reader
thread prepares the next batches while this thread samples, and a writer thread writes each chunk once
all its rows are sampled, status after data: rerunning the command skips rows already done (resume).
Sampling runs under bf16 autocast on CUDA (--precision auto) and in fp32 on the CPU (bit-reproducible).
"""

from __future__ import annotations

import queue
import threading
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from rosetta_cli.errors import InputNotFound, PartialFailure, StoreError, UsageError
from rosetta_cli.rst.ckpt import Translator
from rosetta_cli.rst.config import TranslateConfig
from rosetta_cli.runtime import dist
from rosetta_cli.runtime.guard import Action, output_action
from rosetta_cli.runtime.progress import SILENT, Progress
from rosetta_cli.runtime.shard import parse_shard
from rosetta_cli.store.remote import as_path
from rosetta_cli.store import schema
from rosetta_cli.store.core import Store

PRECISIONS = ("auto", "fp32", "bf16")  # auto: bf16 on CUDA, fp32 elsewhere
QUEUE_BATCHES = 2   # batches the reader prepares ahead of the sampler
QUEUE_CHUNKS = 16   # sampled chunks waiting for the writer


@dataclass
class TranslateResult:
    """Counts of the output store after this process's blocks (status counts over all rows)."""

    store: str
    rows: int
    done: int
    failed: int
    pending: int
    translated_now: int
    seconds: float
    rows_per_s: float | None

    def to_dict(self) -> dict:
        return asdict(self)


def run(cfg: TranslateConfig, progress: Progress = SILENT, *, precision: str = "auto") -> TranslateResult:
    """Translate every done ego row of this process's blocks (resuming cfg.out when it matches).

    precision: auto | fp32 | bf16 (autocast of the denoiser; auto = bf16 on CUDA, fp32 on the CPU).
    """
    cfg.check()
    rst_dir, ego_path, out_path, overwrite = Path(cfg.rst), as_path(cfg.ego), as_path(cfg.out), cfg.overwrite
    info = dist.init_from_env(cfg.device)
    index, count = _shard(parse_shard(cfg.shard), info)
    precision = resolve_precision(precision, info.device)
    if Path(out_path).resolve() == Path(ego_path).resolve():
        raise UsageError(f"--out {out_path} is the --ego store", hint="write the translations to a new store")
    ego = Store.open(ego_path, kind="features")
    try:
        ego.require_view("ego", "--ego", hint="pass the ego store (the RST translates ego clips into the exo view)")
        tr = Translator(rst_dir, device=info.device)
        tr.check_input(ego.frames, ego.dim, str(ego_path))
        if index == 0:  # once, not once per shard or rank
            for note in tr.notes:
                progress.note(f"note: {note}")
        out = _open_output(out_path, ego, tr, cfg, rst_dir, overwrite, creator=index == 0, info=info,
                           precision=precision)
        t0 = time.perf_counter()
        blocks = list(out.blocks())[index::count]
        progress.start("translate", _todo(ego, out, blocks), unit="rows")
        done_now, bad = translate_blocks(tr, ego, out, blocks, cfg, precision, progress)
        dist.barrier(info)
        summary = _finish(out, done_now, bad, time.perf_counter() - t0, index, info)
        out.close()
        return summary
    finally:
        ego.close()
        dist.cleanup(info)


def _shard(shard: tuple[int, int], info) -> tuple[int, int]:
    if info.distributed:
        if shard != (0, 1):
            raise UsageError("--shard cannot be combined with torchrun", hint="torchrun ranks shard the rows already")
        return info.rank, info.world
    return shard


def resolve_precision(precision: str, device: str) -> str:
    """auto → bf16 on CUDA, fp32 elsewhere; fp32 and bf16 as given (bf16 on the CPU autocasts there too)."""
    if precision not in PRECISIONS:
        raise UsageError(f"--precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bf16" if str(device).startswith("cuda") else "fp32"
    return precision


def _autocast(device: str, precision: str):
    """bf16 autocast of the denoiser's matmuls on `device`; fp32 runs without autocast (bit-reproducible)."""
    if precision == "fp32":
        return nullcontext()
    import torch

    return torch.autocast("cuda" if str(device).startswith("cuda") else "cpu", dtype=torch.bfloat16)


def _open_output(out_path, ego, tr, cfg, rst_dir, overwrite, creator: bool, info, precision: str = "fp32"):
    """Create the output (the creator) or open it to resume / join; check it matches this run."""
    out_path = as_path(out_path)  # a Path, or an s3:// / gs:// URL
    ident = {"rst": tr.fingerprint, "ego": ego.id, **cfg.resume_identity()}
    if precision != "fp32":  # bf16 rows must not be mixed with fp32 ones; fp32 stores keep their old identity
        ident["precision"] = precision
    action = output_action(out_path, out_path.exists(), what="a store", overwrite=overwrite,
                           resume=not overwrite)  # translate resumes by default; --overwrite replaces
    if creator and action is not Action.RESUME:
        out = _create(out_path, ego, tr, cfg, rst_dir, ident, overwrite)
        out.close()
    dist.barrier(info)
    out = _wait_open(out_path, creator)
    if out.meta.get("translate") != ident:
        old = out.meta.get("translate") or {}
        differ = sorted(k for k in set(ident) | set(old) if ident.get(k) != old.get(k))
        out.close()
        raise UsageError(f"{out_path}: was written from another ego store, RST or sampling options "
                         f"(differs: {', '.join(differ)})",
                         hint="pass --overwrite to replace it, or choose another --out")
    return out


def _create(out_path, ego, tr, cfg, rst_dir, ident: dict, overwrite: bool):
    clips = ego.clips()
    clips.attrs["labels"], clips.attrs["skills"] = ego.labels, ego.skills  # keep the vocabulary order
    c = tr.cfg
    attrs = {"encoder": ego.meta.get("encoder"), "text_encoder": ego.meta.get("text_encoder"), "translate": ident,
             "rst": {"path": str(rst_dir), "fingerprint": tr.fingerprint, "model": c.model, "size": c.size}}
    out = Store.create(out_path, kind="translations", clips=clips, frames=c.exo_frames, dim=c.exo_dim,
                       text_dim=ego.text_dim, dtype=ego.dtype, chunk_rows=ego.chunk_rows, attrs=attrs,
                       config=cfg, overwrite=overwrite)
    out.add_parent("ego", ego)
    out.add_parent("rst", {"role": "rst", "id": tr.fingerprint, "fingerprint": tr.fingerprint,
                           "path": str(rst_dir), "kind": "rst"})
    return out


def _wait_open(out_path: Path, creator: bool, timeout_s: float = 120.0):
    """Non-creator shards (--shard I/N, I > 0) wait for shard 0 to create the store."""
    deadline = time.monotonic() + (0 if creator else timeout_s)
    while True:
        try:
            return Store.open(out_path, mode="r+", kind="translations")
        except (InputNotFound, StoreError):
            if creator:  # the creator's error is the real one (e.g. --out is another kind of store)
                raise
            if time.monotonic() > deadline:  # other shards wait for shard 0's store to appear
                raise UsageError(f"{out_path}: not created yet", hint="start shard 0 (it creates the store) first") from None
            time.sleep(1.0)


@dataclass
class _Chunk:
    """One store chunk [a, b) on its way from the reader, through the sampler, to the writer."""

    a: int
    feats: np.ndarray           # [n, T_exo, D] float32 output rows (rows done before are kept)
    status: np.ndarray          # [n] uint8
    errors: np.ndarray          # [n] object
    text: np.ndarray | None     # [n, Dt] the ego narrations, copied
    left: int                   # rows still to sample; the writer gets the chunk at 0


@dataclass
class _Batch:
    """Up to --batch-size ego rows from consecutive chunks: x [b, T_ego, D], rows [b] (global: the noise
    seeds), parts: (chunk, local indices [k]) in batch order, sum k = b."""

    x: np.ndarray
    rows: np.ndarray
    parts: list = field(default_factory=list)


def translate_blocks(tr, ego, out, blocks, cfg: TranslateConfig, precision: str = "fp32",
                     progress: Progress = SILENT) -> tuple[int, int]:
    """Translate the pending done ego rows of `blocks` in batches of cfg.batch_size. → (done, failed).

    The reader thread reads chunks and cuts their rows into batches (at most QUEUE_BATCHES ahead),
    this thread samples, the writer thread writes each chunk once all its rows are sampled. An error
    or Ctrl-C in any thread stops the others; chunks already sampled are still written.
    """
    batches: queue.Queue = queue.Queue(QUEUE_BATCHES)
    chunks: queue.Queue = queue.Queue(QUEUE_CHUNKS)
    stop = threading.Event()
    reader = _Thread(lambda: _read(ego, out, blocks, cfg.batch_size, batches, stop), "rosetta-translate-read")
    writer = _Thread(lambda: _write(out, chunks), "rosetta-translate-write")
    done, bad = 0, 0
    try:
        while (item := _get(batches, reader)) is not None:
            if isinstance(item, _Chunk):  # nothing to sample in it: mirrored statuses only
                _put(chunks, item, writer)
                continue
            n, nb, finished = _sample(tr, item, cfg, precision)
            done, bad = done + n, bad + nb
            progress.advance(len(item.rows))
            for ch in finished:
                _put(chunks, ch, writer)
    finally:
        stop.set()
        reader.join()
        if writer.is_alive():
            chunks.put(None)  # the writer finishes the chunks already queued, then stops
        writer.join()
    writer.raise_error()
    return done, bad


def _sample(tr, batch: _Batch, cfg: TranslateConfig, precision: str) -> tuple[int, int, list]:
    """Sample one batch into its chunks. → (done, failed, chunks now complete)."""
    with _autocast(tr.device, precision):
        y = tr.translate(batch.x, batch.rows, sampler=cfg.sampler, steps=cfg.sampling_steps, samples=cfg.samples,
                         guidance=cfg.guidance, seed=cfg.seed)                 # [b, T_exo, D] float32
    ok = np.isfinite(y).all(axis=(1, 2))
    finished, i = [], 0
    for ch, sel in batch.parts:
        k = ok[i:i + len(sel)]
        ch.feats[sel] = np.where(k[:, None, None], y[i:i + len(sel)], 0.0)
        ch.status[sel] = np.where(k, schema.DONE, schema.FAILED)
        ch.errors[sel] = np.where(k, "", "translation produced NaN/Inf")
        ch.left -= len(sel)
        i += len(sel)
        if ch.left == 0:
            finished.append(ch)
    bad = int((~ok).sum())
    return len(ok) - bad, bad, finished


def _read(ego, out, blocks, batch_size: int, q: queue.Queue, stop: threading.Event) -> None:
    """Reader thread: chunks → batches of batch_size rows (the last one shorter), then None."""
    xs, rows, parts, n = [], [], [], 0

    def flush():
        nonlocal xs, rows, parts, n
        _offer(q, _Batch(np.concatenate(xs), np.concatenate(rows), parts), stop)
        xs, rows, parts, n = [], [], [], 0

    for a, b in blocks:
        got = _read_chunk(ego, out, a, b)
        if got is None:
            continue
        ch, todo, x = got
        if not len(todo):
            _offer(q, ch, stop)
        i = 0
        while i < len(todo):  # cut at batch boundaries, not at chunk ones
            sel = todo[i:i + batch_size - n]
            xs.append(x[sel])
            rows.append(a + sel)
            parts.append((ch, sel))
            n, i = n + len(sel), i + len(sel)
            if n == batch_size:
                flush()
    if n:
        flush()
    _offer(q, None, stop)


def _read_chunk(ego, out, a: int, b: int):
    """Rows [a, b): → (chunk, local rows to translate [k], ego features [n, T, D]), or None when
    there is nothing to do (every row done, or mirrored already)."""
    st_ego, st_out = ego.status(slice(a, b)), out.status(slice(a, b))
    todo = (st_out == schema.PENDING) & (st_ego == schema.DONE)
    mirror = (st_ego != schema.DONE) & (st_out == schema.PENDING)
    if not (todo.any() or mirror.any()):
        return None
    status, errors = st_out.copy(), out.errors(slice(a, b)).astype(object)
    _mirror(ego, a, b, st_ego, mirror, status, errors)
    idx = np.flatnonzero(todo)
    ch = _Chunk(a, out.features(slice(a, b)).astype(np.float32), status, errors,
                ego.text(slice(a, b)) if ego.text_dim else None, left=len(idx))
    return ch, idx, ego.features(slice(a, b)) if len(idx) else None


def _write(out, q: queue.Queue) -> None:
    """Writer thread: each complete chunk, data first and status last (Store.write_rows), until None."""
    while (ch := q.get()) is not None:
        out.write_rows(ch.a, features=ch.feats, text=ch.text, status=ch.status, errors=ch.errors)


class _Thread(threading.Thread):
    """A daemon thread that keeps the exception that ended it (raise_error re-raises it here)."""

    def __init__(self, fn, name: str):
        super().__init__(name=name, daemon=True)
        self.fn, self.error = fn, None
        self.start()

    def run(self) -> None:
        try:
            self.fn()
        except _Stopped:
            pass
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            self.error = e

    def raise_error(self) -> None:
        if self.error is not None:
            raise self.error


class _Stopped(Exception):
    """The main thread stopped (error or Ctrl-C): the reader leaves without finishing."""


def _offer(q: queue.Queue, item, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            return q.put(item, timeout=0.1)
        except queue.Full:
            continue
    raise _Stopped


def _get(q: queue.Queue, reader: _Thread):
    """The next batch (or chunk, or None at the end); the reader's error if it died."""
    while True:
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            if not reader.is_alive() and q.empty():
                reader.raise_error()
                return None


def _put(q: queue.Queue, item, writer: _Thread) -> None:
    while True:
        if not writer.is_alive():
            writer.raise_error()
            raise RuntimeError("translate: the writer thread stopped")
        try:
            return q.put(item, timeout=0.1)
        except queue.Full:
            continue


def _todo(ego, out, blocks) -> int:
    """Rows of these blocks still to translate (done in ego, pending in out): the progress total."""
    todo = (out.status() == schema.PENDING) & (ego.status() == schema.DONE)
    return int(sum(todo[a:b].sum() for a, b in blocks))


def _mirror(ego, a, b, st_ego, mirror, status, errors) -> None:
    """Failed ego rows stay failed (their message kept); pending ones stay pending with a note."""
    if not mirror.any():
        return
    ego_err = ego.errors(slice(a, b))
    for j in np.flatnonzero(mirror):
        if st_ego[j] == schema.FAILED:
            status[j], errors[j] = schema.FAILED, f"ego row failed: {ego_err[j]}"
        else:
            errors[j] = "ego row pending (not extracted yet); rerun translate after extraction"


def _finish(out, done_now: int, bad: int, seconds: float, index: int, info) -> TranslateResult:
    counts = out.status_counts()
    # complete when every translatable row is done; one process then marks the new revision,
    # and only if some rank wrote rows (a no-op rerun must not make downstream stages stale)
    changed = dist.all_reduce_mean(float(done_now + bad), info) > 0 or out.meta.get("revision") is None
    if (counts["pending"] == 0 or _nothing_left(out)) and changed:
        if (info.distributed and info.is_main) or not info.distributed:
            out.finalize()
    summary = TranslateResult(str(out.path), out.n_rows, counts["done"], counts["failed"], counts["pending"], done_now,
                              round(seconds, 3), round(done_now / seconds, 1) if seconds > 0 else None)
    if bad:
        raise PartialFailure(f"{out.path}: {bad} row(s) could not be translated (NaN/Inf)",
                             hint="see `rosetta store info`; check the RST's training loss")
    return summary


def _nothing_left(out) -> bool:
    errs = out.errors()
    st = out.status()
    return bool(np.all((st != schema.PENDING) | (errs != "")))
