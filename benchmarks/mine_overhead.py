"""Overhead of `rosetta mine` (exact, --index flat) over a raw faiss IndexFlatIP search on the same arrays.

Baseline: the query/candidate vectors already in memory, `IndexFlatIP.add` + `search(k=1)`.
Measured: the whole library call `run(MineConfig(..., index="flat"))` (rosetta_cli.mining.run): open the stores,
read and normalise features + narrations, build the index, search in blocks with the
tie rule, compute weights, write the pairs store. Runs alternate; medians reported.
Target: ratio <= 1.2.

    python benchmarks/mine_overhead.py            # 8,000 x 100,000, D = 1280 + 384
    python benchmarks/mine_overhead.py --quick    # 2,000 x 40,000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

D_VIS, D_TXT = 1280, 384


def make_stores(root: Path, n_q: int, n_c: int, seed: int = 0) -> dict:
    from rosetta_cli.store import DONE, Store

    rng = np.random.default_rng(seed)
    arrays = {"tr": rng.standard_normal((n_q, D_VIS), dtype=np.float32).astype(np.float16),
              "ego_t": rng.standard_normal((n_q, D_TXT), dtype=np.float32),
              "exo": rng.standard_normal((n_c, D_VIS), dtype=np.float32).astype(np.float16),
              "exo_t": rng.standard_normal((n_c, D_TXT), dtype=np.float32)}
    clips = lambda n, v: pd.DataFrame({"clip_id": [f"{v}{i}" for i in range(n)], "view": v})  # noqa: E731
    ego = Store.create(root / "ego.zarr", kind="features", clips=clips(n_q, "ego"), frames=1, dim=D_VIS, text_dim=D_TXT)
    ego.write_rows(0, text=arrays["ego_t"], status=DONE)
    ego.finalize()
    tr = Store.create(root / "tr.zarr", kind="translations", clips=clips(n_q, "ego"), frames=1, dim=D_VIS)
    tr.write_rows(0, features=arrays["tr"][:, None], status=DONE)
    tr.add_parent("ego", ego)
    exo = Store.create(root / "exo.zarr", kind="features", clips=clips(n_c, "exo"), frames=1, dim=D_VIS, text_dim=D_TXT)
    exo.write_rows(0, features=arrays["exo"][:, None], text=arrays["exo_t"], status=DONE)
    for s in (ego, tr, exo):
        s.finalize()
        s.close()
    return arrays


def combined(vis: np.ndarray, txt: np.ndarray, w: float = 0.5) -> np.ndarray:
    n = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    return np.ascontiguousarray(np.hstack([np.sqrt(1 - w) * n(vis.astype(np.float32)), np.sqrt(w) * n(txt)]))


def raw_faiss(xq: np.ndarray, xb: np.ndarray) -> tuple[float, np.ndarray]:
    import faiss

    t = time.perf_counter()
    index = faiss.IndexFlatIP(xb.shape[1])
    index.add(xb)
    _, I = index.search(xq, 1)
    return time.perf_counter() - t, I[:, 0]


def library(root: Path, run: int) -> tuple[float, np.ndarray]:
    from rosetta_cli.mining import MineConfig
    from rosetta_cli.mining.run import run as mine
    from rosetta_cli.store import Store

    cfg = MineConfig(ego=root / "ego.zarr", exo=root / "exo.zarr", translated=root / "tr.zarr",
                     out=root / f"pairs{run}.zarr", index="flat", strategy="rst", topk=1)
    t = time.perf_counter()
    mine(cfg)
    dt = time.perf_counter() - t
    with Store.open(cfg.out) as s:
        return dt, s.pairs()["candidate_row"].to_numpy()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--queries", type=int, default=8000)
    ap.add_argument("--candidates", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    n_q, n_c = (2000, 40_000) if args.quick else (args.queries, args.candidates)
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        root = Path(tmp)
        arrays = make_stores(root, n_q, n_c)
        xq, xb = combined(arrays["tr"], arrays["ego_t"]), combined(arrays["exo"], arrays["exo_t"])
        base, lib = [], []
        for r in range(args.repeats):
            t, ref = raw_faiss(xq, xb)
            base.append(t)
            t, got = library(root, r)
            lib.append(t)
            agree = float(np.mean(ref == got))
            print(f"run {r}: faiss {base[-1]:.2f} s, rosetta mine {lib[-1]:.2f} s, top-1 agreement {agree:.4f}",
                  file=sys.stderr, flush=True)
    mb, ml = statistics.median(base), statistics.median(lib)
    print(f"\n### rosetta mine overhead: {n_q:,} queries x {n_c:,} candidates, D={D_VIS}+{D_TXT}, "
          f"{args.repeats} alternating runs (medians)\n")
    print("| path | median s | ratio |\n|---|---|---|")
    print(f"| raw faiss IndexFlatIP add+search (baseline) | {mb:.2f} | 1.00 |")
    print(f"| rosetta mine --index flat (stores in, pairs store out) | {ml:.2f} | {ml / mb:.2f} |")
    print(f"\ntop-1 agreement with the baseline: {agree:.4f} (target ratio <= 1.2: "
          f"{'met' if ml / mb <= 1.2 else 'NOT met'})")


if __name__ == "__main__":
    main()
