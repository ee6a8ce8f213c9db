"""Mining at the paper's scale: 562,000 ego queries x 1,250,000 exo candidates (D=1280 visual, 384 text).

Generates clustered synthetic stores block by block (so generation never holds a
whole store), then runs the library path end to end as a child process
(`python -m rosetta_cli mine ... --json`) and reports its time, recall@1 against
exact search on sampled queries, and the child's peak RSS.

Synthetic data model (stated, because recall depends on it): every clip belongs to
one of K clusters; its visual feature is (centre + within-cluster variation) in a
64-dim latent space mapped to 1280 dims, plus small isotropic noise; its narration
embedding likewise (32-dim latent → 384). Real frozen features also have fast-
decaying spectra; isotropic high-dimensional noise would make exact top-1 mostly
noise and defeat any dimensionality reduction.

    python benchmarks/mine_scale.py --scale 0.01          # quick
    python benchmarks/mine_scale.py --scale 1.0 --pca 256 # full size
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

FULL_EGO, FULL_EXO, D_VIS, D_TXT = 562_000, 1_250_000, 1280, 384
R_VIS, R_TXT, CLUSTERS = 64, 32, 2000
GEN_BLOCK = 65536


class Generator:
    """Deterministic block-wise features: block b of a side is a function of (seed, side, b) only."""

    def __init__(self, seed: int):
        rng = np.random.default_rng(seed)
        self.seed = seed
        self.bv = (rng.standard_normal((R_VIS, D_VIS)) / np.sqrt(R_VIS)).astype(np.float32)
        self.bt = (rng.standard_normal((R_TXT, D_TXT)) / np.sqrt(R_TXT)).astype(np.float32)
        self.cv = rng.standard_normal((CLUSTERS, R_VIS)).astype(np.float32)
        self.ct = rng.standard_normal((CLUSTERS, R_TXT)).astype(np.float32)

    def block(self, side: int, b: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(visual [n, 1280] fp16, text [n, 384] fp32)."""
        rng = np.random.default_rng([self.seed, side, b])
        c = rng.integers(0, CLUSTERS, n)
        zv = self.cv[c] + 1.0 * rng.standard_normal((n, R_VIS), dtype=np.float32)
        zt = self.ct[c] + 1.0 * rng.standard_normal((n, R_TXT), dtype=np.float32)
        vis = zv @ self.bv + 0.05 * rng.standard_normal((n, D_VIS), dtype=np.float32)
        txt = zt @ self.bt + 0.05 * rng.standard_normal((n, D_TXT), dtype=np.float32)
        return vis.astype(np.float16), txt


def _clips(n: int, view: str) -> pd.DataFrame:
    return pd.DataFrame({"clip_id": [f"{view}{i:07d}" for i in range(n)], "view": view})


def generate(root: Path, n_ego: int, n_exo: int, seed: int) -> dict:
    """Write ego (text only), translations (the queries' visual features) and exo stores."""
    from rosetta_cli.store import DONE, Store

    gen, paths = Generator(seed), {k: root / f"{k}.zarr" for k in ("ego", "tr", "exo")}
    ego = Store.create(paths["ego"], kind="features", clips=_clips(n_ego, "ego"), frames=1, dim=D_VIS,
                       text_dim=D_TXT, overwrite=True)
    tr = Store.create(paths["tr"], kind="translations", clips=_clips(n_ego, "ego"), frames=1, dim=D_VIS,
                      overwrite=True)
    exo = Store.create(paths["exo"], kind="features", clips=_clips(n_exo, "exo"), frames=1, dim=D_VIS,
                       text_dim=D_TXT, overwrite=True)
    for side, stores, n in ((0, (ego, tr), n_ego), (1, (exo,), n_exo)):
        for b, start in enumerate(range(0, n, GEN_BLOCK)):
            vis, txt = gen.block(side, b, min(GEN_BLOCK, n - start))
            if side == 0:
                ego.write_rows(start, text=txt, status=DONE)
                tr.write_rows(start, features=vis[:, None], status=DONE)
            else:
                exo.write_rows(start, features=vis[:, None], text=txt, status=DONE)
    for s in (ego, tr, exo):
        s.finalize()
    tr.add_parent("ego", ego)  # after ego's final revision, so the recorded fingerprint is current
    for s in (ego, tr, exo):
        s.close()
    return {k: str(v) for k, v in paths.items()}


def run_mine(paths: dict, out: Path, args) -> tuple[dict, float, float]:
    """Run `rosetta mine` in a child; (summary JSON, wall seconds, child peak RSS MB)."""
    cmd = [sys.executable, "-m", "rosetta_cli", "mine", "--ego", paths["ego"], "--exo", paths["exo"],
           "--translated", paths["tr"], "--out", str(out), "--overwrite", "--topk", str(args.topk),
           "--index", args.index, "--check-recall", str(args.check_recall), "--json"]
    if args.pca:
        cmd += ["--pca", str(args.pca)]
    for flag in ("nlist", "nprobe"):
        if getattr(args, flag):
            cmd += [f"--{flag}", str(getattr(args, flag))]
    t = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t
    if proc.returncode:
        sys.exit(f"rosetta mine failed with exit code {proc.returncode}")
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return json.loads(proc.stdout), wall, rss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of 562k x 1.25M")
    ap.add_argument("--quick", action="store_true", help="same as --scale 0.01")
    ap.add_argument("--dir", type=Path, default=Path(".bench/mine_scale"))
    ap.add_argument("--index", default="auto")
    ap.add_argument("--pca", type=int, default=256)
    ap.add_argument("--nlist", type=int)
    ap.add_argument("--nprobe", type=int)
    ap.add_argument("--topk", type=int, default=1)
    ap.add_argument("--check-recall", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--reuse-data", action="store_true", help="reuse stores generated by an earlier run at this scale")
    args = ap.parse_args()
    scale = 0.01 if args.quick else args.scale
    n_ego, n_exo = int(FULL_EGO * scale), int(FULL_EXO * scale)
    root = args.dir / f"scale{scale:g}"
    marker = root / "generated.json"
    t = time.perf_counter()
    if args.reuse_data and marker.exists():
        paths, gen_s = json.loads(marker.read_text()), 0.0
    else:
        root.mkdir(parents=True, exist_ok=True)
        paths = generate(root, n_ego, n_exo, args.seed)
        gen_s = time.perf_counter() - t
        marker.write_text(json.dumps(paths))
    print(f"data: {n_ego} queries x {n_exo} candidates, generated in {gen_s:.0f} s", file=sys.stderr, flush=True)
    res, wall, rss = run_mine(paths, root / "pairs.zarr", args)
    report(scale, n_ego, n_exo, res, wall, rss, gen_s, args)


def report(scale, n_ego, n_exo, res, wall, rss, gen_s, args) -> None:
    idx, rec, sec = res["index"], res["recall"] or {}, res["seconds"]
    pca = idx.get("pca") or {}
    exact_est = rec.get("seconds", 0) * n_ego / max(rec.get("queries", 1), 1)
    print(f"\n### rosetta mine at scale {scale:g}: {n_ego:,} queries x {n_exo:,} candidates "
          f"(D={D_VIS}+{D_TXT}, {os.cpu_count()} CPU cores)\n")
    print("| index | nlist | nprobe | PCA dims (energy) | prepare s | search s | recall-check s | write s | "
          "mine total s (wall) | recall@1 vs exact | peak RSS MB | est. exact flat s | speed-up |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    print(f"| {idx['kind']} | {idx.get('nlist', '-')} | {idx.get('nprobe', '-')} | "
          f"{pca.get('dim', '-')} ({pca.get('energy', 1.0):.3f}) | {sec.get('prepare', 0)} | {sec['search']} | "
          f"{sec['recall']} | {sec['write']} | {sec['total']} ({wall:.0f}) | {rec.get('recall@1', float('nan')):.4f} "
          f"({rec.get('queries', 0)} q) | {rss:.0f} | {exact_est:.0f} | {exact_est / max(sec['total'], 1e-9):.1f}x |")
    print(f"\ndata generation {gen_s:.0f} s (not included). 'est. exact flat s' = the recall check's exact"
          f" full-dimension search time per query x queries (includes re-reading the exo store).")


if __name__ == "__main__":
    main()
