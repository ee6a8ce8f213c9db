"""Read one seed's outputs (world truth, pairs stores, bench results) into the numbers the claims use."""

from __future__ import annotations

import json
from pathlib import Path

from rosetta_cli.claims.verdict import Measure
from rosetta_cli.demo import paths
from rosetta_cli.errors import UsageError

METRICS = {"avg_hr5": "HR@5, mean of ego→exo and exo→ego (%)", "recog_top1": "recognition top-1 (%)"}


def mining_precision(seed_dir: Path, strategies) -> dict:
    """{strategy: Measure} label precision of the top-1 pairs, from the toy world's ground truth."""
    from rosetta_cli.store import Store
    from rosetta_cli.toy.truth import load_world, pair_precision, true_labels

    p = paths(seed_dir)
    world = load_world(p["world"])
    with Store.open(p["ego"]) as ego, Store.open(p["exo"]) as exo:
        el, xl = true_labels(world, p["world"], ego.clips()), true_labels(world, p["world"], exo.clips())
    out = {}
    for s in strategies:
        with Store.open(p["pairs"] / f"{s}-top1.zarr") as st:
            pairs = st.pairs()
        top1 = pairs[pairs["rank"] == 0]
        known = int(((el[top1["query_row"].to_numpy()] >= 0) & (xl[top1["candidate_row"].to_numpy()] >= 0)).sum())
        prec = pair_precision(pairs, el, xl)
        out[s] = Measure(prec, known, prec * known)
    return out


def read_results(report_dir: Path) -> dict:
    f = report_dir / "results.json"
    if not f.exists():
        raise UsageError(f"{f}: missing", hint="rerun `rosetta claims` with the same --out to finish the plan")
    return json.loads(f.read_text())


def measure(results: dict, model: str, metric: str) -> Measure:
    """One model's metric from a bench results.json, with its query count."""
    row = next((r for r in results["models"] if r["name"] == model), None)
    if row is None:
        raise UsageError(f"bench results hold no model named {model!r}", hint="rerun `rosetta claims` with --fresh")
    m, counts = row["metrics"], results["counts"]
    if metric == "avg_hr5":
        n1, n2 = counts["retrieval"]["ego->exo"]["queries"], counts["retrieval"]["exo->ego"]["queries"]
        v1, v2 = m["hr@5/ego->exo"], m["hr@5/exo->ego"]
        return Measure((v1 + v2) / 2, n1 + n2, (v1 * n1 + v2 * n2) / 100)
    if metric == "recog_top1":
        n, v = counts["recognition"]["test_ego"], m["recognition/top1"]
        return Measure(v, n, v * n / 100)
    raise ValueError(metric)


def world_summary(seed_dir: Path) -> dict:
    """Counts of the rendered world and of the stores (what the claims were measured on)."""
    from rosetta_cli.store import Store

    p = paths(seed_dir)
    out = {}
    world = json.loads((p["world"] / "world.json").read_text())
    out["scale"] = world.get("scale")
    for role in ("paired", "ego", "exo"):
        with Store.open(p[role]) as st:
            c = st.status_counts()
            out[f"{role}_rows"] = {"done": int(c.get("done", 0)), "failed": int(c.get("failed", 0))}
    return out
