"""P1-P3 of one seed's world, measured on its frozen-feature stores (eval.preconditions has the rules).

- P1 on the paired store: each view's cross-kitchen nearest-neighbour keystep agreement.
- P2 on the benchmark (held-out) takes: mine each ego clip against the unpaired exo pool with the
  true synchronized exo feature as the visual half (a perfect translator), text alone, and the
  true exo feature alone; label precision of the top-1 pairs from the toy world's ground truth.
- P3 the benchmark's ego queries and exo gallery clips.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rosetta_cli.eval.preconditions import (P1_MIN_RATIO, P3_MIN_GALLERY, P3_MIN_QUERIES, cross_setting_nn,
                                            mining_vectors, pair_precision_top1)
from rosetta_cli.store import DONE, Store
from rosetta_cli.toy.truth import kitchen_of, load_world, true_labels

BENCH_SPLITS = ("val", "test")


def measure(world_dir: Path, paired: Path, exo: Path, text_weight: float) -> dict:
    """{"p1", "p2", "p3", "met"}: the three checks of one world, JSON-able."""
    world = load_world(world_dir)
    with Store.open(paired) as ps, Store.open(exo) as xs:
        pc, xc = ps.clips(), xs.clips()
        p_done, x_done = ps.status() == DONE, xs.status() == DONE
        pf, xf = ps.pooled(), xs.pooled()
        pt, xt = ps.text(), xs.text()
    p_lab, p_kit = true_labels(world, world_dir, pc), kitchen_of(world, world_dir, pc)
    p1 = {view: _p1(pf, p_lab, p_kit, p_done & (pc["view"].to_numpy() == view)) for view in ("exo", "ego")}
    p1["met"] = p1["exo"]["ratio"] is not None and p1["exo"]["ratio"] >= P1_MIN_RATIO
    p2 = _p2(pc, pf, pt, p_lab, p_done, xf[x_done], xt[x_done], true_labels(world, world_dir, xc)[x_done], text_weight)
    bench = pc[p_done & np.isin(pc["split"].to_numpy(), BENCH_SPLITS) & (p_lab >= 0)]
    p3 = {"ego_queries": int((bench["view"] == "ego").sum()), "exo_gallery": int((bench["view"] == "exo").sum()),
          "min_queries": P3_MIN_QUERIES, "min_gallery": P3_MIN_GALLERY}
    p3["met"] = p3["ego_queries"] >= P3_MIN_QUERIES and p3["exo_gallery"] >= P3_MIN_GALLERY
    return {"p1": p1, "p2": p2, "p3": p3, "met": bool(p1["met"] and p2["met"] and p3["met"])}


def _p1(feats, labels, kitchens, rows) -> dict:
    r = cross_setting_nn(feats[rows], labels[rows], kitchens[rows])
    # JSON has no NaN: a world with one kitchen has no cross-kitchen neighbour to measure (None)
    return {k: (round(v, 4) if np.isfinite(v) else None) if isinstance(v, float) else v
            for k, v in r.items()} | {"min_ratio": P1_MIN_RATIO}


def _p2(pc, pf, pt, p_lab, p_done, xf, xt, x_lab, w: float) -> dict:
    """Benchmark ego clips as queries; the visual half is the mean of the clip's synchronized exo features."""
    split, view, sync = pc["split"].to_numpy(), pc["view"].to_numpy(), pc["sync_id"].to_numpy()
    ego = np.flatnonzero(p_done & np.isin(split, BENCH_SPLITS) & (view == "ego") & (p_lab >= 0))
    exo_rows = np.flatnonzero(p_done & (view == "exo"))
    by_sync: dict[str, list[int]] = {}
    for r in exo_rows:
        by_sync.setdefault(sync[r], []).append(r)
    ego = np.array([r for r in ego if sync[r] in by_sync], dtype=np.int64)
    true_exo = np.stack([pf[by_sync[sync[r]]].mean(axis=0) for r in ego]) if len(ego) else np.zeros((0, pf.shape[1]))
    out = {"queries": int(len(ego)), "text_weight": w}
    variants = {"perfect_translator": (true_exo, w), "text": (None, 1.0), "true_exo_visual_only": (true_exo, 0.0)}
    for name, (vis, wt) in variants.items():
        q = mining_vectors(vis, pt[ego], wt)
        c = mining_vectors(xf, xt, wt)
        r = pair_precision_top1(q, p_lab[ego], c, x_lab)
        out[name] = {"precision": round(r["precision"], 4) if r["pairs"] else None, "pairs": r["pairs"]}
    out["met"] = bool(out["queries"] and out["perfect_translator"]["precision"] > out["text"]["precision"])
    return out
