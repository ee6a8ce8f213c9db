"""Benchmark metrics: small pure numpy functions (no I/O, no randomness).

Ranking convention, shared by retrieval and top-k accuracy: candidates are ordered by
score descending, ties broken by the *lower index first* (what a stable sort of
`-score` gives). The position of candidate j is therefore

    pos(j) = #{i : s_i > s_j} + #{i : s_i == s_j and i < j}

and "a hit in the top k" means the best-placed correct candidate has pos < k. We compute
that position directly (no sort), which is exact, deterministic and O(n*m).
k larger than the number of candidates is clipped to it implicitly (every pos < m).
"""

from __future__ import annotations

import numpy as np

UNMATCHED_POLICIES = ("miss", "exclude")
NO_POSITION = np.iinfo(np.int64).max


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows scaled to unit L2 norm, float32 [n, d]. All-zero rows stay zero (cosine 0 to everything)."""
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(n, eps)


def best_positive_position(scores: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """Position (0-based, tie rule above) of the best-placed positive per row.

    scores [n, m] float; positive [n, m] bool. Returns int64 [n]; rows without a
    positive get NO_POSITION (int64 max: never a hit, whatever k).
    """
    n, m = scores.shape
    masked = np.where(positive, scores, -np.inf)
    best = masked.max(axis=1, initial=-np.inf)[:, None]            # [n, 1] best positive score
    # first (lowest) index among positives that reach the best score
    first = np.argmax(positive & (scores == best), axis=1)[:, None]  # [n, 1]
    higher = (scores > best).sum(axis=1)
    tied_before = ((scores == best) & (np.arange(m)[None, :] < first)).sum(axis=1)
    pos = (higher + tied_before).astype(np.int64)
    return np.where(positive.any(axis=1), pos, NO_POSITION)


def hit_rate_at_k(query: np.ndarray, query_labels: np.ndarray, gallery: np.ndarray,
                  gallery_labels: np.ndarray, ks, *, unmatched: str = "miss",
                  query_groups: np.ndarray | None = None, gallery_groups: np.ndarray | None = None,
                  block_rows: int = 1024) -> dict:
    """HR@k in percent: share of queries with >= 1 same-label gallery item in the top k.

    query [n, d], gallery [m, d]: cosine similarity (rows are L2-normalised here).
    *_labels: int codes in one shared vocabulary (negative = unlabelled, never a hit).
    query_groups [n], gallery_groups [m]: optional int codes (e.g. takes, see data.take_codes; negative =
    none): gallery items of the query's own group are removed from its gallery before ranking (they
    neither hit nor push others down). Without them, every query sees the whole gallery.
    unmatched: queries whose label has no (remaining) gallery item count as misses ("miss", the
    default) or are dropped from the denominator ("exclude").
    Returns {"hr": {k: pct}, "queries": n_counted, "no_positive": n_unmatched,
    "gallery_min": smallest per-query gallery size, "hits": {k: bool [n_counted]}} (hits: each counted
    query's outcome, in query order, for bootstrap intervals; hr[k] = 100 * mean(hits[k])).
    """
    if unmatched not in UNMATCHED_POLICIES:
        raise ValueError(f"unmatched must be one of {UNMATCHED_POLICIES}")
    if (query_groups is None) != (gallery_groups is None):
        raise ValueError("give both query_groups and gallery_groups, or neither")
    q, g = l2_normalize(query), l2_normalize(gallery)
    ql, gl = np.asarray(query_labels), np.asarray(gallery_labels)
    pos = np.empty(len(q), dtype=np.int64)
    has = np.empty(len(q), dtype=bool)
    gallery_min = len(g)
    for s in range(0, len(q), block_rows):  # blocks bound the [block, m] score matrix
        e = min(s + block_rows, len(q))
        scores = q[s:e] @ g.T                                               # [b, m]
        positive = (ql[s:e, None] == gl[None, :]) & (ql[s:e, None] >= 0)    # [b, m]
        if query_groups is not None:
            own = own_group_mask(query_groups[s:e], gallery_groups)          # [b, m]
            scores, positive = np.where(own, -np.inf, scores), positive & ~own
            gallery_min = min(gallery_min, int((~own).sum(axis=1).min(initial=len(g))))
        pos[s:e] = best_positive_position(scores, positive)
        has[s:e] = positive.any(axis=1)
    keep = has if unmatched == "exclude" else np.ones(len(q), dtype=bool)
    denom = max(int(keep.sum()), 1)
    hr = {int(k): 100.0 * float(((pos < k) & keep).sum()) / denom for k in ks}
    hits = {int(k): (pos < k)[keep] for k in ks}
    return {"hr": hr, "queries": int(keep.sum()), "no_positive": int((~has).sum()), "gallery_min": gallery_min,
            "hits": hits}


def own_group_mask(query_groups: np.ndarray, gallery_groups: np.ndarray) -> np.ndarray:
    """bool [n, m]: gallery item j shares query i's group (codes >= 0; a negative code matches nothing).

    An excluded item is scored -inf by the caller: with at least one allowed positive the best positive
    score is finite, so excluded items are never above it nor tied with it (positions unchanged otherwise).
    """
    qg, gg = np.asarray(query_groups), np.asarray(gallery_groups)
    return (qg[:, None] == gg[None, :]) & (qg[:, None] >= 0)


def topk_hits(scores: np.ndarray, y_true: np.ndarray, k: int) -> np.ndarray:
    """bool [n]: is the true class among the top k of scores [n, C] (tie rule above)?

    A class scored -inf is never predicted: a true class with score -inf (e.g. a class
    absent from the classifier's training set) is always a miss. Negative y_true = miss.
    """
    scores = np.asarray(scores, dtype=np.float64)
    y = np.asarray(y_true, dtype=np.int64)
    ok = (y >= 0) & (y < scores.shape[1])
    positive = np.zeros(scores.shape, dtype=bool)
    positive[np.nonzero(ok)[0], y[ok]] = True
    pos = best_positive_position(scores, positive)
    true_score = np.where(ok, scores[np.arange(len(y)), np.clip(y, 0, scores.shape[1] - 1)], -np.inf)
    return (pos < k) & ok & np.isfinite(true_score)


def topk_accuracy(scores: np.ndarray, y_true: np.ndarray, k: int) -> float:
    """Top-k accuracy in percent (see topk_hits). Empty input → nan."""
    if len(y_true) == 0:
        return float("nan")
    return 100.0 * float(topk_hits(scores, y_true, k).mean())


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Percent of exact matches (sklearn's accuracy_score). Empty input → nan."""
    from sklearn.metrics import accuracy_score

    return 100.0 * float(accuracy_score(y_true, y_pred)) if len(y_true) else float("nan")


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean per-class recall in percent, over the classes present in y_true (sklearn's
    balanced_accuracy_score, which leaves out classes only predicted). Empty → nan."""
    import warnings

    from sklearn.metrics import balanced_accuracy_score

    if len(y_true) == 0:
        return float("nan")
    with warnings.catch_warnings():  # "y_pred contains classes not in y_true": those are left out, as documented
        warnings.simplefilter("ignore", UserWarning)
        return 100.0 * float(balanced_accuracy_score(y_true, y_pred))
