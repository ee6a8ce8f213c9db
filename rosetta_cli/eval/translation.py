"""Held-out evaluation of a translator: cosine to the true exo and true-exo retrieval.

Retrieval: each held-out ego clip is a query; the gallery is every held-out exo clip (pooled, raw
units, cosine similarity); the rank of a query is the best rank among the exo clips of its own moment
(same sync_id), under the tie rule of `metrics.best_positive_position`. Reported: R@1, R@5, median
rank, for T(z_ego) and for the raw z_ego as query.
"""

from __future__ import annotations

import numpy as np

from rosetta_cli.eval.metrics import best_positive_position, l2_normalize


def pair_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Mean cosine of aligned rows a[i], b[i]; a, b [n, D]."""
    return float((l2_normalize(a) * l2_normalize(b)).sum(1).mean())


def true_ranks(queries: np.ndarray, gallery: np.ndarray, positives: list[np.ndarray]) -> np.ndarray:
    """1-based rank of the best-placed positive per query. queries [q, D], gallery [g, D], positives: q index arrays."""
    sims = l2_normalize(queries) @ l2_normalize(gallery).T                   # [q, g]
    mask = np.zeros(sims.shape, dtype=bool)
    for i, p in enumerate(positives):
        mask[i, p] = True
    return 1 + best_positive_position(sims, mask)


def retrieval(ranks: np.ndarray) -> dict:
    return {"R@1": float((ranks <= 1).mean()), "R@5": float((ranks <= 5).mean()),
            "median_rank": float(np.median(ranks)), "queries": int(len(ranks))}


def held_out_sets(pairs, max_queries: int | None = None, seed: int = 0):
    """Held-out PairSet items → (ego keys [q, 2], exo keys [g, 2], positives per query, pair_q, pair_g).

    Keys are (store, row); pair_q / pair_g give each kept pair's query / gallery index. With
    max_queries, a seeded subset of ego queries is kept; the gallery stays every held-out exo clip.
    """
    ego_keys, pair_q = np.unique(np.stack([pairs.store, pairs.ego], 1), axis=0, return_inverse=True)
    exo_keys, pair_g = np.unique(np.stack([pairs.store, pairs.exo], 1), axis=0, return_inverse=True)
    pair_q, pair_g = pair_q.ravel(), pair_g.ravel()
    if max_queries and len(ego_keys) > max_queries:
        keep = np.sort(np.random.default_rng(seed).choice(len(ego_keys), max_queries, replace=False))
        remap = np.full(len(ego_keys), -1)
        remap[keep] = np.arange(len(keep))
        sel = remap[pair_q] >= 0
        ego_keys, pair_q, pair_g = ego_keys[keep], remap[pair_q[sel]], pair_g[sel]
    positives = [np.unique(pair_g[pair_q == i]) for i in range(len(ego_keys))]
    return ego_keys, exo_keys, positives, pair_q, pair_g


def chance_recall(n_positives: np.ndarray, gallery: int, k: int) -> float:
    """Expected R@k of a random ranking: mean over queries of 1 - C(g-p, k) / C(g, k) (p positives among g)."""
    p = np.asarray(n_positives, dtype=np.float64)
    miss = np.ones_like(p)
    for i in range(min(k, gallery)):  # C(g-p, k)/C(g, k) = prod_i (g-p-i)/(g-i)
        miss *= np.clip(gallery - p - i, 0, None) / (gallery - i)
    return float((1 - miss).mean()) if len(p) else float("nan")


def chance_median_rank(n_positives: np.ndarray, gallery: int) -> float:
    """Median over queries of the median rank of the best of p positives under a random ranking of g items:
    the smallest r with P(best <= r) = 1 - C(g-p, r)/C(g, r) >= 1/2."""
    if len(n_positives) == 0:
        return float("nan")
    meds = []
    for p in np.asarray(n_positives):
        miss, r = 1.0, 0
        while 1 - miss < 0.5:
            miss *= max(gallery - p - r, 0) / (gallery - r)
            r += 1
        meds.append(r)
    return float(np.median(meds))


def evaluate(ego: np.ndarray, translated: dict[str, np.ndarray], exo: np.ndarray, positives, pair_q, pair_g) -> dict:
    """ego [q, D] pooled held-out queries, translated {name: [q, D]}, exo [g, D] pooled gallery;
    positives / pair_q / pair_g from `held_out_sets`.

    → {"raw_ego": {...}, name: {...}, "chance": {...}}: cosine (mean over held-out pairs) and
    retrieval metrics, and what a random ranking scores on the same queries and gallery.
    """
    out = {}
    for name, q in {"raw_ego": ego, **translated}.items():
        out[name] = {"cosine": pair_cosine(q[pair_q], exo[pair_g]), **retrieval(true_ranks(q, exo, positives))}
    n_pos = np.array([len(p) for p in positives])
    out["chance"] = {"R@1": chance_recall(n_pos, len(exo), 1), "R@5": chance_recall(n_pos, len(exo), 5),
                     "median_rank": chance_median_rank(n_pos, len(exo)),
                     "queries": int(len(n_pos)), "gallery": int(len(exo))}
    return out
