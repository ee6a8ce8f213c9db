"""Peak memory of building an IVF index: faiss's own index.add vs rosetta's add_blocks (sized lists).

    python benchmarks/ivf_memory.py [--n 600000] [--dim 1024] [--storage fp16] [--repeats 3]

Each build runs in its own child process, which generates its blocks from a seed (the data is
never held whole), trains the coarse quantizer on 8 points per list (2 k-means iterations: the
memory question does not depend on the centroids' quality, and a small training set keeps its
freed memory from hiding the adds' peak), adds every block, and reports its
peak RSS (ru_maxrss). Three kinds of child: `train` (no adds: the baseline every build pays),
`plain` (index.add per block, what rosetta did before) and `sized` (mining.index.add_blocks).
The codes themselves take n x dim x 2 bytes (fp16) or x 4 (fp32). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BLOCK = 16384


def child(mode: str, n: int, dim: int, storage: str) -> dict:
    import resource

    import numpy as np

    from rosetta_cli.mining.index import IndexPlan, add_blocks, new_index

    nlist = max(16, round(4 * n ** 0.5))
    plan = IndexPlan("ivf", nlist=nlist, storage=storage)
    index = new_index(plan, dim, seed=0)
    index.cp.niter = 2

    def blocks():
        for b, a in enumerate(range(0, n, BLOCK)):
            x = np.random.default_rng([7, b]).standard_normal((min(BLOCK, n - a), dim), dtype=np.float32)
            yield x / np.linalg.norm(x, axis=1, keepdims=True)

    rng = np.random.default_rng(1)
    train = rng.standard_normal((8 * nlist, dim), dtype=np.float32)
    index.train(train / np.linalg.norm(train, axis=1, keepdims=True))
    del train
    t = time.perf_counter()
    if mode == "plain":
        for x in blocks():
            index.add(x)
    elif mode == "sized":
        for _ in add_blocks(index, blocks):
            pass
    return {"mode": mode, "ntotal": int(index.ntotal), "nlist": nlist, "add_s": round(time.perf_counter() - t, 1),
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=600_000)
    ap.add_argument("--dim", type=int, default=1024)
    ap.add_argument("--storage", choices=("fp16", "fp32"), default="fp16")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.child, a.n, a.dim, a.storage)))
        return
    res: dict[str, list] = {"train": [], "plain": [], "sized": []}
    for r in range(a.repeats):  # interleaved
        for mode in res:
            out = subprocess.run([sys.executable, __file__, "--child", mode, "--n", str(a.n), "--dim", str(a.dim),
                                  "--storage", a.storage], capture_output=True, text=True, check=True)
            res[mode].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(res[mode][-1], flush=True)
    codes = a.n * a.dim * (2 if a.storage == "fp16" else 4) / 2**20
    base = statistics.median(x["peak_mb"] for x in res["train"])
    print(f"\nIVF {a.storage}, {a.n:,} x {a.dim}, nlist {res['train'][0]['nlist']}, blocks of {BLOCK}; codes {codes:,.0f} MB; "
          f"load average {os.getloadavg()[0]:.2f} at the end\n")
    print("| build | peak RSS (MB, median) | runs | over the train-only child | / codes | add s (median) |")
    print("|---|---|---|---|---|---|")
    for mode, runs in res.items():
        peak = statistics.median(x["peak_mb"] for x in runs)
        over = peak - base
        runs_txt = ", ".join(f"{x['peak_mb']:,.0f}" for x in runs)
        print(f"| {mode} | {peak:,.0f} | {runs_txt} | {over:,.0f} | "
              f"{over / codes:.2f} | {statistics.median(x['add_s'] for x in runs)} |")


if __name__ == "__main__":
    main()
