"""Benchmark `rosetta bench` at the paper's benchmark size, on CPU.

Paper size: 2,936 ego x 5,872 exo retrieval clips, 188 classes, 18,518 exo training clips;
features D=256 (T=4 frames), one extra model row embedding to d=256.
Baseline (same run): HR@k by a plain full-matrix stable argsort (what the tests use as reference),
against our sort-free rank count in rosetta_cli.eval.metrics.

    python benchmarks/bench.py            # paper size
    python benchmarks/bench.py --quick    # 1/8 size, for a smoke run
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


class ProjectionEncoder:
    """A real (untrained) dual-encoder stand-in: mean over T, fixed random projection to d, L2-normalise."""

    def __init__(self, input_dim: int, dim: int = 256, seed: int = 0):
        self.W = np.random.default_rng(seed).normal(size=(input_dim, dim)).astype(np.float32) / np.sqrt(input_dim)
        self.input_dim, self.dim, self.name = input_dim, dim, "projection"

    def encode_video(self, x: np.ndarray) -> np.ndarray:
        z = x.mean(axis=1) @ self.W
        return z / np.linalg.norm(z, axis=1, keepdims=True)


def reference_hr(q, ql, g, gl, ks):
    """Baseline: full score matrix + stable argsort per query."""
    s = q @ g.T
    order = np.argsort(-s, axis=1, kind="stable")
    hits = gl[order] == ql[:, None]
    first = np.where(hits.any(axis=1), hits.argmax(axis=1), len(gl))
    return {k: 100.0 * float((first < k).mean()) for k in ks}


def timed(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    from rosetta_cli.bench import BenchConfig, run_bench
    from rosetta_cli.eval import metrics
    from rosetta_cli.synthetic.bench_stores import make_stores

    f = 8 if args.quick else 1
    n_ego, n_train, classes = 2936 // f, 18518 // f, 188 // (2 if args.quick else 1)
    tmp = Path(tempfile.mkdtemp(prefix="rosetta-bench-"))
    t0 = time.perf_counter()
    ego, exo = make_stores(tmp, n_ego=n_ego, exo_per_ego=2, n_exo_train=n_train, n_classes=classes, dim=256,
                           frames=4, signal=0.35, noise=1.5, seed=0)
    print(f"stores: {n_ego} ego, {2 * n_ego} exo test + {n_train} exo train, {classes} classes, D=256, T=4 "
          f"(built in {time.perf_counter() - t0:.1f} s); cpu threads {os.cpu_count()}", file=sys.stderr)

    from rosetta_cli.store import Store

    e, x = Store.open(ego), Store.open(exo)
    test = (x.clips()["split"] == "test").to_numpy()
    q, g = metrics.l2_normalize(e.pooled()), metrics.l2_normalize(x.pooled()[test])
    vocab = {v: i for i, v in enumerate(sorted(set(x.clips()["label"])))}
    ql, gl = e.clips()["label"].map(vocab).to_numpy(), x.clips()["label"][test].map(vocab).to_numpy()
    ks = (1, 5, 10)
    t_ref, ref = timed(lambda: reference_hr(q, ql, g, gl, ks), args.repeats)
    t_ours, ours = timed(lambda: metrics.hit_rate_at_k(q, ql, g, gl, ks)["hr"], args.repeats)
    assert all(abs(ref[k] - ours[k]) < 1e-9 for k in ks), (ref, ours)
    rows = [("HR@{1,5,10} ego→exo, full argsort (baseline)", t_ref, 1.0),
            ("HR@{1,5,10} ego→exo, rank count (ours)", t_ours, t_ref / t_ours)]
    run_bench(ego, exo, tmp / "rep", BenchConfig(plots=False, tasks=("skill",)), overwrite=True)  # warm imports
    for label, cfg, encs in (
        ("run_bench frozen only, no plots", BenchConfig(plots=False), []),
        ("run_bench frozen + projection d=256, no plots", BenchConfig(plots=False), [("projection", ProjectionEncoder(256))]),
        ("run_bench frozen + projection d=256, with plots", BenchConfig(), [("projection", ProjectionEncoder(256))]),
    ):
        t, res = timed(lambda: run_bench(ego, exo, tmp / "rep", cfg, encoders=encs, overwrite=True), args.repeats)
        rows.append((label, t, None))
    print(f"\n{'quick' if args.quick else 'paper'} size; medians of {args.repeats} runs\n")
    print("| step | median s | speed-up vs baseline |\n|---|---|---|")
    for label, t, ratio in rows:
        print(f"| {label} | {t:.3f} | {'' if ratio is None else f'{ratio:.1f}x'} |")
    print("\nmetrics (last run):")
    for m in res["models"]:
        print(f"- {m['name']}: " + ", ".join(f"{k}={v:.2f}" for k, v in m["metrics"].items() if v is not None))


if __name__ == "__main__":
    main()
