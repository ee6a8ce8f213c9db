"""Which rows each task uses, from the clip table's `split` column (documented defaults when missing).

- retrieval: rows of split test (or val) in both views; a view with no test/val rows uses all its rows.
- recognition / skill: train on exo rows of split train, test on ego rows of split test (or val).
  If exo has no train rows or ego has no test rows, both views are split 50/50 by a seeded
  permutation of groups, a group being a sync_id (so the synchronized ego and exo clips of
  one moment land on the same side) or, for rows without a sync_id, the row itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rosetta_cli.bench.data import TEST_SPLITS, View

# retrieval gallery protocols: "all" (the paper's: every clip of the other view, the query's own synchronized
# clips included) or "other-takes" (the query's own take, sync_id prefix before '/', is removed from its gallery)
GALLERIES = ("all", "other-takes")
GALLERY_TEXT = {"all": "every clip of the other view, including the query's own take (the paper's protocol)",
                "other-takes": "the other view's clips of other takes only (the query's own take is excluded)"}


@dataclass
class Plan:
    """Row positions (into View.rows) per task, plus notes on the defaults that applied."""

    ret_ego: np.ndarray
    ret_exo: np.ndarray
    train_exo: np.ndarray   # classifier training rows (exo)
    test_ego: np.ndarray    # classifier test rows (ego)
    notes: list[str] = field(default_factory=list)


def retrieval_rows(v: View, notes: list[str]) -> np.ndarray:
    pos = v.split_rows(TEST_SPLITS)
    if len(pos) == 0:
        notes.append(f"retrieval: {v.view} store has no test/val split rows; all {len(v.rows)} {v.view} rows are used")
        return np.arange(len(v.rows))
    return pos


def group_keys(v: View) -> np.ndarray:
    """sync_id, or a per-row key where it is empty."""
    sync = v.clips["sync_id"].to_numpy(dtype=object)
    own = np.array([f"\x00{v.view}:{r}" for r in v.rows], dtype=object)
    return np.where(sync == "", own, sync)


def fallback_split(ego: View, exo: View, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded 50/50 split of groups: (exo positions in the train half, ego positions in the test half)."""
    ke, kx = group_keys(ego), group_keys(exo)
    keys = np.array(sorted(set(ke) | set(kx)), dtype=object)
    perm = np.random.default_rng(seed).permutation(len(keys))
    train = set(keys[perm[: len(keys) // 2]])
    in_train_x = np.array([k in train for k in kx], dtype=bool)
    in_train_e = np.array([k in train for k in ke], dtype=bool)
    return np.nonzero(in_train_x)[0], np.nonzero(~in_train_e)[0]


def make_plan(ego: View, exo: View, seed: int) -> Plan:
    notes: list[str] = []
    ret_ego, ret_exo = retrieval_rows(ego, notes), retrieval_rows(exo, notes)
    train, test = exo.split_rows(("train",)), ego.split_rows(TEST_SPLITS)
    if len(train) == 0 or len(test) == 0:
        train, test = fallback_split(ego, exo, seed)
        notes.append("classifiers: no exo train / ego test split rows; used a seeded 50/50 split by "
                     f"sync_id (seed {seed}): {len(train)} exo train, {len(test)} ego test rows")
    return Plan(ret_ego, ret_exo, train, test, notes)
