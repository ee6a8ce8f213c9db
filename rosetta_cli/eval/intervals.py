"""95% intervals for the claims: a bootstrap over queries within a seed, and the spread over seeds.

A *measure* is the per-query outcomes behind one number of one model on one seed: a tuple of
components, each a float array [n_c] of per-query scores (1/0 hits), and its value is
100 x the mean over components of each component's mean (HR@5 averaged over ego→exo and exo→ego
is two components; recognition top-1 is one).

Every comparison the claims make is a linear combination of measures on the same queries
(A - B; a least-squares slope over data fractions; a difference of slopes), so one bootstrap
serves them all: resample each component's queries with replacement, with the *same* indices
for every model of the seed (a paired bootstrap), and recompute the combination.

- `combo(terms)`: the combination's value on one seed; terms = [(weight, measure), ...].
- `combo_boot(terms, n_boot, seed)`: its bootstrap replicates on one seed [n_boot].
- `pooled_boot(per_seed_terms, ...)`: replicates of the mean over seeds, each seed resampled
  independently with its own queries; its percentile interval is the "pooled interval".
- `percentile_interval(reps)`: the 95% percentile interval of replicates.
- `seed_interval(values)`: mean ± t(0.975, n-1) · sd / sqrt(n) over per-seed values.
"""

from __future__ import annotations

import math

import numpy as np

Measure = tuple  # tuple[np.ndarray, ...]: per-query outcomes, one array per component
Terms = list     # list[tuple[float, Measure]]
LEVEL = 0.95
N_BOOT = 2000


def value(measure: Measure) -> float:
    """100 x mean over components of the component means."""
    return 100.0 * float(np.mean([np.mean(c) for c in measure]))


def combo(terms: Terms) -> float:
    """sum_j w_j * value(measure_j)."""
    return float(sum(w * value(m) for w, m in terms))


def _check_same_queries(terms: Terms) -> list[int]:
    sizes = [len(c) for c in terms[0][1]]
    for _, m in terms:
        if [len(c) for c in m] != sizes:
            raise ValueError("every measure of a combination must hold the same queries (component sizes differ)")
    return sizes


def combo_boot(terms: Terms, n_boot: int = N_BOOT, seed: int = 0) -> np.ndarray:
    """[n_boot] replicates of combo(terms), resampling each component's queries (shared by all terms)."""
    sizes = _check_same_queries(terms)
    rng = np.random.default_rng(seed)
    per_comp = []
    for c, n in enumerate(sizes):
        idx = rng.integers(0, n, size=(n_boot, n))                            # [B, n] shared indices
        # the combination is linear, so combine the per-query scores first: one gather per component
        scores = sum(w * np.asarray(m[c], np.float64) for w, m in terms)       # [n]
        per_comp.append(scores[idx].mean(axis=1))                               # [B]
    return 100.0 * np.mean(per_comp, axis=0)


def pooled_boot(per_seed_terms: list[Terms], n_boot: int = N_BOOT, seed: int = 0) -> np.ndarray:
    """[n_boot] replicates of the mean over seeds of combo(terms_s), each seed resampled independently."""
    reps = [combo_boot(t, n_boot, seed + 7919 * i) for i, t in enumerate(per_seed_terms)]
    return np.mean(reps, axis=0)


def percentile_interval(reps: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    a = (1 - level) / 2
    lo, hi = np.quantile(np.asarray(reps, np.float64), [a, 1 - a])
    return float(lo), float(hi)


def seed_interval(values, level: float = LEVEL) -> tuple[float, float] | None:
    """Student-t interval of the mean over seeds; None for a single seed (no spread to measure)."""
    from scipy import stats

    v = np.asarray(values, np.float64)
    if len(v) < 2:
        return None
    half = stats.t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v))
    return float(v.mean() - half), float(v.mean() + half)


def slope_weights(fractions) -> np.ndarray:
    """c with slope = sum_i c_i y_i for the least-squares line of y over x = fractions."""
    x = np.asarray(fractions, np.float64)
    d = x - x.mean()
    return d / float((d * d).sum())
