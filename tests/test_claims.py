"""The paper's claims, measured on the `small` toy world through the demo pipeline (slow: minutes).

1. Label precision of mined pairs: rst > text > random.
2. Downstream HR@5 (mean of both directions): ours >= text-align >= random-align.
3. Ours beats the frozen features.
Margins come from repeated runs of `rosetta demo --seed S` (docs/benchmarks.md, "Paper claims"):
pair precision rst/text/random = 0.608/0.540/0.051 (seed 0), 0.503/0.412/0.036 (seed 1); HR@5 (mean of
both directions) ours/text-align/random-align/frozen = 88.9/90.3/85.1/36.8 (seed 0) and
95.1/91.7/87.8/40.3 (seed 1), 91.3/87.5/79.5/34.0 (seed 2). Ours vs text-align is within noise on seed 0
(-1.4 points, one of 72 ego queries) and ahead on seeds 1 and 2 (+3.5, +3.8), so that order is asserted
within two queries (3 points).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from rosetta_cli.demo import VARIANTS, DemoConfig, run
from rosetta_cli.store import Store
from rosetta_cli.toy.truth import load_world, pair_precision, true_labels


def _hr5(metrics: dict) -> float:
    return (metrics["hr@5/ego->exo"] + metrics["hr@5/exo->ego"]) / 2


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    from rosetta_cli.cli.app import app

    out = tmp_path_factory.mktemp("claims") / "demo"
    run(DemoConfig(out=out, scale="small", seed=0, workers=2), fresh=True,
        call=lambda argv: app(args=argv, standalone_mode=False, prog_name="rosetta"), log=lambda *a: None)
    return out


@pytest.mark.slow
def test_mining_precision_rst_text_random(demo_dir):
    world = load_world(demo_dir / "world")
    ego, exo = Store.open(demo_dir / "features/ego4d.zarr"), Store.open(demo_dir / "features/htm-aa.zarr")
    el, xl = true_labels(world, demo_dir / "world", ego.clips()), true_labels(world, demo_dir / "world", exo.clips())
    assert (el >= 0).mean() > 0.9 and (xl >= 0).mean() > 0.9
    prec = {s: pair_precision(Store.open(demo_dir / f"pairs/{s}-top1.zarr").pairs(), el, xl) for s in ("rst", "text", "random")}
    assert prec["rst"] > prec["text"] + 0.02, prec
    assert prec["text"] > prec["random"] + 0.2, prec


@pytest.mark.slow
def test_downstream_order(demo_dir):
    res = json.loads((demo_dir / "report/results.json").read_text())
    hr = {m["name"]: _hr5(m["metrics"]) for m in res["models"]}
    ours, text, rand = (hr[name] for name, _, _ in (VARIANTS[0], VARIANTS[2], VARIANTS[3]))
    frozen = hr["frozen features"]
    two_queries = 3.0  # 100 / 72 ego queries ≈ 1.4 points each
    assert ours >= text - two_queries, hr
    assert text >= rand, hr
    assert ours > frozen + 30, hr
    assert np.isfinite(list(hr.values())).all()
