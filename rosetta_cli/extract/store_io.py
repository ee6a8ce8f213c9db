"""Creating, resuming and sharing the output store.

Creation is atomic: the store is built under a hidden temporary name and renamed into
place, so a crash never leaves a half-made store, and when several `--shard` processes
race, exactly one rename wins and the others open the winner's store. Every later run
checks the store's `extract` signature (clip table, encoders, frames, decoder,
precision) against its own before writing a single row.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

from rosetta_cli.errors import StoreError
from rosetta_cli.runtime import atomic
from rosetta_cli.store import Store
from rosetta_cli.store.backends import BACKENDS
from rosetta_cli.store.schema import backend_for

TEMP_TAG = "creating"  # .OUT.creating-PID.zarr while a store is being made

SIGNATURE_NAMES = {
    "clips_sha256": "clip table (videos, times or --limit)", "rows": "number of clips", "frames": "--frames",
    "decoder": "--decoder", "precision": "--precision", "dtype": "feature dtype", "encoder": "--encoder",
    "encoder_sha256": "encoder weights", "text_encoder": "--text-encoder", "text_encoder_sha256": "text encoder weights",
    "preprocess": "preprocessing (an older rosetta version resized frames differently)",
    "prepped": "video source (--prepped: the sources, or a `rosetta prep` copy with other settings)",
    "cpu_batch": "encoder batching (images per CPU forward; older rosetta versions batched differently)",
}


def clips_digest(clips) -> str:
    """sha256 of the columns that decide a row's content (clip_id, video, start, end)."""
    h = hashlib.sha256()
    for col in ("clip_id", "video"):
        h.update(json.dumps(clips[col].astype(str).tolist()).encode())
    for col in ("start", "end"):
        vals = [None if (v is None or math.isnan(v)) else float(v) for v in clips[col].astype(float).tolist()]
        h.update(json.dumps(vals).encode())
    return h.hexdigest()


def signature(clips, cfg, venc_info: dict, tenc_info: dict | None, prepped: dict | None = None) -> dict:
    """What a store must agree on with a run for that run to resume into it.

    prepped: the `rosetta prep` settings the frames come from (None: the source videos); its folder is
    left out, so a moved prep folder still resumes. Absent from older stores, where it reads as None."""
    sig = {"clips_sha256": clips_digest(clips), "rows": len(clips), "frames": cfg.frames, "decoder": cfg.decoder,
            "precision": cfg.precision, "dtype": cfg.dtype, "encoder": venc_info["name"],
            "encoder_sha256": venc_info.get("weights_sha256"),
            "text_encoder": tenc_info["name"] if tenc_info else None,
            "text_encoder_sha256": tenc_info.get("weights_sha256") if tenc_info else None,
            # how frames become features beyond the weights: a resumed store must not mix two kernels
            "preprocess": venc_info.get("preprocess"), "cpu_batch": venc_info.get("cpu_batch")}
    if prepped is not None:  # only then: stores made from the sources keep their old signature
        sig["prepped"] = {k: v for k, v in prepped.items() if k != "dir"}
    return sig


def create_store(out: Path, clips, *, frames: int, dim: int, text_dim: int | None, dtype: str, chunk_rows: int,
                 attrs: dict, config) -> bool:
    """Create the store at `out` atomically (all rows pending). False if another process beat us to it.
    At a URL (no rename on object stores) the store is built in place under its incomplete marker."""
    if isinstance(out, str):  # remote.StoreURL: one writer (pipeline.run refuses several)
        Store.create(out, kind="features", clips=clips, frames=frames, dim=dim, text_dim=text_dim, dtype=dtype,
                     chunk_rows=chunk_rows, attrs=attrs, config=config).close()
        return True
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic.remove_stale_temps(out, TEMP_TAG)
    tmp = atomic.temp_sibling(out, TEMP_TAG)
    store = Store.create(tmp, kind="features", clips=clips, frames=frames, dim=dim, text_dim=text_dim, dtype=dtype,
                         chunk_rows=chunk_rows, attrs=attrs, config=config, overwrite=True)
    store.close()
    return atomic.publish_new(tmp, out)


def open_checked(out: Path, sig: dict) -> Store:
    """Open an existing store for resuming; StoreError unless it was made by the same extraction."""
    store = Store.open(out, mode="r+", kind="features")
    old = store.meta.get("extract")
    if not isinstance(old, dict):
        raise StoreError(f"{out}: exists but was not written by `rosetta extract`",
                         hint="pass --overwrite to replace it, or choose another --out")
    keys = list(sig) + ["prepped"] * ("prepped" not in sig)  # a prepped store refuses a run from the sources
    diff = [k for k in keys if old.get(k) != sig.get(k)]
    if diff:
        what = ", ".join(SIGNATURE_NAMES.get(k, k) for k in diff)
        raise StoreError(f"{out}: exists but was made with a different {what}, so it cannot be resumed",
                         hint="rerun with the original options, pass --overwrite to start afresh, or choose another --out")
    return store


def remove_store(out: Path) -> None:
    if out.exists():
        BACKENDS[backend_for(out)].remove(out)


def store_bytes(path: Path) -> int:
    """Bytes on disk (an HDF5 store is a sparse file until its rows are written)."""
    from rosetta_cli.store.inspect import disk_size

    return disk_size(path)
