"""Read one seed's outputs (world truth, pairs stores, bench results) into the numbers the claims use."""

from __future__ import annotations

import json
from pathlib import Path

from rosetta_cli.demo import paths
from rosetta_cli.errors import UsageError
from rosetta_cli.store import Store
from rosetta_cli.toy.truth import load_world, true_labels

METRICS = {"avg_hr5": "HR@5, mean of ego→exo and exo→ego (%)", "recog_top1": "recognition top-1 (%)"}


def mining_outcomes(seed_dir: Path, strategies) -> dict:
    """{strategy: measure} of the top-1 pairs, on one shared query set: every ego query with a known true
    class that any strategy paired, in row order. An outcome is 1 when the query's top-1 candidate shares
    its true class (toy ground truth) and 0 otherwise: a candidate of unknown class, or no pair at all
    for that query, counts as wrong (as in P2). Its value is the label precision in %."""

    p = paths(seed_dir)
    world = load_world(p["world"])
    with Store.open(p["ego"]) as ego, Store.open(p["exo"]) as exo:
        el, xl = true_labels(world, p["world"], ego.clips()), true_labels(world, p["world"], exo.clips())
    top1 = {}
    for s in strategies:
        with Store.open(p["pairs"] / f"{s}-top1.zarr") as st:
            pairs = st.pairs()
        pairs = pairs[pairs["rank"] == 0]
        top1[s] = dict(zip(pairs["query_row"].to_numpy().tolist(), pairs["candidate_row"].to_numpy().tolist()))
    return top1_outcomes(top1, el, xl)


def top1_outcomes(top1: dict, ego_labels, exo_labels) -> dict:
    """{strategy: ([n] float 1/0,)} over the sorted union of labelled queries. top1: {strategy: {query_row:
    candidate_row}}; *_labels: true classes (negative = unknown)."""
    import numpy as np

    queries = sorted(q for q in set().union(*top1.values()) if ego_labels[q] >= 0)
    out = {}
    for s, best in top1.items():
        hit = [q in best and exo_labels[best[q]] >= 0 and exo_labels[best[q]] == ego_labels[q] for q in queries]
        out[s] = (np.asarray(hit, dtype=np.float64),)
    return out


def read_results(report_dir: Path) -> dict:
    f = report_dir / "results.json"
    if not f.exists():
        raise UsageError(f"{f}: missing", hint="rerun `rosetta claims` with the same --out to finish the plan")
    return json.loads(f.read_text())


HIT_KEYS = {"avg_hr5": ("hr@5/ego->exo", "hr@5/exo->ego"), "recog_top1": ("recognition/top1",)}


def measure(results: dict, model: str, metric: str) -> tuple:
    """One model's per-query outcomes for a metric from a bench results.json: a tuple of float arrays
    (avg_hr5: ego→exo and exo→ego hits; recog_top1: top-1 hits), the same queries for every model."""
    import numpy as np

    row = next((r for r in results["models"] if r["name"] == model), None)
    if row is None:
        raise UsageError(f"bench results hold no model named {model!r}", hint="rerun `rosetta claims` into a new --out")
    hits = row.get("hits") or {}
    missing = [k for k in HIT_KEYS[metric] if not hits.get(k)]
    if missing:
        raise UsageError(f"bench results of {model!r} hold no per-query outcomes for {missing}",
                         hint="rerun the bench stage (delete its report folder) with this version")
    return tuple(np.frombuffer(hits[k].encode(), np.uint8).astype(np.float64) - ord("0") for k in HIT_KEYS[metric])


def world_summary(seed_dir: Path) -> dict:
    """Counts of the rendered world and of the stores (what the claims were measured on)."""

    p = paths(seed_dir)
    out = {}
    world = json.loads((p["world"] / "world.json").read_text())
    out["scale"] = world.get("scale")
    for role in ("paired", "ego", "exo"):
        with Store.open(p[role]) as st:
            c = st.status_counts()
            out[f"{role}_rows"] = {"done": int(c.get("done", 0)), "failed": int(c.get("failed", 0))}
    return out
