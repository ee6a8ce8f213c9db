"""Benchmark `rosetta prep`: extraction's decode rate from 1080p-class sources vs their 288p copies.

    python benchmarks/prep.py [--rounds 3] [--clips 16] [--height 1080] [--keep DIR]

Inputs are made here from the real test videos (tests/data/videos/box.mp4 and cup.mp4, 640x480):
each is upscaled (bicubic) to a short side of `--height` (1440x1080) and encoded with libx264
(crf 18, preset veryfast, a key frame every second, as the copies get: the ratio measures the
resolution alone, not a GOP change). `rosetta prep` (library call, default settings: 288 px, 1 s GOP)
then makes the copies; its wall time and the source seconds per second are printed.

Decode rate = what one extraction worker does per clip: `extract.data.ClipDataset[i]` (read T=4 frames
of a 2 s window + resize/centre-crop to 224 for efficientnet-lite0), one process, one thread, rows in
order (consecutive windows of a video reuse the open reader, as extraction schedules them). Each round
times, interleaved, every (decoder, source) pair on the same clips. Prints medians over the rounds and the
ratio 288p / 1080p per decoder.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]
VIDEOS = REPO / "tests" / "data" / "videos"
FRAMES, WINDOW = 4, 2.0


def render_source(src: Path, dst: Path, short: int) -> float:
    """Upscale `src` to a short side of `short` px with libx264 (1 s GOP); → seconds taken."""
    import av

    t0 = time.perf_counter()
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        ist = inp.streams.video[0]
        rate = ist.average_rate
        w, h = ist.codec_context.width, ist.codec_context.height
        ow, oh = (int(round(w * short / h / 2)) * 2, short) if w >= h else (short, int(round(h * short / w / 2)) * 2)
        gop = int(round(float(rate)))
        ost = out.add_stream("libx264", rate=rate, options={
            "crf": "18", "preset": "veryfast", "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0"})
        ost.width, ost.height, ost.pix_fmt = ow, oh, "yuv420p"
        ost.codec_context.time_base = ost.time_base = ist.time_base
        frames = sorted(((f.pts, f.reformat(width=ow, height=oh, format="yuv420p", interpolation="BICUBIC"))
                         for f in inp.decode(ist)), key=lambda x: x[0])
        last = None
        for pts, f in frames:
            if last is not None and pts <= last:
                continue
            f.pts, f.time_base, last = pts, ist.time_base, pts
            f.pict_type = av.video.frame.PictureType.NONE
            for p in ost.encode(f):
                out.mux(p)
        for p in ost.encode():
            out.mux(p)
    return time.perf_counter() - t0


def windows(folder: Path, n: int) -> list[tuple[str, float, float]]:
    """n clips: consecutive 2 s windows of box (15 s) and cup (8 s), video by video, cycled."""
    wins = [(name, float(s), float(s) + WINDOW) for name, dur in (("box.mp4", 14), ("cup.mp4", 8))
            for s in range(0, dur, int(WINDOW))]
    return [(str(folder / wins[i % len(wins)][0]), wins[i % len(wins)][1], wins[i % len(wins)][2]) for i in range(n)]


def decode_rate(clips, decoder: str) -> float:
    """Clips/s of ClipDataset over `clips`, in order, in this process (one torch thread)."""
    import torch

    from rosetta_cli.encoders.base import Preprocess
    from rosetta_cli.extract.data import ClipDataset
    from rosetta_cli.video.reader import release

    torch.set_num_threads(1)
    release()
    videos, starts, ends = zip(*clips)
    ds = ClipDataset(videos, starts, ends, FRAMES, decoder, Preprocess(resize=256, crop=224))
    t0 = time.perf_counter()
    for i in range(len(ds)):
        item = ds[i]
        assert item["frames"] is not None, item["error"]
    seconds = time.perf_counter() - t0
    release()
    return len(ds) / seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clips", type=int, default=16)
    ap.add_argument("--height", type=int, default=1080, help="short side of the rendered sources")
    ap.add_argument("--keep", type=Path, default=None, help="folder for the rendered videos (default: a temp folder)")
    args = ap.parse_args()

    from rosetta_cli.video.prep import PrepConfig, run

    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-prep-"))
    src, out = work / "src", work / "prep"
    src.mkdir(parents=True, exist_ok=True)
    for name in ("box.mp4", "cup.mp4"):
        if not (src / name).exists():
            print(f"render {name} at {args.height}p: {render_source(VIDEOS / name, src / name, args.height):.1f} s", flush=True)
    shutil.rmtree(out, ignore_errors=True)  # prep timed from scratch, also when --keep reuses the sources
    t0 = time.perf_counter()
    r = run(PrepConfig(str(src), str(out)))
    prep_s = time.perf_counter() - t0
    assert r.failed == 0, r.failures
    media = 15.2 + 8.1  # seconds of video in box + cup
    print(f"prep (default settings, {os.cpu_count()} cores): {prep_s:.1f} s for {media:.1f} s of video "
          f"({media / prep_s:.2f} s of video per s); {r.bytes_in / 1e6:.1f} MB → {r.bytes_out / 1e6:.1f} MB", flush=True)

    rates = {(d, s): [] for d in ("decord", "pyav") for s in ("1080p", "288p")}
    for k in range(args.rounds):
        for dec in ("decord", "pyav"):
            for label, folder in (("1080p", src), ("288p", out)):
                rates[(dec, label)].append(decode_rate(windows(folder, args.clips), dec))
        print(f"round {k + 1}: " + ", ".join(f"{d} {s} {v[-1]:.2f}" for (d, s), v in rates.items()), flush=True)
    print(f"\ndecode clips/s (T={FRAMES}, 2 s windows, resize+crop 224, one process; median of {args.rounds}):")
    print(f"{'decoder':8} {'1080p-class':>12} {'288p':>8} {'ratio':>7}")
    for dec in ("decord", "pyav"):
        a, b = (statistics.median(rates[(dec, s)]) for s in ("1080p", "288p"))
        print(f"{dec:8} {a:12.2f} {b:8.2f} {b / a:6.1f}x")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
