"""Benchmarks of `rosetta index` / `rosetta retrieve` (docs/benchmarks.md, "Search").

    python benchmarks/search.py scale --n 1000000 --dim 256 --work /tmp/search-bench
        A 1M-clip synthetic features store (T=1, d=256, clustered) → `rosetta index` in a child process
        (wall time, peak RSS); then stored-row queries against it: latency (median of single queries,
        the store opened per query as `retrieve --store` does) and recall@10 against an exact scan,
        with exact IndexFlatIP latency measured in the same run as the baseline.

    python benchmarks/search.py demo --demo /tmp/search-demo --work /tmp/search-bench [--big /tmp/search-bench/idx]
        On the outputs of `rosetta demo`: indexes over the HTM-AA exo store (frozen features and the
        dual encoders), then every benchmark ego clip (paired store, split test) as a *video* query
        (decoded and encoded again). Label precision@k with the toy world's true labels (world.json).
        Latency: decode + encode alone vs the whole video query, and (with --big) the whole video query
        against the 1M index of `scale` (same d=256 space size; its hits are synthetic clips).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def synth_store(path: Path, n: int, dim: int, seed: int = 0, clusters: int = 20000, block: int = 65536) -> None:
    """n clips = one of `clusters` centres + within-cluster variation (std 0.7), float16 features [n, 1, dim]."""
    import pandas as pd

    from rosetta_cli.store import DONE, Store

    if (path / "zarr.json").exists():
        return
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)).astype(np.float32)
    clips = pd.DataFrame({"clip_id": [f"s{i}" for i in range(n)], "video": "", "start": 0.0, "end": 1.0, "view": "exo"})
    enc = {"name": "synthetic-256", "kind": "visual", "dim": dim, "weights_sha256": "0" * 64}
    s = Store.create(path, kind="features", clips=clips, frames=1, dim=dim, chunk_rows=block, attrs={"encoder": enc})
    for a in range(0, n, block):
        b = min(n, a + block)
        x = centres[rng.integers(0, clusters, b - a)] + 0.7 * rng.normal(size=(b - a, dim)).astype(np.float32)
        s.write_rows(a, features=x[:, None, :], status=DONE)
    s.finalize()


def scale(args) -> dict:
    import faiss

    from rosetta_cli.search.index import read_embeddings, recall_at_k
    from rosetta_cli.search.retrieve import Searcher
    from rosetta_cli.store import Store

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    store, idx = work / "synth.zarr", work / "idx"
    t = time.perf_counter()
    synth_store(store, args.n, args.dim)
    gen_s = time.perf_counter() - t
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    t = time.perf_counter()
    if args.reuse and (idx / "index.json").exists():   # measure queries against the index of an earlier run
        built, build_wall = json.loads((idx / "index.json").read_text()), None
        built = {k: built.get(k) for k in ("index", "calibration", "seconds", "peak_rss_mb", "timings")}
    else:
        out = subprocess.run([sys.executable, "-m", "rosetta_cli", "index", "--store", str(store), "--out", str(idx),
                              "--overwrite", "--json"], capture_output=True, text=True, env=env)
        build_wall = round(time.perf_counter() - t, 1)
        if out.returncode:
            raise SystemExit(out.stderr[-2000:])
        built = json.loads(out.stdout)
    import resource

    child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    t = time.perf_counter()
    s = Searcher.open(idx)
    s.views  # computed once per Searcher
    open_s = time.perf_counter() - t
    x = read_embeddings(Store.open(idx / "embeddings.zarr"))
    rng = np.random.default_rng(1)
    rows = rng.choice(args.n, args.queries, replace=False)
    times, found = [], []
    for r in rows:
        t = time.perf_counter()
        vec, st = s.query_rows(str(store), [int(r)])
        hits = s.search(vec, 10)[0]
        st.close()
        times.append(time.perf_counter() - t)
        found.append([h["id"] for h in hits])
    flat = faiss.IndexFlatIP(x.shape[1])
    flat.add(x)
    exact_t, exact = [], []
    faiss.omp_set_num_threads(1)   # the same single-threaded search as Searcher.search
    for r in rows[:50]:
        t = time.perf_counter()
        _, ids = flat.search(x[r:r + 1], 10)
        exact_t.append(time.perf_counter() - t)
    faiss.omp_set_num_threads(2)
    _, exact = flat.search(x[rows], 10)
    res = {"n": args.n, "dim": args.dim, "generate_s": round(gen_s, 1), "build_wall_s": build_wall,
           "build": built, "child_peak_rss_mb": round(child_peak), "searcher_open_s": round(open_s, 2), "queries": len(rows),
           "row_query_ms_median": round(1000 * float(np.median(times)), 2),
           "row_query_ms_p90": round(1000 * float(np.percentile(times, 90)), 2),
           "exact_flat_ms_median": round(1000 * float(np.median(exact_t)), 2),
           "recall@10_vs_exact": round(recall_at_k(np.array(found), exact), 4)}
    print(json.dumps(res, indent=2))
    return res


def demo(args) -> dict:
    from rosetta_cli.encoders.base import resize_crop
    from rosetta_cli.pipeline.table import layout
    from rosetta_cli.search import index
    from rosetta_cli.search.retrieve import Searcher
    from rosetta_cli.store import DONE, Store
    from rosetta_cli.toy.truth import load_world, true_labels
    from rosetta_cli.video import read_clip

    d, work = Path(args.demo), Path(args.work)
    exo = layout(d)["exo"]
    world = load_world(d / "world")
    spaces = {"frozen": None, **{m: d / "models" / m for m in args.models}}
    paired = Store.open(layout(d)["paired"])
    pc = paired.clips()
    keep = ((pc["view"] == "ego") & (pc["split"] == "test") & (paired.status() == DONE)).to_numpy()
    q = pc[keep].reset_index(drop=True)
    q_true = true_labels(world, d / "world", q)
    exo_true = true_labels(world, d / "world", Store.open(exo).clips())
    chance = float(np.mean([np.mean(exo_true == y) for y in q_true]))
    out = {"queries": len(q), "gallery": int(len(exo_true)), "chance_precision": round(chance, 4), "spaces": {}}
    for name, model in spaces.items():
        idx = work / f"demo-{name}"
        if args.latency_only:
            if not (idx / "index.json").exists():
                index.run(index.IndexConfig(stores=[str(exo)], out=str(idx), model=str(model) if model else None, overwrite=True))
            continue
        index.run(index.IndexConfig(stores=[str(exo)], out=str(idx), model=str(model) if model else None, overwrite=True))
        s = Searcher.open(idx)
        s.visual_encoder()
        prec = {k: [] for k in (1, 5, 10)}
        t_all = []
        for c, y in zip(q.itertuples(), q_true):
            t = time.perf_counter()
            hits = s.search(s.query_video(c.video, c.start, c.end), 10)[0]
            t_all.append(time.perf_counter() - t)
            lab = exo_true[[h["row"] for h in hits]]
            for k in prec:
                prec[k].append(float(np.mean(lab[:k] == y)))
        out["spaces"][name] = {f"P@{k}": round(float(np.mean(v)), 4) for k, v in prec.items()}
        out["spaces"][name]["video_query_ms_median"] = round(1000 * float(np.median(t_all)), 1)
    # latency: decode + encode alone vs the whole query (ours), optionally against the 1M index
    s = Searcher.open(work / f"demo-{args.models[0]}")
    venc = s.visual_encoder()
    t_de, t_q, t_big = [], [], []
    big = Searcher.open(args.big) if args.big else None
    for c in q.itertuples():
        t = time.perf_counter()
        venc.encode_clips(resize_crop(read_clip(c.video, c.start, c.end, s.store0["frames"], s.store0["decoder"]),
                                      venc.preprocess)[None])
        t_de.append(time.perf_counter() - t)
        t = time.perf_counter()
        s.search(s.query_video(c.video, c.start, c.end), 10)
        t_q.append(time.perf_counter() - t)
        if big is not None:
            t = time.perf_counter()
            big.search(s.query_video(c.video, c.start, c.end), 10)  # decode + encode + model (demo) + search (1M)
            t_big.append(time.perf_counter() - t)
    lat = {"decode_encode_ms_median": round(1000 * float(np.median(t_de)), 1),
           "video_query_ms_median": round(1000 * float(np.median(t_q)), 1)}
    lat["ratio"] = round(lat["video_query_ms_median"] / lat["decode_encode_ms_median"], 3)
    if t_big:
        lat["video_query_1M_ms_median"] = round(1000 * float(np.median(t_big)), 1)
        lat["ratio_1M"] = round(lat["video_query_1M_ms_median"] / lat["decode_encode_ms_median"], 3)
    out["latency"] = lat
    print(json.dumps(out, indent=2))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("scale")
    a.add_argument("--n", type=int, default=1_000_000)
    a.add_argument("--dim", type=int, default=256)
    a.add_argument("--queries", type=int, default=200)
    a.add_argument("--work", default="/tmp/search-bench")
    a.add_argument("--reuse", action="store_true", help="query the index already in WORK/idx (no rebuild)")
    b = sub.add_parser("demo")
    b.add_argument("--demo", default="/tmp/search-demo")
    b.add_argument("--work", default="/tmp/search-bench")
    b.add_argument("--models", nargs="+", default=["ours", "paired-only"])
    b.add_argument("--latency-only", action="store_true", help="skip the precision runs (reuse WORK/demo-* indexes)")
    b.add_argument("--big", default=None, help="an index from `scale` (d must equal the model's d)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(2)
    (scale if args.cmd == "scale" else demo)(args)


if __name__ == "__main__":
    main()
