"""The toy world's preconditions on one rendered world, plus the exo store's setting-vs-action diagnostics.

P1-P3 as `rosetta claims` measures them (claims/preconditions.py), and, on the HTM-style exo store,
where a clip's nearest frozen-feature neighbour comes from (same kitchen? same keystep?), with and
without the other-kitchen restriction. Used to judge a change to the world on a held-out seed,
never by the claims' numbers.

    rosetta toy --out W --scale small --seed 7 --check     # renders, extracts W/check/*.zarr, prints P1-P3
    python benchmarks/world_checks.py W                     # the same checks + the HTM-store diagnostics

A folder laid out as a demo/claims seed (world/, features/egoexo4d.zarr, features/htm-aa.zarr) works too.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def stores(d: Path) -> tuple[Path, Path, Path]:
    """(world dir, paired store, exo store) of a `toy --check` world or a demo/claims seed folder."""
    if (d / "check").is_dir():
        return d, d / "check/egoexo4d.zarr", d / "check/htm-aa.zarr"
    from rosetta_cli.pipeline.table import layout

    p = layout(d)
    return p["world"], p["paired"], p["exo"]


def exo_store_diagnostics(world_dir: Path, exo: Path) -> dict:
    from rosetta_cli.eval.metrics import l2_normalize
    from rosetta_cli.eval.preconditions import cross_setting_nn
    from rosetta_cli.store import Store
    from rosetta_cli.toy.truth import kitchen_of, load_world, true_labels

    w = load_world(world_dir)
    with Store.open(exo) as s:
        clips, feats = s.clips(), s.pooled()
    lab, kit = true_labels(w, world_dir, clips), kitchen_of(w, world_dir, clips)
    keep = lab >= 0
    x, k, y = l2_normalize(feats[keep]), kit[keep], lab[keep]
    scores = x @ x.T
    np.fill_diagonal(scores, -np.inf)
    nn = scores.argmax(axis=1)
    return {"nn_same_kitchen": round(float((k[nn] == k).mean()), 4), "nn_same_keystep": round(float((y[nn] == y).mean()), 4),
            "keystep_chance": round(float(np.mean([(y == c).mean() for c in y])), 4),
            "other_kitchen_nn": cross_setting_nn(feats, lab, kit)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path)
    a = ap.parse_args()
    from rosetta_cli.claims.preconditions import measure
    from rosetta_cli.mining.config import default_text_weight

    world, paired, exo = stores(a.folder)
    out = {"preconditions": measure(world, paired, exo, default_text_weight("rst")),
           "htm_store": exo_store_diagnostics(world, exo)}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
