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


class TextAhead:
    """Narration embeddings per chunk, computed on one background thread from the moment a chunk's first batch
    arrives, so the text tower runs while its chunk is still decoding, not on the write path.

    Each chunk's narrations are encoded as one batch, as before: the embeddings are the same numbers."""

    def __init__(self, tenc, narrations: list[str]):
        from concurrent.futures import ThreadPoolExecutor

        self.tenc, self.narrations, self.pending = tenc, narrations, {}
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="rosetta-text") if tenc is not None else None

    def submit(self, start: int, stop: int) -> None:
        if self.pool is not None:
            self.pending[start] = self.pool.submit(self._embed, start, stop)

    def _embed(self, start: int, stop: int):
        t0 = time.perf_counter()
        return embed_text(self.tenc, self.narrations[start:stop]), time.perf_counter() - t0

    def result(self, start: int):
        """(float32 [rows, Dt] or None, seconds the thread spent on it)."""
        if self.pool is None:
            return None, 0.0
        return self.pending.pop(start).result()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


def write_chunk(store, buf: ChunkBuffer, text, timings: dict) -> None:
    """text: float32 [rows, Dt] of the chunk's narrations, or None (no text encoder)."""
    if text is not None:
        for i in np.flatnonzero(nonfinite_rows(text) & (buf.status == DONE)):
            buf.status[i], buf.errors[i] = FAILED, "the text encoder returned NaN/Inf for this narration"
    t1 = time.perf_counter()
    # write_rows stores content first and status last, each durable before the next (HDF5 flushes):
    # a kill at any point leaves the chunk done with its data, or pending, to be redone identically.
    store.write_rows(buf.start, features=buf.features, text=text, errors=buf.errors, status=buf.status)
    timings["write"] += time.perf_counter() - t1


def extract_chunks(store, clips, chunks, venc, tenc, cfg, progress, read_paths=None) -> dict:
    """Fill every (start, stop) chunk of `chunks`. Returns seconds spent per stage.

    read_paths: the file each row decodes (default: its `video`; `--prepped` gives the small copies).
    Batches arrive in any order (data.make_loader); a chunk is written as soon as all its rows are in.
    timings: decode_wait, visual and write on the main thread; text is the background thread's time,
    text_wait the part of it the writes waited for."""
    timings = {"decode_wait": 0.0, "visual": 0.0, "text": 0.0, "text_wait": 0.0, "write": 0.0}
    if not chunks:
        return timings
    ds = ClipDataset(read_paths or clips["video"].astype(str).tolist(), clips["start"].to_numpy(float), clips["end"].to_numpy(float),
                     cfg.frames, cfg.decoder, venc.preprocess)
    todo = sum(b - a for a, b in chunks)
    if store.n_rows > todo:
        progress.note(f"{store.path}: resuming, {store.n_rows - todo} of {store.n_rows} rows are done or in other shards")
    progress.start("extract", todo, unit="clips")
    on_cpu = venc.device == "cpu"
    # CPU: the workers encode what they decode (see data.collate); GPU: the workers decode, the main process encodes.
    loader = make_loader(ds, chunk_batches(chunks, cfg.batch_size), cfg.workers, pin_memory=venc.device.startswith("cuda"),
                         encoder=venc if on_cpu and cfg.workers > 0 else None)
    text = TextAhead(tenc, clips["narration"].fillna("").astype(str).tolist())
    try:
        _fill(store, loader, chunks, venc, text, progress, timings)
    finally:
        text.close()
    return timings


def _fill(store, loader, chunks, venc, text: TextAhead, progress, timings: dict) -> None:
    starts = np.array([a for a, _ in chunks])
    stop_of = dict(chunks)
    open_bufs: dict[int, ChunkBuffer] = {}  # chunk start → rows received so far
    failed, it = 0, iter(loader)
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
        start = int(starts[np.searchsorted(starts, batch["rows"][0], side="right") - 1])  # batches never straddle chunks
        if start not in open_bufs:
            open_bufs[start] = ChunkBuffer(start, stop_of[start], store.frames, store.dim)
            text.submit(start, stop_of[start])
        buf = open_bufs[start]
        buf.add(batch["rows"], batch["ok"], batch["errors"], feats)
        failed += len(batch["rows"]) - sum(batch["ok"])
        progress.advance(len(batch["rows"]), info=f"{failed} failed" if failed else "")
        if buf.full:
            t2 = time.perf_counter()
            emb, spent = text.result(start)
            timings["text_wait"] += time.perf_counter() - t2
            timings["text"] += spent
            write_chunk(store, open_bufs.pop(start), emb, timings)
