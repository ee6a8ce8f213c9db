"""The verdict rules and intervals of `rosetta claims` on hand-computed cases
(rosetta_cli/claims/verdict.py, rosetta_cli/eval/intervals.py)."""

from __future__ import annotations

import numpy as np
import pytest

from rosetta_cli.claims.collect import measure
from rosetta_cli.claims.verdict import HOLDS, NOT_SHOWN, combine, comparison, figure, ordering, slope_terms
from rosetta_cli.eval import intervals


def _hits(k: int, n: int = 100) -> tuple:
    """A one-component measure: the first k of n queries hit (value k% of n)."""
    return (np.r_[np.ones(k), np.zeros(n - k)],)


def test_bootstrap_interval_of_a_proportion_matches_the_normal_approximation():
    # 400 queries, 25% hits: the bootstrap 95% interval ≈ p ± 1.96 sqrt(p(1-p)/n) = 25 ± 4.24 points
    m = _hits(100, 400)
    lo, hi = intervals.percentile_interval(intervals.combo_boot([(1.0, m)], n_boot=20000, seed=1))
    assert intervals.value(m) == 25.0
    assert lo == pytest.approx(25 - 4.24, abs=0.45)
    assert hi == pytest.approx(25 + 4.24, abs=0.45)


def test_paired_bootstrap_of_identical_models_has_zero_width():
    """A - A on the same queries is 0 in every replicate: the resampled indices are shared."""
    m = (np.random.default_rng(0).random(50) < 0.4).astype(float),
    reps = intervals.combo_boot([(1.0, m), (-1.0, m)], n_boot=500)
    assert np.all(reps == 0.0)


def test_combination_needs_the_same_queries():
    with pytest.raises(ValueError, match="same queries"):
        intervals.combo_boot([(1.0, _hits(5, 10)), (-1.0, _hits(5, 12))])


def test_seed_interval_is_the_student_t_interval():
    lo, hi = intervals.seed_interval([1.0, 2.0, 3.0])
    # mean 2, sd 1, t(0.975, 2) = 4.3027: 2 ± 4.3027 / sqrt(3)
    assert lo == pytest.approx(2 - 4.3027 / 3 ** 0.5, abs=1e-3)
    assert hi == pytest.approx(2 + 4.3027 / 3 ** 0.5, abs=1e-3)
    assert intervals.seed_interval([5.0]) is None


def test_slope_weights_give_the_least_squares_slope():
    x, y = [0, 0.25, 0.5, 1.0], [10.0, 12.0, 15.0, 19.0]
    c = intervals.slope_weights(x)
    assert float(c @ np.array(y)) == pytest.approx(np.polyfit(x, y, 1)[0])
    # slope_terms over measures: values 10, 20, 30, 50 % on fractions 0, .25, .5, 1 → slope 40 points per 100%
    curve = [_hits(k) for k in (10, 20, 30, 50)]
    assert intervals.combo(slope_terms(x, curve)) == pytest.approx(np.polyfit(x, [10, 20, 30, 50], 1)[0])


def test_ordering_holds_with_mean_most_seeds_and_pooled_interval():
    a = [_hits(60, 400), _hits(64, 400), _hits(58, 400)]  # 15%, 16%, 14.5%
    b = [_hits(20, 400), _hits(22, 400), _hits(61, 400)]  # 5%, 5.5%, 15.25%
    o = ordering("a", "b", a, b, n_boot=2000)
    assert o["diff_per_seed"] == pytest.approx([10.0, 10.5, -0.75])
    assert o["seeds_holding"] == 2
    assert o["pooled_interval"][0] > 0
    assert o["verdict"] == HOLDS


def test_ordering_not_shown_when_the_pooled_interval_reaches_zero():
    """+1 point on 100 queries per seed, on all three seeds: mean and seeds agree, but the interval
    of so small a gain on so few queries includes 0, so it is not shown."""
    a = [(np.r_[np.ones(k), np.zeros(100 - k)],) for k in (11, 11, 11)]
    b = [(np.r_[np.zeros(1), np.ones(10), np.zeros(89)],)] * 3  # 10 hits, different queries from a's first
    o = ordering("a", "b", a, b, n_boot=2000)
    assert o["diff_per_seed"] == pytest.approx([1.0, 1.0, 1.0])
    assert o["seeds_holding"] == 3
    assert o["pooled_interval"][0] <= 0
    assert o["verdict"] == NOT_SHOWN


def test_ordering_tie_and_reverse_are_not_shown():
    assert ordering("a", "b", [_hits(50)], [_hits(50)])["verdict"] == NOT_SHOWN
    assert ordering("a", "b", [_hits(40)], [_hits(90)])["verdict"] == NOT_SHOWN
    assert ordering("a", "b", [_hits(90)], [_hits(40)])["verdict"] == HOLDS
    # two seeds: 1 of 2 is not "most"
    assert ordering("a", "b", [_hits(90), _hits(40)], [_hits(40), _hits(90)])["verdict"] == NOT_SHOWN


def test_comparison_of_slopes():
    """slope(A) > slope(B): A rises 40 points per 100%, B is flat."""
    x = [0, 0.25, 0.5, 1.0]
    a = [_hits(k, 400) for k in (40, 80, 120, 200)]  # 10, 20, 30, 50%
    b = [_hits(80, 400)] * 4
    rec = comparison("slope(a) > slope(b)", [slope_terms(x, a) + slope_terms(x, b, -1.0)])
    assert rec["diff_per_seed"][0] == pytest.approx(np.polyfit(x, [10, 20, 30, 50], 1)[0], abs=1e-3)
    assert rec["verdict"] == HOLDS


def test_figure_records_values_and_intervals():
    f = figure([_hits(30), _hits(50)], n_boot=500)
    assert f["per_seed"] == [30.0, 50.0]
    assert f["mean"] == 40.0
    assert f["queries"] == [100, 100]
    lo, hi = f["seed_interval"]
    assert lo < 40 < hi
    assert f["pooled_interval"][0] < 40 < f["pooled_interval"][1]


def test_combine_needs_every_comparison():
    yes, no = {"verdict": HOLDS}, {"verdict": NOT_SHOWN}
    assert combine([yes, yes]) == HOLDS
    assert combine([yes, no]) == NOT_SHOWN
    assert combine([]) == NOT_SHOWN


def test_measure_reads_per_query_outcomes_from_bench_results():
    res = {"models": [{"name": "x", "metrics": {}, "hits": {"hr@5/ego->exo": "1100", "hr@5/exo->ego": "10000000",
                                                            "recognition/top1": "011"}}]}
    hr = measure(res, "x", "avg_hr5")
    assert [list(c) for c in hr] == [[1, 1, 0, 0], [1, 0, 0, 0, 0, 0, 0, 0]]
    assert intervals.value(hr) == pytest.approx((50 + 12.5) / 2)
    assert intervals.value(measure(res, "x", "recog_top1")) == pytest.approx(200 / 3)


def test_stage_reuse_rules(tmp_path):
    """A model of another step or epoch budget, or a report older than its models, is not reused."""
    import json
    import os

    from rosetta_cli.demo import Stage

    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"step": 500, "total_steps": 500, "train": {"epochs": 30, "steps": None}}))
    assert Stage("p", ["pretrain"], model, expect={"total_steps": 500}).done()
    assert not Stage("p", ["pretrain"], model, expect={"total_steps": 1500}).done()
    assert Stage("p", ["pretrain"], model, expect={"train.epochs": 30, "train.steps": None}).done()
    assert not Stage("p", ["pretrain"], model, expect={"train.epochs": 5, "train.steps": None}).done()
    report = tmp_path / "results.json"
    report.write_text("{}")
    os.utime(model / "config.json", (1, 1))
    os.utime(report, (2, 2))
    bench = Stage("b", ["bench"], report, inputs=(model / "config.json",))
    assert bench.done()
    os.utime(model / "config.json", (3, 3))  # the model was retrained after the report
    assert not bench.done()


def test_a_finished_world_of_other_settings_is_an_error_not_a_redo(tmp_path):
    """Everything downstream was made from the world: a rerun with another scale, seed or protocol into the
    same folder must stop, not re-render the world under stores it no longer matches."""
    import json

    from rosetta_cli.demo import DemoConfig, plan
    from rosetta_cli.errors import UsageError

    toy = plan(DemoConfig(out=tmp_path, scale="small", seed=0))[0]
    toy.output.parent.mkdir(parents=True)
    toy.output.write_text(json.dumps({"scale": "small", "seed": 0, "bench_new_kitchens": 0}))
    assert toy.done()
    other = plan(DemoConfig(out=tmp_path, scale="small", seed=0, held_out_kitchens=2))[0]
    with pytest.raises(UsageError, match="made with other settings"):
        other.done()
