"""World preconditions (eval/preconditions.py) on hand-computed cases, and the claims' equal-epochs plan."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rosetta_cli.eval.preconditions import cross_setting_nn, mining_vectors, pair_precision_top1


def test_cross_setting_nn_counts_neighbours_from_other_settings_only():
    # settings 0,0,1,1; labels 0,1,0,1. Within setting 0, clip 1 is clip 0's twin (same features) but
    # it is never a candidate: only setting 1's clips are.
    x = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.1], [0.1, 1.0]])
    r = cross_setting_nn(x, np.array([0, 1, 0, 1]), np.array([0, 0, 1, 1]))
    # NNs across settings (clips 0 and 1 tie for 2 and 3; the first wins): 0→2 (hit), 1→2 (miss),
    # 2→0 (hit), 3→0 (miss)
    assert r["queries"] == 4
    assert r["rate"] == pytest.approx(2 / 4)
    assert r["chance"] == pytest.approx(0.5)     # one of the two candidates of every query shares its label
    assert r["ratio"] == pytest.approx(1.0)
    # clip 1 moved next to clip 3: now every neighbour shares the keystep, twice chance
    x[1] = [0.0, 1.0]
    r = cross_setting_nn(x, np.array([0, 1, 0, 1]), np.array([0, 0, 1, 1]))
    assert (r["rate"], r["ratio"]) == (1.0, 2.0)


def test_cross_setting_nn_skips_unlabelled_rows_and_single_settings():
    x = np.eye(3)
    r = cross_setting_nn(x, np.array([0, -1, 0]), np.array([0, 1, 1]))
    assert r["queries"] == 2 and r["rate"] == 1.0 and r["chance"] == 1.0  # the unlabelled row is no candidate
    one = cross_setting_nn(x, np.array([0, 1, 0]), np.array([5, 5, 5]))
    assert one["queries"] == 0 and np.isnan(one["ratio"])


def test_mining_vectors_are_a_weighted_sum_of_cosines():
    v, t = np.array([[3.0, 0.0], [0.0, 2.0]]), np.array([[1.0, 1.0], [1.0, -1.0]])
    q = mining_vectors(v[:1], t[:1], 0.25)
    c = mining_vectors(v, t, 0.25)
    # <q, c_j> = 0.75 cos(v0, v_j) + 0.25 cos(t0, t_j): j=0 → 1.0, j=1 → 0.75*0 + 0.25*0 = 0
    assert (q @ c.T).ravel() == pytest.approx([1.0, 0.0])
    assert mining_vectors(None, t, 1.0).shape == (2, 2)   # text only: no visual part
    assert mining_vectors(v, None, 0.0).shape == (2, 2)   # visual only


def test_pair_precision_top1_by_hand():
    q = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    c = np.array([[1.0, 0.0], [0.0, 1.0]])
    r = pair_precision_top1(q, np.array([0, 0, -1]), c, np.array([0, 1]))
    assert r["pairs"] == 2                       # the unknown query is not counted
    assert r["precision"] == 0.5                 # query 0 → cand 0 (label 0, hit), query 1 → cand 1 (label 1, miss)
    assert list(r["hits"]) == [True, False]


def test_equal_epochs_plan_trains_epochs_and_equal_steps_plan_trains_steps():
    from rosetta_cli.demo import claims_config, plan
    from rosetta_cli.pipeline.variants import scaling_slug, scaling_variants

    ep = scaling_variants(30)
    assert set(ep) == {"ours-25-ep", "ours-50-ep", "ours-100-ep", "no-rst-25-ep", "no-rst-50-ep", "no-rst-100-ep",
                       "random-25-ep", "random-50-ep", "random-100-ep", "paired-only-ep"}
    assert all(v.epochs == 30 for v in ep.values())
    assert ep["ours-25-ep"].unpaired_fraction == 0.25 and ep["ours-100-ep"].unpaired_fraction == 1.0
    st = scaling_variants(None)
    assert set(st) == {"ours-25", "ours-50", "no-rst-25", "no-rst-50", "random-25", "random-50"}
    assert all(v.epochs is None for v in st.values())
    # the curves' end points: 0% is the paired-only encoder of the same budget, 100% of equal steps is the variant
    assert [scaling_slug("ours", f, None) for f in (0, 0.25, 1.0)] == ["paired-only", "ours-25", "ours"]
    assert [scaling_slug("random", f, 30) for f in (0, 0.5, 1.0)] == ["paired-only-ep", "random-50-ep", "random-100-ep"]
    stages = {st.output.name: st for st in plan(claims_config(Path("/x"), "medium", 0, 2, 500, 64, 30))}
    epochs_argv, steps_argv = stages["ours-25-ep"].argv, stages["ours-25"].argv
    assert epochs_argv[epochs_argv.index("--epochs") + 1] == "30" and "--steps" not in epochs_argv
    assert steps_argv[steps_argv.index("--steps") + 1] == "500" and "--epochs" not in steps_argv
    assert stages["ours-25-ep"].expect == {"train.batch_size": 64, "train.epochs": 30, "train.steps": None}
    assert stages["ours-25"].expect == {"train.batch_size": 64, "total_steps": 500}
    # random-align aligns at random: no soft weights
    assert "--no-soft" in stages["random"].argv


def test_batch_mix_follows_the_data_unless_fixed():
    from rosetta_cli.contrastive.config import PretrainConfig
    from rosetta_cli.contrastive.batches import _split_batch

    assert _split_batch(PretrainConfig(batch_size=64), 300, 100, 1) == (48, 16)      # 3:1 data → 3:1 batch
    assert _split_batch(PretrainConfig(batch_size=64, paired_ratio=0.5), 300, 100, 1) == (32, 32)
    assert _split_batch(PretrainConfig(batch_size=64), 300, 0, 1) == (64, 0)
    # a source of 1 item in 1,000 would round to 0 of 64: it keeps one rank's share
    assert _split_batch(PretrainConfig(batch_size=64), 999, 1, 1) == (63, 1)
    assert _split_batch(PretrainConfig(batch_size=64), 999, 1, 2) == (62, 2)


def test_chance_of_the_rst_validation_by_hand():
    """A random ranking of g = 200 exo clips with one positive: R@1 = 1/200, R@5 = 5/200, median rank 100
    (P(rank <= r) = r/200 reaches 1/2 at r = 100); two positives: R@1 = 2/200."""
    from rosetta_cli.eval.translation import chance_median_rank, chance_recall

    assert chance_recall(np.array([1]), 200, 1) == pytest.approx(1 / 200)
    assert chance_recall(np.array([1]), 200, 5) == pytest.approx(5 / 200)
    assert chance_recall(np.array([2]), 200, 1) == pytest.approx(2 / 200)
    assert chance_median_rank(np.array([1, 1]), 200) == 100.0
    # two positives: P(best <= 59) = 1 - (141 * 140) / (200 * 199) = 0.504 >= 1/2 > P(best <= 58) = 0.497
    assert chance_median_rank(np.array([2]), 200) == 59.0


def test_mining_outcomes_share_one_query_set():
    """Strategies that paired different queries are compared on the union of their queries with a known
    class, in row order; a missing pair or a candidate of unknown class counts as wrong (as in P2), so a
    paired bootstrap never pairs two different queries."""
    from rosetta_cli.claims.collect import top1_outcomes

    ego_labels = np.array([0, 1, 2, -1])           # query 3 has no known class: never counted
    exo_labels = np.array([0, 1, -1])              # candidate 2 has no known class
    top1 = {"rst": {0: 0, 1: 1, 3: 0},             # query 2 was not paired (e.g. untranslated)
            "text": {0: 1, 1: 2, 2: 0}}
    out = top1_outcomes(top1, ego_labels, exo_labels)
    assert [list(out["rst"][0]), list(out["text"][0])] == [[1, 1, 0], [0, 0, 0]]  # queries 0, 1, 2
