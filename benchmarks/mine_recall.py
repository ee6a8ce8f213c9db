"""Cost of the default recall check of `rosetta mine` (issue 16): IVF mining with and without it.

Both paths are the whole library call `rosetta_cli.mining.run.run(MineConfig(..., index="ivf"))` on the
same stores: open them, build the IVF index (k-means + add), calibrate nprobe, search every query
block, write the pairs store. The baseline passes `check_recall=0`; the measured path leaves the
default (exact full-space search on 256 sampled queries, which streams the exo store once more).
Runs alternate (off, on, off, on, ...) so that load on the shared machine hits both; medians reported.

Data: --strategy visual on clustered synthetic features (2,000 clusters in a 32-dim latent space, centres
std 1, within-cluster std --spread, mapped linearly to D dims, plus isotropic noise std 0.05), fp16, T=1,
no narrations.

    python benchmarks/mine_recall.py                 # 50,000 x 200,000, D = 256, 3 runs each
    python benchmarks/mine_recall.py --quick         # 5,000 x 20,000
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def clustered(rng, n: int, centers: np.ndarray, basis: np.ndarray, spread: float) -> np.ndarray:
    """[n, D] fp16: a cluster centre + within-cluster variation in the latent space, mapped to D, + noise."""
    z = centers[rng.integers(0, len(centers), n)] + spread * rng.standard_normal((n, basis.shape[0]))
    return (z @ basis + 0.05 * rng.standard_normal((n, basis.shape[1]))).astype(np.float16)


def make_stores(root: Path, n_q: int, n_c: int, dim: int, spread: float, seed: int = 0, block: int = 50_000) -> None:
    from rosetta_cli.store import DONE, Store

    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((32, dim)) / np.sqrt(32)
    centers = 1.0 * rng.standard_normal((2000, 32))
    for name, view, n in (("ego", "ego", n_q), ("exo", "exo", n_c)):
        clips = pd.DataFrame({"clip_id": [f"{view}{i}" for i in range(n)], "view": view})
        s = Store.create(root / f"{name}.zarr", kind="features", clips=clips, frames=1, dim=dim, dtype="float16")
        for lo in range(0, n, block):
            x = clustered(rng, min(block, n - lo), centers, basis, spread)
            s.write_rows(lo, features=x[:, None], status=DONE)
        s.finalize()
        s.close()


def mine_once(root: Path, run_no: int, check: bool) -> dict:
    from rosetta_cli.mining import MineConfig
    from rosetta_cli.mining.run import run

    cfg = MineConfig(ego=root / "ego.zarr", exo=root / "exo.zarr", out=root / f"pairs{run_no}.zarr",
                     strategy="visual", index="ivf", topk=1, check_recall=None if check else 0)
    t = time.perf_counter()
    res = run(cfg)
    return {"wall": time.perf_counter() - t, "recall": res.recall, "seconds": res.seconds, "index": res.index}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--queries", type=int, default=50_000)
    ap.add_argument("--candidates", type=int, default=200_000)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--spread", type=float, default=0.3,
                    help="within-cluster std (centres: std 1); at 1.0 the clusters overlap and IVF needs a large nprobe")
    args = ap.parse_args()
    n_q, n_c = (5_000, 20_000) if args.quick else (args.queries, args.candidates)
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        make_stores(root, n_q, n_c, args.dim, args.spread)
        print(f"data: {n_q} x {n_c}, D={args.dim}, generated in {time.perf_counter() - t:.0f} s",
              file=sys.stderr, flush=True)
        off, on = [], []
        for r in range(args.repeats):
            off.append(mine_once(root, 2 * r, check=False))
            on.append(mine_once(root, 2 * r + 1, check=True))
            rec = on[-1]["recall"]
            print(f"run {r}: check off {off[-1]['wall']:.2f} s, on {on[-1]['wall']:.2f} s "
                  f"(check {on[-1]['seconds']['recall']:.2f} s, recall@1 {rec['recall@1']:.4f} on {rec['queries']} q, "
                  f"nprobe {on[-1]['index'].get('nprobe')})", file=sys.stderr, flush=True)
    m_off = statistics.median(x["wall"] for x in off)
    m_on = statistics.median(x["wall"] for x in on)
    m_chk = statistics.median(x["seconds"]["recall"] for x in on)
    recalls = [x["recall"]["recall@1"] for x in on]
    idx = on[0]["index"]
    print(f"\n### rosetta mine: cost of the default recall check, {n_q:,} queries x {n_c:,} candidates, "
          f"D={args.dim}, --index ivf (nlist {idx.get('nlist')}, nprobe {idx.get('nprobe')}), "
          f"{args.repeats} alternating runs each, {os.cpu_count()} CPU cores (medians)\n")
    print("| path | median s | ratio |\n|---|---|---|")
    print(f"| `--check-recall 0` (baseline) | {m_off:.2f} | 1.00 |")
    print(f"| default (check on 256 sampled queries) | {m_on:.2f} | {m_on / m_off:.3f} |")
    print(f"\nthe check itself: median {m_chk:.2f} s; recall@1 vs exact: {', '.join(f'{r:.4f}' for r in recalls)}")


if __name__ == "__main__":
    main()
