"""The verdict rules of `rosetta claims`, as small pure functions (written out in claims.md).

An *ordering* "A > B" is judged over seeds:
  - per seed it holds when A's value is strictly above B's (a tie does not hold);
  - it **holds** when the mean difference over seeds is > 0 AND it holds in most seeds
    (strictly more than half); otherwise it is **not shown**.
A claim holds when every ordering it consists of holds.

Margins are given in points and in queries: a difference of d points on a metric measured
over n queries is d * n / 100 queries (for a fraction such as pair precision, d * n).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

HOLDS, NOT_SHOWN = "holds", "not shown"


@dataclass(frozen=True)
class Measure:
    """One number of one run: value (in % or a fraction), and how many queries it is a share of.

    hits: value expressed as a count of queries (value * n / scale), so margins can be given in queries.
    """

    value: float
    n: int
    hits: float


def summary(values: list[float]) -> dict:
    """{"per_seed", "mean", "std"} of a list of per-seed values (std: population, 0 for one seed)."""
    v = np.asarray(values, dtype=float)
    return {"per_seed": [_r(x) for x in v], "mean": _r(float(v.mean())) if len(v) else None,
            "std": _r(float(v.std())) if len(v) else None}


def ordering(a_name: str, b_name: str, a: list[Measure], b: list[Measure]) -> dict:
    """Judge "a > b" over seeds (a[i], b[i] measured on seed i). Returns a JSON-able record."""
    if len(a) != len(b) or not a:
        raise ValueError("an ordering needs one measure per seed on both sides")
    diffs = [x.value - y.value for x, y in zip(a, b)]
    queries = [x.hits - y.hits for x, y in zip(a, b)]
    wins = sum(d > 0 for d in diffs)
    mean = float(np.mean(diffs))
    holds = mean > 0 and wins * 2 > len(diffs)
    return {"order": f"{a_name} > {b_name}", "a": a_name, "b": b_name,
            "diff_per_seed": [_r(d) for d in diffs], "diff_mean": _r(mean),
            "diff_queries_per_seed": [_r(q, 1) for q in queries], "diff_queries_mean": _r(float(np.mean(queries)), 1),
            "queries_per_seed": [x.n for x in a], "seeds_holding": wins, "seeds": len(diffs),
            "verdict": HOLDS if holds else NOT_SHOWN}


def combine(orderings: list[dict]) -> str:
    """A claim made of several orderings holds only when each one does."""
    return HOLDS if orderings and all(o["verdict"] == HOLDS for o in orderings) else NOT_SHOWN


def trend(fractions: list[float], per_seed: list[list[float]]) -> dict:
    """Least-squares slope of value vs fraction (points per 100% of the unpaired data), per seed and of the mean."""
    x = np.asarray(fractions, dtype=float)
    slopes = [float(np.polyfit(x, np.asarray(v, float), 1)[0]) for v in per_seed]
    mean_curve = np.mean(np.asarray(per_seed, float), axis=0)
    steps = np.diff(mean_curve)
    return {"slope_per_seed": [_r(s) for s in slopes], "slope_mean_curve": _r(float(np.polyfit(x, mean_curve, 1)[0])),
            "mean_curve": [_r(v) for v in mean_curve], "mean_curve_monotone": bool((steps >= 0).all())}


def _r(x: float, nd: int = 4):
    return None if x is None or not math.isfinite(x) else round(float(x), nd)
