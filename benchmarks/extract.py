"""Benchmark `rosetta extract` against the CPU bound of the machine it runs on.

    python benchmarks/extract.py [--rounds 3] [--clips 32] [--workers 2] [--batch-size 8]

Same clips for every variant (2 s windows of the real test videos box.mp4/cup.mp4, cycled),
T=4 frames, efficientnet-lite0 on CPU, no text encoder. Each round measures, interleaved:

- decode core-seconds per clip: decode + resize/crop, one process, one torch thread, CPU time;
- encode core-seconds per clip: efficientnet-lite0 on batches of decoded clips, one torch thread, CPU time;
- the same work split over `workers` processes, nothing shared (what concurrency alone costs);
- the naive serial loop (decode → encode → write one clip at a time, default torch threads);
- the pipeline: `run_extract` end to end (store creation included), wall time.

Every process measured (this one, the split processes, the pipeline's workers) reuses freed heap
memory (`runtime.alloc.keep_freed_memory`), so all variants run the same kernels with the same allocator.
The CPU bound is cores / (decode + encode core-seconds per clip): what the cores could do if they
never idled and never duplicated work. Prints medians over the rounds, the ratio pipeline / bound,
the decoder throughput per worker (what a GPU encoder needs) and the load average during the run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
VIDEOS = REPO / "tests" / "data" / "videos"
FRAMES = 4


def make_clips(n: int) -> pd.DataFrame:
    """n clips: consecutive 2 s windows of box (15 s) and cup (8 s), cycled."""
    wins = [(v, s) for v, dur in (("box.mp4", 14), ("cup.mp4", 8)) for s in range(0, dur, 2)]
    rows = [{"clip_id": f"c{i}", "video": str(VIDEOS / wins[i % len(wins)][0]), "start": float(wins[i % len(wins)][1]),
             "end": float(wins[i % len(wins)][1] + 2), "view": "ego", "sync_id": "", "narration": "", "label": "",
             "skill": "", "split": ""} for i in range(n)]
    return pd.DataFrame(rows)


def one_thread(fn):
    """Run fn() with one torch thread; → (result, CPU seconds of this process, wall seconds)."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        c0, t0 = time.process_time(), time.perf_counter()
        out = fn()
        return out, time.process_time() - c0, time.perf_counter() - t0
    finally:
        torch.set_num_threads(old)


def decode_all(clips, enc) -> list:
    """Decode + resize/crop every clip: list of uint8 [T, S, S, 3] tensors."""
    from rosetta_cli.encoders.base import resize_crop
    from rosetta_cli.video import read_clip
    from rosetta_cli.video.reader import release

    release()  # start cold, as a worker does
    out = [resize_crop(read_clip(c.video, c.start, c.end, FRAMES), enc.preprocess) for c in clips.itertuples()]
    release()  # stop decord's read-ahead thread, so its work is not counted in what runs next (the encoder)
    return out


def encode_all(decoded: list, enc, batch: int) -> None:
    import torch

    for i in range(0, len(decoded), batch):
        enc.encode_clips(torch.stack(decoded[i:i + batch]))


def naive(clips, enc, out: Path) -> float:
    """Decode one clip, encode it, write its row: batch 1, no overlap. Returns clips/s."""
    from rosetta_cli.encoders.base import resize_crop
    from rosetta_cli.store import Store
    from rosetta_cli.video import read_clip

    t0 = time.perf_counter()
    store = Store.create(out, kind="features", clips=clips, frames=FRAMES, dim=enc.dim, chunk_rows=256, overwrite=True)
    for r, c in clips.iterrows():
        f = enc.encode(resize_crop(read_clip(c.video, c.start, c.end, FRAMES), enc.preprocess))
        store.write_rows(r, features=f[None], status=1)
    store.close()
    return len(clips) / (time.perf_counter() - t0)


def _split_worker(q, gate, clips, batch: int) -> None:
    """One share: load the encoder, wait for the others, then decode + encode; → (core-s, wall s) of the work."""
    import torch

    from rosetta_cli.encoders import get_visual_encoder
    from rosetta_cli.runtime.alloc import keep_freed_memory

    torch.set_num_threads(1)
    keep_freed_memory()  # as the pipeline's workers do
    enc = get_visual_encoder("efficientnet-lite0", device="cpu")
    gate.wait()  # every process starts its work together, after its imports
    c0, t0 = time.process_time(), time.perf_counter()
    encode_all(decode_all(clips, enc), enc, batch)
    q.put((time.process_time() - c0, time.perf_counter() - t0))


def split_ideal(clips, workers: int, batch: int) -> tuple[float, float]:
    """The clips split into `workers` contiguous shares, each decoded + encoded by its own process
    (one torch thread), nothing shared, no store: what the cores do when they all run this work at
    once. → (clips/s over the slowest share's work, core-s per clip). Its core-s per clip exceed the
    one-process figures by what concurrent processes cost each other on this machine (caches,
    memory bandwidth, the hypervisor), which no pipeline can avoid. Spawned, not forked: a fork
    after this process has run torch's thread pool can deadlock the child.
    """
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    q, gate = ctx.Queue(), ctx.Barrier(workers)
    shares = np.array_split(np.arange(len(clips)), workers)
    procs = [ctx.Process(target=_split_worker, args=(q, gate, clips.iloc[s], batch)) for s in shares]
    for p in procs:
        p.start()
    out = [q.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    return len(clips) / max(w for _, w in out), sum(c for c, _ in out) / len(clips)


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and of its reaped children (the DataLoader workers)."""
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def pipeline(clips, out: Path, workers: int, batch: int) -> tuple[float, float, float, float]:
    """run_extract end to end (store creation included).

    → (clips/s end to end, clips/s of the row loop alone, core-s per clip, write share of wall time).
    """
    from rosetta_cli.datasets.base import Manifest
    from rosetta_cli.extract import ExtractConfig, run_extract

    cfg = ExtractConfig(videos=str(VIDEOS), out=str(out), text_encoder="none", frames=FRAMES, workers=workers,
                        batch_size=batch, device="cpu", overwrite=True)
    c0, t0 = cpu_seconds(), time.perf_counter()
    res = run_extract(cfg, manifest=Manifest("csv", clips.copy()))
    wall, cs = time.perf_counter() - t0, cpu_seconds() - c0
    assert res.done == len(clips), res
    return len(clips) / wall, res.processed / res.seconds, cs / len(clips), res.timings["write"] / wall


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="16 clips, 1 round")
    ap.add_argument("--clips", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=None, help="default: one per core")
    ap.add_argument("--batch-size", type=int, default=8)
    a = ap.parse_args()
    n, rounds = (16, 1) if a.quick else (a.clips, a.rounds)
    workers = a.workers if a.workers is not None else cores()
    import torch

    from rosetta_cli.encoders import get_visual_encoder
    from rosetta_cli.runtime.alloc import keep_freed_memory

    # The one-process bound and the naive loop get the allocator setting the pipeline's workers use
    # (run_extract sets it in its own process too): the ratio compares the same kernels and allocator.
    keep_freed_memory()
    clips, enc = make_clips(n), get_visual_encoder("efficientnet-lite0", device="cpu")
    keys = ("decode_cs", "decode_wall", "encode_cs", "split", "split_cs", "naive", "pipeline", "loop", "pipeline_cs", "write_share", "load")
    res = {k: [] for k in keys}
    with tempfile.TemporaryDirectory() as tmp:
        pipeline(clips.iloc[:4].reset_index(drop=True), Path(tmp) / "warm.zarr", workers, a.batch_size)  # imports, page cache
        for _ in range(rounds):
            res["load"].append(os.getloadavg()[0])
            decoded, cs, wall = one_thread(lambda: decode_all(clips, enc))
            res["decode_cs"].append(cs / n)
            res["decode_wall"].append(wall / n)
            _, cs, _ = one_thread(lambda: encode_all(decoded, enc, a.batch_size))
            res["encode_cs"].append(cs / n)
            cps, cs = split_ideal(clips, workers, a.batch_size)
            res["split"].append(cps)
            res["split_cs"].append(cs)
            res["naive"].append(naive(clips, enc, Path(tmp) / "naive.zarr"))
            cps, loop, pcs, share = pipeline(clips, Path(tmp) / "pipe.zarr", workers, a.batch_size)
            res["pipeline"].append(cps)
            res["loop"].append(loop)
            res["pipeline_cs"].append(pcs)
            res["write_share"].append(share)
            res["load"].append(os.getloadavg()[0])
    med = {k: statistics.median(v) for k, v in res.items()}
    c = cores()
    bound = c / (med["decode_cs"] + med["encode_cs"])
    per_worker = 1 / med["decode_cs"]  # a worker with a core of its own (wall time would count the load)
    print(f"\n{n} clips × T={FRAMES}, {rounds} round(s), {c} cores, workers={workers}, batch={a.batch_size}, "
          f"main torch threads={torch.get_num_threads()}; 1-min load average {min(res['load']):.2f}–{max(res['load']):.2f} "
          f"(median {med['load']:.2f})\n")
    print("| measure | median | per round |\n|---|---|---|")
    rows = [("decode + resize, core-s/clip (1 thread)", "decode_cs", "{:.3f}"),
            ("encode, core-s/clip (1 thread, batch %d)" % a.batch_size, "encode_cs", "{:.3f}"),
            ("%d separate processes, each decode + encode of its share (no pipeline), clips/s" % workers, "split", "{:.2f}"),
            ("the same, core-s/clip (concurrent)", "split_cs", "{:.3f}"),
            ("naive serial loop, clips/s", "naive", "{:.2f}"), ("pipeline (run_extract), clips/s", "pipeline", "{:.2f}"),
            ("pipeline row loop only (no start-up: encoder load, store creation), clips/s", "loop", "{:.2f}"),
            ("pipeline, core-s/clip (main + workers)", "pipeline_cs", "{:.3f}")]
    for label, k, fmt in rows:
        print(f"| {label} | {fmt.format(med[k])} | {', '.join(fmt.format(v) for v in res[k])} |")
    print(f"\nCPU bound = {c} / ({med['decode_cs']:.3f} + {med['encode_cs']:.3f}) = {bound:.2f} clips/s")
    print(f"pipeline / bound = {med['pipeline'] / bound:.2f}   (per round: "
          f"{', '.join(f'{p / bound:.2f}' for p in res['pipeline'])})")
    print(f"row loop / bound = {med['loop'] / bound:.2f}")
    print(f"contention: concurrent processes spend {med['split_cs'] / (med['decode_cs'] + med['encode_cs']):.2f}x the "
          f"one-process core-s per clip; split processes / bound = {med['split'] / bound:.2f}")
    print(f"pipeline / split processes = {med['pipeline'] / med['split']:.2f}   (per round: "
          f"{', '.join(f'{p / q:.2f}' for p, q in zip(res['pipeline'], res['split']))})")
    print(f"pipeline / naive = {med['pipeline'] / med['naive']:.2f}x")
    # Load-independent: how much CPU the pipeline spends beyond the decode + encode work itself, and
    # how many cores it kept busy (under load, other processes take the rest).
    print(f"pipeline CPU efficiency = (decode + encode) / pipeline core-s = "
          f"{(med['decode_cs'] + med['encode_cs']) / med['pipeline_cs']:.2f}; cores kept busy = "
          f"{med['pipeline'] * med['pipeline_cs']:.2f} of {c}")
    print(f"decoder throughput: {per_worker:.2f} clips/s per worker (T={FRAMES}, 640x480 H.264) → a GPU encoding "
          f"R clips/s needs about R / {per_worker:.2f} decoding workers (cores)")
    print(f"store writing: {100 * med['write_share']:.1f}% of pipeline wall time")


if __name__ == "__main__":
    main()
