"""`run(cfg, progress) -> ExtractResult` (exported as `run_extract`): manifest → encoders → features store.

    videos (or their `rosetta prep` copies, --prepped) ─▶ DataLoader workers, one video run at a time
          (decode + resize; on CPU also encode) ─▶ encoder (GPU: main process) ─▶ chunk buffers (batches
          arrive in any order) ─▶ + the chunk's narration embeddings (a background thread) ─▶ one chunk-aligned write

A chunk (store.chunk_rows rows) is the unit of writing, resuming and sharding: its
features, text and errors are written first and its status last, so a run killed at any
point leaves every chunk either complete or still pending, and a rerun redoes exactly the
pending ones. Under torchrun (or --shard I/N) each process takes a contiguous,
chunk-aligned share of the chunks of one store.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from rosetta_cli.errors import UsageError
from rosetta_cli.extract import store_io
from rosetta_cli.extract.config import ExtractConfig
from rosetta_cli.runtime.guard import Action, output_action
from rosetta_cli.runtime.progress import SILENT, Progress
from rosetta_cli.store import remote
from rosetta_cli.store.schema import DONE, FAILED, PENDING
from rosetta_cli.errors import PipelineFailure
from rosetta_cli.runtime.shard import parse_shard
from rosetta_cli.video.reader import probe_duration


@dataclass
class ExtractResult:
    out: str
    rows: int                 # rows in the store
    done: int                 # rows done (whole store)
    failed: int               # rows failed (in this run's scope: its shard, or the whole store on rank 0)
    pending: int              # rows still pending in this run's scope (should be 0 after a run)
    pending_store: int        # rows still pending in the whole store (other shards not yet run)
    processed: int            # rows this run decoded and encoded (all ranks)
    seconds: float            # wall time of the row loop
    store_bytes: int
    failures: list = field(default_factory=list)   # (row, clip_id, video, error), at most 50
    skipped_records: int = 0  # bad annotation records left out (each failed alone; exit 3)
    skipped_by_reason: dict = field(default_factory=dict)  # {"<file>: <reason>": count}
    skipped_examples: list = field(default_factory=list)   # {"file", "entry", "reason", "error", "hint"}, at most 50
    timings: dict = field(default_factory=dict)    # seconds in decode-wait / visual / text / write
    speaker: bool = True      # False on torchrun ranks > 0: rank 0 reports for the whole store

    @property
    def clips_per_s(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict:
        """What `rosetta extract --json` prints."""
        return {**asdict(self), "clips_per_s": self.clips_per_s}


@dataclass
class Ctx:
    rank: int
    world: int
    torchrun: bool
    device: str
    dist: object = None

    @property
    def creator(self) -> bool:
        return self.rank == 0 or not self.torchrun


def _context(cfg: ExtractConfig) -> Ctx:
    from rosetta_cli.runtime.dist import init_from_env, resolve_device

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        if cfg.shard:
            raise UsageError("--shard cannot be combined with torchrun", hint="torchrun already splits rows by rank")
        info = init_from_env(cfg.device)
        return Ctx(info.rank, info.world, True, info.device, info)
    i, n = parse_shard(cfg.shard)
    if cfg.overwrite and n > 1:
        raise UsageError("--overwrite cannot be combined with --shard",
                         hint="delete the store first (rm -r STORE), then start the shards")
    return Ctx(i, n, False, resolve_device(cfg.device))


def load_clips(cfg: ExtractConfig, manifest=None):
    """The manifest (annotations are fully checked here, before any work) and its first --limit clips."""
    if manifest is None:
        from rosetta_cli.datasets import load_manifest

        manifest = load_manifest(Path(cfg.videos), cfg.dataset, duration_fn=_safe_duration(probe_duration),
                                 strict=cfg.strict, **cfg.dataset_options())
    clips = manifest.clips.iloc[: cfg.limit].reset_index(drop=True) if cfg.limit else manifest.clips
    clips.attrs["labels"] = list(manifest.labels)
    if len(clips) == 0:
        raise UsageError(f"{cfg.videos}: no clips to extract", hint="check --videos / --dataset and the filters")
    return manifest, clips


def _safe_duration(probe):
    """duration_fn for windowing: an unreadable video gets one whole-video row, which then fails alone."""
    def fn(path):
        try:
            return probe(path)
        except UsageError:
            return None
    return fn


def run(cfg: ExtractConfig, progress: Progress = SILENT, *, manifest=None) -> ExtractResult:
    """Extract features for every pending row of `cfg.out` that falls in this process's share.

    manifest: a ready `datasets.base.Manifest` (skips loading `cfg.videos`; benchmarks, tests).
    Progress: one phase "extract" in clips; `info` counts the failed rows so far.
    """
    from rosetta_cli.runtime.alloc import keep_freed_memory

    cfg.check()
    keep_freed_memory()  # the main process encodes on GPU runs and with --workers 0; workers inherit it too
    manifest, clips = load_clips(cfg, manifest)
    ctx = _context(cfg)
    if ctx.world > 1 and remote.is_url(cfg.out):  # every writer would rewrite the root zarr.json (no locks there)
        raise UsageError(f"{cfg.out}: several processes cannot write one store at a URL",
                         hint="run one process per store (drop --shard/torchrun), or extract locally and `rosetta store push`")
    if ctx.world > 1 and not str(cfg.out).rstrip("/").endswith(".zarr"):
        raise UsageError("several processes can only share a .zarr store (HDF5 has a single writer)",
                         hint="extract to a .zarr, then `rosetta store convert` it to .h5")
    read_paths, prepped = _read_paths(cfg, clips)
    venc, tenc = _load_encoders(cfg, clips, ctx.device)
    store = _prepare_store(cfg, manifest, clips, venc, tenc, ctx, prepped)
    chunks = _my_chunks(store, ctx, cfg.retry_failed)
    t0 = time.perf_counter()
    timings = _extract_chunks(store, clips, chunks, venc, tenc, cfg, progress, read_paths)
    seconds = time.perf_counter() - t0
    processed = sum(b - a for a, b in chunks)
    result = _finish(store, cfg, ctx, chunks, processed, seconds, timings)
    result.skipped_records = len(manifest.skipped)
    result.skipped_by_reason = manifest.skipped_by_reason()
    result.skipped_examples = manifest.skipped[:50]
    return result


def _read_paths(cfg: ExtractConfig, clips) -> tuple[list[str], dict | None]:
    """The file each row decodes (its video, or with --prepped that video's small copy) and the prep's settings."""
    videos = clips["video"].astype(str).tolist()
    if not cfg.prepped:
        return videos, None
    from rosetta_cli.video.prep import prepped_paths

    return prepped_paths(videos, cfg.prepped)


def _load_encoders(cfg: ExtractConfig, clips, device: str):
    from rosetta_cli.encoders import get_text_encoder, get_visual_encoder

    venc = get_visual_encoder(cfg.encoder, device=device, precision=cfg.precision)
    has_text = bool(clips["narration"].fillna("").astype(str).str.len().gt(0).any())
    # No narration anywhere (e.g. a plain folder): skip text rather than store N copies of embed("").
    tenc = get_text_encoder(cfg.text_encoder, device=device) if has_text else None
    return venc, tenc


def _store_attrs(cfg, manifest, venc, tenc, sig, prepped) -> dict:
    root = manifest.options.get("root") or str(Path(cfg.videos).absolute())
    return {"encoder": venc.info(), "text_encoder": tenc.info() if tenc else None, "source_root": root,
            "dataset": manifest.dataset, "role": cfg.role or manifest.role, "extract": sig,
            "dataset_options": manifest.options, "prepped": prepped, "annotation_sources": list(manifest.sources),
            "annotation_skipped": {"records": len(manifest.skipped), "by_reason": manifest.skipped_by_reason()}}


def _prepare_store(cfg, manifest, clips, venc, tenc, ctx: Ctx, prepped: dict | None = None):
    """Rank 0 (or any shard, atomically) creates; everyone verifies the signature."""
    out = remote.as_path(cfg.out)  # a local Path, or a remote.StoreURL (s3://...)
    sig = store_io.signature(clips, cfg, venc.info(), tenc.info() if tenc else None, prepped)
    error = None
    if ctx.creator:
        try:
            # Extraction resumes by default (resume = not --overwrite); --overwrite replaces. Whether the
            # store matches this run is open_checked's job.
            if output_action(out, out.exists(), what="a features store", overwrite=cfg.overwrite,
                             resume=not cfg.overwrite) is Action.REPLACE:
                store_io.remove_store(out)
            if not out.exists():
                store_io.create_store(out, clips, frames=venc.frames_out(cfg.frames), dim=venc.dim, text_dim=tenc.dim if tenc else None,
                                      dtype=cfg.dtype, chunk_rows=cfg.chunk_rows, config=cfg,
                                      attrs=_store_attrs(cfg, manifest, venc, tenc, sig, prepped))
            store = store_io.open_checked(out, sig)
        except Exception as e:
            error = e
    if ctx.torchrun:  # rank 0 tells the others whether the store is usable (a bare barrier would hang them)
        error = _share_error(error, ctx)
    if error is not None:
        raise error
    return store if ctx.creator else store_io.open_checked(out, sig)


def _share_error(error, ctx: Ctx):
    import torch.distributed as dist

    box = [error.one_line() if hasattr(error, "one_line") else (repr(error) if error else None)]
    dist.broadcast_object_list(box, src=0)
    if error is None and box[0] is not None:
        return PipelineFailure(f"rank 0 could not prepare the store: {box[0]}")
    return error


def _my_chunks(store, ctx: Ctx, retry_failed: bool) -> list[tuple[int, int]]:
    """This process's contiguous share of chunks, keeping only those with rows to do."""
    blocks = list(store.blocks())
    share = np.array_split(np.arange(len(blocks)), ctx.world)[ctx.rank] if blocks else []
    status = store.status()
    todo = (status == PENDING) | ((status == FAILED) if retry_failed else False)
    return [blocks[i] for i in share if todo[blocks[i][0]:blocks[i][1]].any()]


def _extract_chunks(store, clips, chunks, venc, tenc, cfg, progress: Progress, read_paths=None) -> dict:
    from rosetta_cli.extract.loop import extract_chunks

    return extract_chunks(store, clips, chunks, venc, tenc, cfg, progress, read_paths)


def _finish(store, cfg, ctx: Ctx, chunks, processed: int, seconds: float, timings: dict) -> ExtractResult:
    """Wait for all ranks, finalize a complete store once, and summarise."""
    from rosetta_cli.runtime.dist import barrier, cleanup

    if ctx.torchrun:
        processed = _sum_over_ranks(processed, ctx.device)
        barrier(ctx.dist)
    status = store.status()
    scope = np.ones(len(status), bool) if (ctx.torchrun or ctx.world == 1) else _share_mask(store, ctx)
    pending = int((status == PENDING).sum())
    # Finalize once (rank 0 under torchrun), and only if this run changed something: a new
    # revision marks every downstream stage stale.
    changed = processed > 0 or store.meta.get("revision") is None
    if pending == 0 and changed and (ctx.rank == 0 or not ctx.torchrun):
        store.finalize()
    pending_scope = int(((status == PENDING) & scope).sum())
    failed_rows = np.flatnonzero((status == FAILED) & scope)
    result = ExtractResult(out=str(cfg.out), rows=len(status), done=int((status == DONE).sum()), failed=len(failed_rows),
                           pending=pending_scope, pending_store=pending, processed=processed, seconds=seconds,
                           store_bytes=store_io.store_bytes(store.path), failures=_failures(store, failed_rows[:50]),
                           timings=timings, speaker=ctx.rank == 0 or not ctx.torchrun)
    store.close()
    if ctx.torchrun:
        barrier(ctx.dist)
        cleanup(ctx.dist)
    return result


def _share_mask(store, ctx: Ctx) -> np.ndarray:
    blocks = list(store.blocks())
    mask = np.zeros(store.n_rows, bool)
    for i in np.array_split(np.arange(len(blocks)), ctx.world)[ctx.rank]:
        mask[blocks[i][0]:blocks[i][1]] = True
    return mask


def _failures(store, rows: np.ndarray) -> list:
    if len(rows) == 0:
        return []
    errors = store.errors()
    ids, videos = store.column("clip_id"), store.column("video")
    return [(int(r), str(ids[r]), str(videos[r]), str(errors[r])) for r in rows]


def _sum_over_ranks(n: int, device: str) -> int:
    import torch
    import torch.distributed as dist

    t = torch.tensor([n], dtype=torch.int64, device=device)  # NCCL reduces only CUDA tensors
    dist.all_reduce(t)
    return int(t.item())
