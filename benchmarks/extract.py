"""Benchmark `rosetta extract`: the pipeline vs a naive serial loop, plus decode-only and encode-only.

    python benchmarks/extract.py [--quick] [--workers 2] [--batch-size 8]

Same clips for every variant (2 s windows of the real test videos box.mp4/cup.mp4,
repeated), T=4 frames, efficientnet-lite0 on CPU, no text encoder. Prints a markdown table
of medians; ratios are against the naive loop measured in the same run.
"""

from __future__ import annotations

import argparse
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
    return len(clips) / (time.perf_counter() - t0)


def pipeline(clips, out: Path, workers: int, batch: int) -> tuple[float, float]:
    """run_extract end to end (store creation included). Returns (clips/s, write share of wall time)."""
    from rosetta_cli.datasets.base import Manifest
    from rosetta_cli.extract import ExtractConfig, run_extract

    cfg = ExtractConfig(videos=str(VIDEOS), out=str(out), text_encoder="none", frames=FRAMES, workers=workers,
                        batch_size=batch, device="cpu", overwrite=True)
    t0 = time.perf_counter()
    res = run_extract(cfg, manifest=Manifest("csv", clips.copy()))
    wall = time.perf_counter() - t0
    return len(clips) / wall, res.timings["write"] / wall


def decode_only(clips, enc) -> float:
    from rosetta_cli.encoders.base import resize_crop
    from rosetta_cli.video import read_clip

    t0 = time.perf_counter()
    for c in clips.itertuples():
        resize_crop(read_clip(c.video, c.start, c.end, FRAMES), enc.preprocess)
    return len(clips) / (time.perf_counter() - t0)


def encode_only(clips, enc, batch: int) -> float:
    x = np.random.default_rng(0).integers(0, 255, (batch * FRAMES, 224, 224, 3), dtype=np.uint8)
    n = len(clips)
    t0 = time.perf_counter()
    for _ in range(0, n, batch):
        enc.encode(x)
    return (n // batch * batch or batch) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="12 clips, 1 repeat")
    ap.add_argument("--clips", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=8)
    a = ap.parse_args()
    n, reps = (12, 1) if a.quick else (a.clips, a.repeats)
    import torch

    from rosetta_cli.encoders import get_visual_encoder

    clips, enc = make_clips(n), get_visual_encoder("efficientnet-lite0", device="cpu")
    res = {k: [] for k in ("naive", "pipeline", "write_share", "decode", "encode")}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(reps):
            res["naive"].append(naive(clips, enc, Path(tmp) / "naive.zarr"))
            cps, share = pipeline(clips, Path(tmp) / "pipe.zarr", a.workers, a.batch_size)
            res["pipeline"].append(cps)
            res["write_share"].append(share)
            res["decode"].append(decode_only(clips, enc))
            res["encode"].append(encode_only(clips, enc, a.batch_size))
    med = {k: statistics.median(v) for k, v in res.items()}
    print(f"\n{n} clips × T={FRAMES}, {reps} repeat(s), torch threads={torch.get_num_threads()}, "
          f"workers={a.workers}, batch={a.batch_size}\n")
    print("| variant | clips/s (median) | vs naive |\n|---|---|---|")
    for k, label in (("naive", "naive serial loop (decode→encode→write, batch 1)"),
                     ("pipeline", "rosetta extract pipeline (end to end)"),
                     ("decode", "decode + resize only (1 process)"), ("encode", "encode only (batched)")):
        print(f"| {label} | {med[k]:.2f} | {med[k] / med['naive']:.2f}x |")
    print(f"\nstore writing: {100 * med['write_share']:.1f}% of pipeline wall time")


if __name__ == "__main__":
    main()
