"""CPU cost of the two per-frame kernels of extraction, by how they are run.

    python benchmarks/encode_batch.py [--clips 32] [--rounds 5]

1. Encoder: efficientnet-lite0 (fp32, one torch thread) core-seconds per T=4 clip, by images per
   forward (`VisualEncoder.cpu_batch`): 1, 2, 4, 8, 16, 32 (32 = what one forward of an 8-clip batch was
   before cpu_batch existed).
2. Resize + centre crop of the decoded 640x480 frames to 224²: the float kernel (float input) against
   the uint8 one (uint8 input, what `resize_crop` now does), core-seconds per clip and the largest
   difference in grey levels.

Same decoded frames for every variant (2 s windows of the real test videos, cycled); variants are
interleaved within each round, and the table shows medians over rounds with the ratio to the old
setting (32 images per forward, float resize) from the same rounds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.extract import FRAMES, make_clips  # noqa: E402

SIZES = (1, 2, 4, 8, 16, 32)


def cpu(fn) -> float:
    c0 = time.process_time()
    fn()
    return time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    import torch

    from rosetta_cli.encoders import get_visual_encoder
    from rosetta_cli.encoders.base import resize_crop
    from rosetta_cli.video import read_clip

    torch.set_num_threads(1)
    enc = get_visual_encoder("efficientnet-lite0", device="cpu")
    raw = [read_clip(c.video, c.start, c.end, FRAMES) for c in make_clips(a.clips).itertuples()]  # uint8 [T, 480, 640, 3]
    flat = resize_crop(np.concatenate(raw), enc.preprocess)                                    # [clips*T, 224, 224, 3]
    res = {k: [] for k in [*SIZES, "resize_float", "resize_uint8"]}
    load = [os.getloadavg()[0]]
    for _ in range(a.rounds):
        for k in SIZES:
            enc.cpu_batch = k
            res[k].append(cpu(lambda: enc.encode(flat)) / a.clips)
        res["resize_float"].append(cpu(lambda: [resize_crop(torch.as_tensor(r).float(), enc.preprocess) for r in raw]) / a.clips)
        res["resize_uint8"].append(cpu(lambda: [resize_crop(r, enc.preprocess) for r in raw]) / a.clips)
        load.append(os.getloadavg()[0])
    diff = max(int((resize_crop(r, enc.preprocess).int() - resize_crop(torch.as_tensor(r).float(), enc.preprocess).int())
                   .abs().max()) for r in raw)
    med = {k: statistics.median(v) for k, v in res.items()}
    print(f"\n{a.clips} clips x T={FRAMES}, {a.rounds} rounds, 1 torch thread, {os.cpu_count()} cores; 1-min load average "
          f"{min(load):.2f}-{max(load):.2f}\n")
    print("| variant | core-s per clip (median) | vs old | per round |\n|---|---|---|---|")
    for k in SIZES:
        print(f"| encode, {k} images per forward | {med[k]:.4f} | {med[k] / med[32]:.2f}x | "
              f"{', '.join(f'{v:.4f}' for v in res[k])} |")
    for k in ("resize_float", "resize_uint8"):
        print(f"| {k.replace('_', ' ')} | {med[k]:.4f} | {med[k] / med['resize_float']:.2f}x | "
              f"{', '.join(f'{v:.4f}' for v in res[k])} |")
    print(f"\nuint8 vs float resize: largest difference {diff} grey level(s)")


if __name__ == "__main__":
    main()
