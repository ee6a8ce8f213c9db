"""Why does a claim fail on the toy world? Mining diagnostics for one `rosetta claims` seed folder.

For each mined pairs store: label precision (the claim-1 metric) and the share of pairs whose two
clips come from the same kitchen (a visual match of the *setting* rather than the action). Also
mines two extra RST variants into a scratch folder: vision only (--text-weight 0) and a sweep of W.

    python benchmarks/claims_why.py CLAIMS_OUT/seed-0 [--weights 0,0.25,0.5,0.75,0.9]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np


def diagnose(pairs_path: Path, el, xl, ek, xk) -> dict:
    from rosetta_cli.store import Store
    from rosetta_cli.toy.truth import pair_precision

    with Store.open(pairs_path) as st:
        p = st.pairs()
    p = p[p["rank"] == 0]
    q, c = p["query_row"].to_numpy(), p["candidate_row"].to_numpy()
    return {"pairs": len(p), "label_precision": round(pair_precision(p, el, xl), 3),
            "same_kitchen": round(float((ek[q] == xk[c]).mean()), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("seed_dir", type=Path)
    ap.add_argument("--weights", default="0,0.25,0.5,0.75,0.9")
    a = ap.parse_args()
    from rosetta_cli.store import Store
    from rosetta_cli.toy.truth import kitchen_of, load_world, true_labels

    d = a.seed_dir
    world = load_world(d / "world")
    with Store.open(d / "features/ego4d.zarr") as ego, Store.open(d / "features/htm-aa.zarr") as exo:
        ec, xc = ego.clips(), exo.clips()
    el, xl = true_labels(world, d / "world", ec), true_labels(world, d / "world", xc)
    ek, xk = kitchen_of(world, d / "world", ec), kitchen_of(world, d / "world", xc)
    chance_kitchen = float(np.mean([np.mean(xk == k) for k in ek]))
    out = {"chance_same_kitchen": round(chance_kitchen, 3), "strategies": {}}
    for f in sorted((d / "pairs").glob("*-top1.zarr")):
        out["strategies"][f.name.removesuffix("-top1.zarr")] = diagnose(f, el, xl, ek, xk)
    scratch = d / "why"
    for w in [float(x) for x in a.weights.split(",")]:
        dst = scratch / f"rst-w{w}.zarr"
        if not dst.exists():
            subprocess.run([sys.executable, "-m", "rosetta_cli", "mine", "--ego", str(d / "features/ego4d.zarr"),
                            "--exo", str(d / "features/htm-aa.zarr"), "--translated",
                            str(d / "features/ego4d.translated.zarr"), "--strategy", "rst", "--text-weight", str(w),
                            "--topk", "1", "--out", str(dst)], check=True, capture_output=True)
        out["strategies"][f"rst, text weight {w}"] = diagnose(dst, el, xl, ek, xk)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
