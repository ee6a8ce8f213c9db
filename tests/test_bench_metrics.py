"""rosetta_cli.eval.metrics against full-matrix references, sklearn, and hand-built cases."""

import numpy as np
import pytest

from rosetta_cli.eval import metrics


def ref_hit_rate(q, ql, g, gl, k):
    """Plain reference: full score matrix, stable argsort (ties → lower gallery index), top-k label check."""
    qn = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    gn = g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-12)
    s = (qn.astype(np.float32) @ gn.astype(np.float32).T)
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    hits = (gl[order] == ql[:, None]) & (ql[:, None] >= 0)
    return 100.0 * hits.any(axis=1).mean()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hit_rate_matches_full_matrix_reference(seed):
    rng = np.random.default_rng(seed)
    q, g = rng.normal(size=(57, 8)).astype(np.float32), rng.normal(size=(131, 8)).astype(np.float32)
    ql, gl = rng.integers(0, 9, 57), rng.integers(0, 9, 131)
    ks = [1, 2, 5, 10, 131, 500]
    r = metrics.hit_rate_at_k(q, ql, g, gl, ks, block_rows=16)  # blocks smaller than the query set
    for k in ks:
        assert r["hr"][k] == pytest.approx(ref_hit_rate(q, ql, g, gl, k), abs=1e-9)


def test_hit_rate_with_many_ties_matches_reference():
    """Integer embeddings in a small lattice give exactly tied cosines; the stable-sort rule must agree."""
    rng = np.random.default_rng(3)
    q = rng.integers(-1, 2, size=(80, 3)).astype(np.float32)
    g = rng.integers(-1, 2, size=(90, 3)).astype(np.float32)
    ql, gl = rng.integers(0, 4, 80), rng.integers(0, 4, 90)
    for k in (1, 3, 7):
        assert metrics.hit_rate_at_k(q, ql, g, gl, [k])["hr"][k] == pytest.approx(ref_hit_rate(q, ql, g, gl, k), abs=1e-9)


def test_hit_rate_hand_built():
    g = np.array([[1, 0], [0, 1], [0.8, 0.6]], np.float32)
    gl = np.array([0, 1, 2])
    q = np.array([[0.9, 0.5], [0, 1]], np.float32)   # q0 ranks: g2 (.95..) > g0 > g1; q1: g1 first
    ql = np.array([1, 1])
    r = metrics.hit_rate_at_k(q, ql, g, gl, [1, 2, 3])
    assert r["hr"] == {1: 50.0, 2: 50.0, 3: 100.0}
    assert r["queries"] == 2
    assert r["no_positive"] == 0


def test_ties_lower_gallery_index_wins():
    g = np.array([[1, 0], [1, 0], [2, 0]], np.float32)   # all three tie at cosine 1
    q = np.array([[3, 0]], np.float32)
    assert metrics.hit_rate_at_k(q, np.array([5]), g, np.array([7, 5, 9]), [1, 2])["hr"] == {1: 0.0, 2: 100.0}
    assert metrics.hit_rate_at_k(q, np.array([5]), g, np.array([5, 7, 9]), [1])["hr"] == {1: 100.0}


def test_label_only_in_one_view_miss_or_exclude():
    g = np.eye(3, dtype=np.float32)
    gl = np.array([0, 1, 2])
    q = np.eye(3, dtype=np.float32)[:2].repeat(2, axis=0)    # 4 queries
    ql = np.array([0, 1, 7, 7])                               # label 7 has no gallery item
    miss = metrics.hit_rate_at_k(q, ql, g, gl, [1, 10])
    assert miss["hr"] == {1: 25.0, 10: 50.0}
    assert miss["queries"] == 4
    assert miss["no_positive"] == 2
    excl = metrics.hit_rate_at_k(q, ql, g, gl, [1, 10], unmatched="exclude")
    assert excl["hr"] == {1: 50.0, 10: 100.0}
    assert excl["queries"] == 2
    assert excl["no_positive"] == 2


def test_single_member_class_and_k_beyond_gallery():
    rng = np.random.default_rng(0)
    g = rng.normal(size=(5, 4)).astype(np.float32)
    gl = np.array([0, 1, 1, 1, 1])                             # class 0 has one member
    q = -g[:1]                                                 # its single member ranks last
    r = metrics.hit_rate_at_k(q, np.array([0]), g, gl, [1, 4, 5, 50])
    assert r["hr"] == {1: 0.0, 4: 0.0, 5: 100.0, 50: 100.0}   # k=50 clips to the gallery size 5


def test_unlabelled_and_zero_vectors():
    g = np.array([[1, 0], [0, 0]], np.float32)                 # zero vector: cosine 0 to everything
    gl = np.array([3, 4])
    q = np.array([[0, 0], [-1, 0]], np.float32)
    r = metrics.hit_rate_at_k(q, np.array([4, -1]), g, gl, [1, 2])
    # q0 (zero): both scores 0, tie → index 0 first → miss at 1, hit at 2; q1 unlabelled → never a hit
    assert r["hr"] == {1: 0.0, 2: 50.0}
    assert r["no_positive"] == 1


@pytest.mark.parametrize("k", [1, 3, 5])
def test_topk_accuracy_matches_sklearn(k):
    from sklearn.metrics import top_k_accuracy_score

    rng = np.random.default_rng(k)
    s = rng.normal(size=(300, 12))
    y = rng.integers(0, 12, 300)
    assert metrics.topk_accuracy(s, y, k) == pytest.approx(100 * top_k_accuracy_score(y, s, k=k, labels=np.arange(12)))


def test_topk_tie_rule_and_unseen_classes():
    s = np.array([[1.0, 1.0, 1.0], [0.5, -np.inf, 0.2], [-np.inf, -np.inf, 3.0]])
    # row 0: all tied → order 0,1,2; row 1: class 1 never predicted; row 2: true class 0 unseen
    assert list(metrics.topk_hits(s, np.array([1, 1, 0]), 1)) == [False, False, False]
    assert list(metrics.topk_hits(s, np.array([1, 1, 0]), 2)) == [True, False, False]
    assert list(metrics.topk_hits(s, np.array([0, 2, 2]), 1)) == [True, False, True]
    assert list(metrics.topk_hits(s, np.array([0, 2, 0]), 5)) == [True, True, False]   # k > C clips; -inf never hits


def test_accuracy_and_balanced_accuracy_by_hand():
    y, p = np.array([0, 0, 0, 1]), np.array([0, 0, 1, 1])
    assert metrics.accuracy(y, p) == pytest.approx(75.0)                      # 3 of 4
    assert metrics.balanced_accuracy(y, p) == pytest.approx(100 * (2 / 3 + 1) / 2)  # recall 2/3 (class 0), 1 (class 1)
    # a class only predicted (2) is not a class of the mean: recall of class 0 alone
    assert metrics.balanced_accuracy(np.array([0, 0]), np.array([0, 2])) == pytest.approx(50.0)
    assert np.isnan(metrics.accuracy([], []))
    assert np.isnan(metrics.balanced_accuracy([], []))
    assert np.isnan(metrics.topk_accuracy(np.zeros((0, 3)), np.zeros(0, int), 1))
