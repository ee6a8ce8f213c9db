"""The row loop: overlapped decoding (workers) and batched inference, chunk-aligned writes."""

from __future__ import annotations

import time

import numpy as np

from rosetta_cli.extract.data import ClipDataset, chunk_batches, make_loader
from rosetta_cli.store.core import nonfinite_rows
from rosetta_cli.store.schema import DONE, FAILED


class ChunkBuffer:
    """Rows [start, stop) being filled batch by batch; written in one go when full."""

    def __init__(self, start: int, stop: int, frames: int, dim: int):
        self.start, self.stop = start, stop
        self.features = np.zeros((stop - start, frames, dim), np.float32)  # failed rows stay zero
        self.status = np.full(stop - start, FAILED, np.uint8)
        self.errors = [""] * (stop - start)
        self.filled = 0

    def add(self, rows: list[int], ok: list[bool], errors: list[str], feats: np.ndarray | None) -> None:
        """feats: [B_ok, T, D] for the rows with ok=True, in order."""
        k = 0
        for row, good, err in zip(rows, ok, errors):
            i = row - self.start
            if good and nonfinite_rows(feats[k:k + 1])[0]:
                self.errors[i] = "the encoder returned NaN/Inf features for this clip"  # failed, alone
                k += 1
            elif good:
                self.features[i], self.status[i] = feats[k], DONE
                k += 1
            else:
                self.errors[i] = err
        self.filled += len(rows)

    @property
    def full(self) -> bool:
        return self.filled == self.stop - self.start


def encode_batch(venc, frames) -> np.ndarray:
    """uint8 [B, T, S, S, 3] → float32 [B, T', D]: T' = T for frame-level encoders, 1 for clip-level ones."""
    return venc.encode_clips(frames)


def embed_text(tenc, narrations: list[str]) -> np.ndarray:
    """[n, Dt] float32; rows without narration get zeros (no text), not embed('')."""
    out = np.zeros((len(narrations), tenc.dim), np.float32)
    idx = [i for i, s in enumerate(narrations) if s]
    if idx:
        out[idx] = tenc.encode([narrations[i] for i in idx])
    return out


def write_chunk(store, buf: ChunkBuffer, tenc, narrations, timings: dict) -> None:
    t0 = time.perf_counter()
    text = embed_text(tenc, narrations[buf.start:buf.stop]) if tenc is not None else None
    if text is not None:
        for i in np.flatnonzero(nonfinite_rows(text) & (buf.status == DONE)):
            buf.status[i], buf.errors[i] = FAILED, "the text encoder returned NaN/Inf for this narration"
    t1 = time.perf_counter()
    # write_rows stores content first and status last, each durable before the next (HDF5 flushes):
    # a kill at any point leaves the chunk done with its data, or pending, to be redone identically.
    store.write_rows(buf.start, features=buf.features, text=text, errors=buf.errors, status=buf.status)
    t2 = time.perf_counter()
    timings["text"] += t1 - t0
    timings["write"] += t2 - t1


def extract_chunks(store, clips, chunks, venc, tenc, cfg, progress, read_paths=None) -> dict:
    """Fill every (start, stop) chunk of `chunks`. Returns seconds spent per stage.

    read_paths: the file each row decodes (default: its `video`; `--prepped` gives the small copies)."""
    timings = {"decode_wait": 0.0, "visual": 0.0, "text": 0.0, "write": 0.0}
    if not chunks:
        return timings
    ds = ClipDataset(read_paths or clips["video"].astype(str).tolist(), clips["start"].to_numpy(float), clips["end"].to_numpy(float),
                     cfg.frames, cfg.decoder, venc.preprocess)
    narrations = clips["narration"].fillna("").astype(str).tolist()
    todo = sum(b - a for a, b in chunks)
    if store.n_rows > todo:
        progress.note(f"{store.path}: resuming, {store.n_rows - todo} of {store.n_rows} rows are done or in other shards")
    progress.start("extract", todo, unit="clips")
    failed = 0
    queue = iter(chunks)
    buf = ChunkBuffer(*next(queue), store.frames, store.dim)
    on_cpu = venc.device == "cpu"
    # CPU: the workers encode what they decode (see data.collate); GPU: the workers decode, the main process encodes.
    it = iter(make_loader(ds, chunk_batches(chunks, cfg.batch_size), cfg.workers,
                          pin_memory=venc.device.startswith("cuda"),
                          encoder=venc if on_cpu and cfg.workers > 0 else None))
    while True:
        t0 = time.perf_counter()
        batch = next(it, None)
        t1 = time.perf_counter()
        if batch is None:
            break
        feats = batch.get("features")
        if batch["frames"] is not None:
            feats = encode_batch(venc, batch["frames"])
        timings["decode_wait"] += t1 - t0
        timings["visual"] += time.perf_counter() - t1
        buf.add(batch["rows"], batch["ok"], batch["errors"], feats)
        failed += len(batch["rows"]) - sum(batch["ok"])
        progress.advance(len(batch["rows"]), info=f"{failed} failed" if failed else "")
        if buf.full:
            write_chunk(store, buf, tenc, narrations, timings)
            nxt = next(queue, None)
            buf = ChunkBuffer(*nxt, store.frames, store.dim) if nxt else None
    return timings
