"""The verdict rules of `rosetta claims`, as small pure functions (written out in claims.md).

A *comparison* is a linear combination of measures that the claim says is positive: "A > B" is
A - B; "rises with the data" is the least-squares slope over the data fractions; "rises more for
A than for B" is slope(A) - slope(B). Over seeds it **holds** when
  - its mean over seeds is > 0,
  - it is > 0 on most seeds (strictly more than half; a tie is not > 0), and
  - its pooled 95% interval (a bootstrap over queries, every seed resampled, of the mean over
    seeds; eval.intervals) lies above 0;
otherwise it is **not shown**. A claim holds when every comparison it consists of holds.

Every figure also carries its 95% intervals: a bootstrap over queries within each seed, and the
spread over seeds (a Student-t interval of the mean; none for a single seed).
"""

from __future__ import annotations

import math

import numpy as np

from rosetta_cli.eval.intervals import (N_BOOT, Measure, combo, combo_boot, percentile_interval, pooled_boot,
                                        seed_interval, slope_weights)

HOLDS, NOT_SHOWN = "holds", "not shown"


def _r(x, nd: int = 3):
    if x is None:
        return None
    if isinstance(x, (tuple, list)):
        return [_r(v, nd) for v in x]
    return None if not math.isfinite(x) else round(float(x), nd)


def figure(per_seed: list[Measure], n_boot: int = N_BOOT) -> dict:
    """One model's number over seeds: per seed (value, bootstrap interval), mean, seed and pooled intervals."""
    terms = [[(1.0, m)] for m in per_seed]
    vals = [combo(t) for t in terms]
    return {"per_seed": _r(vals, 2), "ci_per_seed": [_r(percentile_interval(combo_boot(t, n_boot, i)), 2)
                                                      for i, t in enumerate(terms)],
            "mean": _r(float(np.mean(vals)), 2), "seed_interval": _r(seed_interval(vals), 2),
            "pooled_interval": _r(percentile_interval(pooled_boot(terms, n_boot)), 2),
            "queries": [int(sum(len(c) for c in m)) for m in per_seed]}


def comparison(statement: str, per_seed_terms: list[list[tuple[float, Measure]]], n_boot: int = N_BOOT) -> dict:
    """Judge "combination > 0" over seeds (per_seed_terms[s] = [(weight, measure), ...] on seed s)."""
    if not per_seed_terms:
        raise ValueError("a comparison needs at least one seed")
    diffs = [combo(t) for t in per_seed_terms]
    pooled = percentile_interval(pooled_boot(per_seed_terms, n_boot))
    wins = sum(d > 0 for d in diffs)
    mean = float(np.mean(diffs))
    holds = mean > 0 and 2 * wins > len(diffs) and pooled[0] > 0
    return {"statement": statement, "diff_per_seed": _r(diffs),
            "ci_per_seed": [_r(percentile_interval(combo_boot(t, n_boot, i))) for i, t in enumerate(per_seed_terms)],
            "diff_mean": _r(mean), "seed_interval": _r(seed_interval(diffs)), "pooled_interval": _r(pooled),
            "seeds_holding": wins, "seeds": len(diffs), "verdict": HOLDS if holds else NOT_SHOWN}


def ordering(a_name: str, b_name: str, a: list[Measure], b: list[Measure], n_boot: int = N_BOOT) -> dict:
    """"a > b": the difference a - b on the same queries, seed by seed."""
    if len(a) != len(b) or not a:
        raise ValueError("an ordering needs one measure per seed on both sides")
    rec = comparison(f"{a_name} > {b_name}", [[(1.0, x), (-1.0, y)] for x, y in zip(a, b)], n_boot)
    return {"order": rec["statement"], "a": a_name, "b": b_name, **rec}


def slope_terms(fractions, curve: list[Measure], sign: float = 1.0) -> list[tuple[float, Measure]]:
    """Terms whose combination is the least-squares slope of the curve over `fractions` (points per 100%)."""
    return [(sign * float(c), m) for c, m in zip(slope_weights(fractions), curve)]


def combine(comparisons: list[dict]) -> str:
    """A claim made of several comparisons holds only when each one does."""
    return HOLDS if comparisons and all(o["verdict"] == HOLDS for o in comparisons) else NOT_SHOWN
