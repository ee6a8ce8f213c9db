"""The world preconditions a controlled test of the paper's claims needs, as small pure functions.

The paper's claims rest on its data (docs/method.md, "The data regime"): the frozen features of
both views carry the action across settings, and a perfect translator would mine better pairs
than text alone. A world that lacks these cannot judge the method, so `rosetta claims` measures
(P1 on the exo view, the one a wide shot can fail; the ego figure is reported beside it):

- P1 `cross_setting_nn`: for every clip of a view, its nearest neighbour (cosine, frozen features)
  among clips of the same view filmed in *another* setting; the share that shares its keystep,
  against chance (the share of same-keystep clips among those candidates, averaged over queries).
- P2 `pair_precision_top1`: the label precision of top-1 mining with a given query vector; the
  claims compare the true synchronized exo feature (a perfect translator) with text alone.
- P3 the benchmark's size: enough queries and gallery clips that seeds do not swamp the gaps.
"""

from __future__ import annotations

import numpy as np

from rosetta_cli.eval.metrics import l2_normalize

P1_MIN_RATIO = 3.0         # P1: cross-setting nearest-neighbour keystep agreement >= 3x chance
P3_MIN_QUERIES = 500       # P3: benchmark ego queries
P3_MIN_GALLERY = 1000      # P3: benchmark exo gallery clips


def cross_setting_nn(x: np.ndarray, labels: np.ndarray, settings: np.ndarray) -> dict:
    """Nearest-neighbour keystep agreement across settings.

    x [n, d] features (cosine after L2 normalisation); labels [n] int (negative: unlabelled, never a
    query nor a candidate); settings [n] int (e.g. kitchen ids). Each labelled row's candidates are
    the labelled rows of other settings. Returns {"rate", "chance", "ratio", "queries"}; rate and
    chance are fractions, ratio = rate / chance (nan when there is no query).
    """
    x, labels, settings = l2_normalize(np.asarray(x, np.float32)), np.asarray(labels), np.asarray(settings)
    keep = np.flatnonzero(labels >= 0)
    x, labels, settings = x[keep], labels[keep], settings[keep]
    other = settings[:, None] != settings[None, :]                       # [n, n] candidate mask
    has = other.any(axis=1)
    scores = np.where(other, x @ x.T, -np.inf)
    nn = scores.argmax(axis=1)
    same = labels[:, None] == labels[None, :]
    hit = (labels[nn] == labels)[has]
    chance = ((same & other).sum(axis=1) / np.maximum(other.sum(axis=1), 1))[has]
    n = int(has.sum())
    rate, base = (float(hit.mean()), float(chance.mean())) if n else (float("nan"), float("nan"))
    return {"rate": rate, "chance": base, "ratio": rate / base if n and base > 0 else float("nan"), "queries": n}


def mining_vectors(visual: np.ndarray | None, text: np.ndarray | None, text_weight: float) -> np.ndarray:
    """[sqrt(1-W) n(visual), sqrt(W) n(text)]: the vectors `rosetta mine` ranks by (mining.vectors).

    A part with zero weight is left out, so W=1 is text only and W=0 visual only.
    """
    parts = []
    if text_weight < 1:
        parts.append(np.sqrt(1 - text_weight) * l2_normalize(np.asarray(visual, np.float32)))
    if text_weight > 0:
        parts.append(np.sqrt(text_weight) * l2_normalize(np.asarray(text, np.float32)))
    return np.concatenate(parts, axis=1)


def pair_precision_top1(queries: np.ndarray, query_labels: np.ndarray, candidates: np.ndarray,
                        candidate_labels: np.ndarray) -> dict:
    """Label precision of each query's top-1 candidate by inner product.

    queries [n, d], candidates [m, d] (already built by mining_vectors); labels int, negative =
    unknown (such queries are not counted; an unknown candidate counts as a wrong pair).
    Returns {"precision", "pairs", "hits"}: hits [n_counted] bool, for bootstrap intervals.
    """
    ql, cl = np.asarray(query_labels), np.asarray(candidate_labels)
    keep = ql >= 0
    top = (np.asarray(queries, np.float32)[keep] @ np.asarray(candidates, np.float32).T).argmax(axis=1)
    hits = cl[top] == ql[keep]
    return {"precision": float(hits.mean()) if len(hits) else float("nan"), "pairs": int(len(hits)), "hits": hits}
