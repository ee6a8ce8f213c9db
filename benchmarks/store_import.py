"""Peak memory and time of `rosetta store import` from a folder of per-video tensors.

Data (made once in a temp folder): V per-video .npy files [W windows, D] float32 (default 1,000 x
[240, 512], 480 MB in all) and a clips CSV with R rows per video, sorted by video.

Each measurement runs in a fresh child process and reports its own peak RSS
(resource.getrusage(RUSAGE_SELF).ru_maxrss); a child that only imports the same modules gives the
floor, subtracted in the "above floor" column. Compared in the same run:
- old: the import before this change (rosetta_cli/store/ops.py at commit 612e7ce, in-order mode),
  which kept every video's tensor it had loaded;
- new, in order: rosetta_cli.store.importer.run with no timing flags (the same rows and result);
- new, by time: --window-sec 1.0667 --stride-sec 0.5333 (the ego4d-slowfast preset), --frames 4.

    python benchmarks/store_import.py                 # 1,000 videos
    python benchmarks/store_import.py --videos 100    # a smoke run
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
OLD_COMMIT = "612e7ce"

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {root!r})
import numpy as np, pandas as pd, zarr  # noqa: F401  (the floor imports these too)
from rosetta_cli.store.core import Store  # noqa: F401
mode, feats, clips, out = sys.argv[1:5]
t = time.perf_counter()
if mode == "old":
    sys.path.insert(0, {tmp!r})
    import old_ops
    old_ops.import_features(feats, clips, out).close()
elif mode != "floor":
    from rosetta_cli.store.importer import ImportConfig, run
    timing = dict(preset="ego4d-slowfast", frames=4) if mode == "time" else {{}}
    run(ImportConfig(features=feats, clips=clips, out=out, **timing))
secs = time.perf_counter() - t
print(json.dumps({{"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "seconds": secs}}))
"""


def make_data(tmp: Path, videos: int, windows: int, dim: int, rows: int) -> tuple[Path, Path, float]:
    feats = tmp / "feats"
    feats.mkdir()
    rng = np.random.default_rng(0)
    recs = []
    span = (windows - 1) * 16 / 30 + 32 / 30  # what the slowfast timing covers
    for v in range(videos):
        np.save(feats / f"video{v:05d}.npy", rng.standard_normal((windows, dim), dtype=np.float32))
        for r in range(rows):
            start = r * span / rows
            recs.append({"clip_id": f"v{v}/c{r}", "video": f"/data/video{v:05d}.mp4", "start": round(start, 3),
                         "end": round(start + span / rows, 3), "view": "ego", "sync_id": "", "narration": "",
                         "label": "", "skill": "", "split": "train"})
    pd.DataFrame(recs).to_csv(tmp / "clips.csv", index=False)
    return feats, tmp / "clips.csv", videos * windows * dim * 4 / 2**20


def child(tmp: Path, mode: str, feats: Path, clips: Path, out: Path) -> dict:
    code = CHILD.format(root=str(ROOT), tmp=str(tmp))
    res = subprocess.run([sys.executable, "-c", code, mode, str(feats), str(clips), str(out)],
                         capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--videos", type=int, default=1000)
    ap.add_argument("--windows", type=int, default=240)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--rows", type=int, default=5, help="CSV rows per video")
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        old = subprocess.run(["git", "-C", str(ROOT), "show", f"{OLD_COMMIT}:rosetta_cli/store/ops.py"],
                             capture_output=True, text=True, check=True).stdout
        (tmp / "old_ops.py").write_text(old)
        feats, clips, total_mb = make_data(tmp, a.videos, a.windows, a.dim, a.rows)
        print(f"{a.videos} videos x [{a.windows}, {a.dim}] float32 = {total_mb:.0f} MB of tensors; "
              f"{a.videos * a.rows} CSV rows; one video = {a.windows * a.dim * 4 / 2**20:.2f} MB")
        results: dict[str, list[dict]] = {m: [] for m in ("floor", "old", "order", "time")}
        for i in range(a.repeats):
            for m in results:
                results[m].append(child(tmp, m, feats, clips, tmp / f"out-{m}-{i}.zarr"))
        floor = statistics.median(r["peak_mb"] for r in results["floor"])
        print(f"| path | peak RSS MB (median of {a.repeats}) | above floor MB | seconds (median) |")
        print("|---|---|---|---|")
        for m, label in (("floor", "imports only (floor)"), ("old", "old import (612e7ce, in order)"),
                         ("order", "new, in order"), ("time", "new, by time (slowfast, T=4)")):
            peak = statistics.median(r["peak_mb"] for r in results[m])
            secs = statistics.median(r["seconds"] for r in results[m])
            print(f"| {label} | {peak:.0f} | {peak - floor:.0f} | {secs:.2f} |")
        old_up = statistics.median(r["peak_mb"] for r in results["old"]) - floor
        new_up = statistics.median(r["peak_mb"] for r in results["order"]) - floor
        print(f"old/new memory above floor: {old_up / max(new_up, 1e-9):.1f}x")
        a0 = [np.asarray(__import__("zarr").open_group(str(tmp / f"out-{m}-0.zarr"), mode="r")["features"][:])
              for m in ("old", "order")]
        print("old and new in-order stores hold the same features:", bool(np.array_equal(*a0)))


if __name__ == "__main__":
    main()
