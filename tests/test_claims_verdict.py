"""The verdict rules of `rosetta claims` on hand-computed cases (rosetta_cli/claims/verdict.py)."""

from __future__ import annotations

import pytest

from rosetta_cli.claims.collect import measure
from rosetta_cli.claims.verdict import HOLDS, NOT_SHOWN, Measure, combine, ordering, summary, trend


def _m(v, n=72):
    return Measure(v, n, v * n / 100)


def test_ordering_holds_in_mean_and_most_seeds():
    o = ordering("a", "b", [_m(50), _m(60), _m(40)], [_m(45), _m(58), _m(41)])
    assert o["diff_per_seed"] == [5, 2, -1]
    assert o["diff_mean"] == pytest.approx(2.0)
    assert o["seeds_holding"] == 2
    assert o["diff_queries_per_seed"] == [3.6, 1.4, -0.7]  # 5 points of 72 queries = 3.6 queries
    assert o["verdict"] == HOLDS


def test_ordering_not_shown_when_mean_is_carried_by_one_seed():
    # mean +3 but only one of three seeds holds
    o = ordering("a", "b", [_m(59), _m(40), _m(40)], [_m(40), _m(41), _m(40)])
    assert o["diff_mean"] == pytest.approx(6.0)
    assert o["seeds_holding"] == 1
    assert o["verdict"] == NOT_SHOWN


def test_ordering_tie_and_reverse_are_not_shown():
    assert ordering("a", "b", [_m(50)], [_m(50)])["verdict"] == NOT_SHOWN
    assert ordering("a", "b", [_m(49)], [_m(50)])["verdict"] == NOT_SHOWN
    assert ordering("a", "b", [_m(51)], [_m(50)])["verdict"] == HOLDS
    # two seeds: 1 of 2 is not "most"
    assert ordering("a", "b", [_m(60), _m(49)], [_m(50), _m(50)])["verdict"] == NOT_SHOWN


def test_combine_needs_every_ordering():
    yes, no = {"verdict": HOLDS}, {"verdict": NOT_SHOWN}
    assert combine([yes, yes]) == HOLDS
    assert combine([yes, no]) == NOT_SHOWN
    assert combine([]) == NOT_SHOWN


def test_summary_and_trend():
    s = summary([1.0, 3.0])
    assert (s["mean"], s["std"], s["per_seed"]) == (2.0, 1.0, [1.0, 3.0])
    t = trend([0, 0.5, 1.0], [[10, 20, 30], [10, 10, 10]])
    assert t["slope_per_seed"] == [20.0, 0.0]  # points per 100% of the unpaired data
    assert t["mean_curve"] == [10.0, 15.0, 20.0]
    assert t["slope_mean_curve"] == pytest.approx(10.0)
    assert t["mean_curve_monotone"] is True
    assert trend([0, 1], [[2, 1]])["mean_curve_monotone"] is False


def test_measure_from_bench_results_counts_queries():
    res = {"models": [{"name": "x", "metrics": {"hr@5/ego->exo": 50.0, "hr@5/exo->ego": 25.0, "recognition/top1": 10.0}}],
           "counts": {"retrieval": {"ego->exo": {"queries": 72}, "exo->ego": {"queries": 144}},
                      "recognition": {"test_ego": 70}}}
    hr = measure(res, "x", "avg_hr5")
    assert hr.value == 37.5
    assert hr.n == 216
    assert hr.hits == pytest.approx(36 + 36)  # 50% of 72 + 25% of 144
    rec = measure(res, "x", "recog_top1")
    assert (rec.value, rec.n, rec.hits) == (10.0, 70, pytest.approx(7.0))


def test_stage_reuse_rules(tmp_path):
    """A model of another step budget, or a report older than its models, is not reused."""
    import json
    import os

    from rosetta_cli.demo import Stage

    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"step": 500, "total_steps": 500}))
    assert Stage("p", ["pretrain"], model, expect={"total_steps": 500}).done()
    assert not Stage("p", ["pretrain"], model, expect={"total_steps": 1500}).done()
    report = tmp_path / "results.json"
    report.write_text("{}")
    os.utime(model / "config.json", (1, 1))
    os.utime(report, (2, 2))
    bench = Stage("b", ["bench"], report, inputs=(model / "config.json",))
    assert bench.done()
    os.utime(model / "config.json", (3, 3))  # the model was retrained after the report
    assert not bench.done()
