"""Loading the two benchmark views: validation, splits, label codes, embedding in blocks."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from rosetta_cli.errors import DimensionMismatch, PipelineFailure, StoreError, UsageError
from rosetta_cli.eval.split import take_of
from rosetta_cli.store import DONE, Store
from rosetta_cli.store.core import require_finite

KINDS = ("features", "embeddings")
TEST_SPLITS = ("test", "val")  # the Ego-Exo4D importer writes val as test; accept both
# Default binary mapping of Ego-Exo4D proficiency levels (paper: unpublished): the upper two count as skilled.
DEFAULT_SKILLED = ("Intermediate Expert", "Late Expert")


@dataclass
class View:
    """One view's usable rows: done, of this view. Arrays are aligned with `rows`."""

    store: Store
    view: str
    rows: np.ndarray            # int64 [n] store row indices
    clips: pd.DataFrame         # clip table of those rows (index reset)
    label: np.ndarray = field(default=None)  # int64 [n] joint label codes, -1 = none
    skill: np.ndarray = field(default=None)  # int64 [n] 0/1, -1 = none
    dropped: dict = field(default_factory=dict)

    def split_rows(self, names) -> np.ndarray:
        """Positions (into `rows`) whose split is one of names."""
        return np.nonzero(self.clips["split"].str.lower().isin(names).to_numpy())[0]


def open_view(path, view: str, option: str) -> View:
    """Open a features/embeddings store for `view` ('ego'|'exo'); keep done rows of that view.

    Rows with an empty view are taken as the expected view. A store with none of the expected
    view but some of the other one was passed to the wrong option → UsageError.
    """
    store = Store.open(path, kind=KINDS)
    clips = store.clips()
    views = clips["view"].str.lower()
    of_view = (views == view) | (views == "")
    store.require_view(view, option)
    done = store.status() == DONE
    keep = of_view.to_numpy() & done
    dropped = {"other_view": int((~of_view).sum()), "not_done": int((of_view.to_numpy() & ~done).sum())}
    rows = np.nonzero(keep)[0].astype(np.int64)
    if len(rows) == 0:
        raise StoreError(f"{store.path}: no finished {view} rows to benchmark",
                         hint="finish the extraction first (`rosetta extract` resumes)")
    return View(store, view, rows, clips.iloc[rows].reset_index(drop=True), dropped=dropped)


def assign_labels(ego: View, exo: View, need_labels: bool) -> list[str]:
    """Joint label vocabulary (sorted union of both stores' strings); sets View.label codes."""
    vocab = sorted((set(ego.clips["label"]) | set(exo.clips["label"])) - {""})
    index = {v: i for i, v in enumerate(vocab)}
    for v in (ego, exo):
        v.label = np.array([index.get(s, -1) for s in v.clips["label"]], dtype=np.int64)
        if need_labels and (v.label < 0).all():
            raise StoreError(f"{v.store.path}: no clip has a label (action/keystep); retrieval and recognition need them",
                             hint="extract from an annotated dataset (e.g. `rosetta toy` or the Ego-Exo4D keystep importer)")
    return vocab


def assign_skills(ego: View, exo: View, skilled: tuple[str, ...] | None) -> tuple[list[str], list[str]]:
    """Binary skill codes (1 = skilled) from skill strings. Returns (negative, positive) value lists.

    skilled=None: two distinct values → the sorted second one is 1 (accuracy is symmetric anyway);
    the four Ego-Exo4D proficiency levels → DEFAULT_SKILLED; anything else needs --skill-positive.
    """
    values = sorted((set(ego.clips["skill"]) | set(exo.clips["skill"])) - {""})
    if skilled is None:
        if len(values) <= 2:
            skilled = tuple(values[1:])
        elif set(values) <= {"Novice", "Early Expert", *DEFAULT_SKILLED}:
            skilled = DEFAULT_SKILLED
        else:
            raise UsageError(f"skill labels have {len(values)} values {values}; which count as skilled?",
                             hint="pass --skill-positive VALUE[,VALUE...]")
    unknown = set(skilled) - set(values)
    if values and unknown:
        raise UsageError(f"--skill-positive: {sorted(unknown)} not among the skill values {values}")
    for v in (ego, exo):
        s = v.clips["skill"]
        v.skill = np.where(s == "", -1, s.isin(skilled).astype(np.int64)).astype(np.int64)
    return [x for x in values if x not in skilled], [x for x in values if x in skilled]


def take_codes(*views: View) -> list[np.ndarray]:
    """Int codes [n] per view of each row's take in one shared vocabulary; -1 where the sync_id is empty
    (no known take: such a row is never excluded from, nor excludes, another row's gallery)."""
    takes = [take_of(v.clips["sync_id"].to_numpy()) for v in views]
    vocab = {t: i for i, t in enumerate(sorted(set().union(*map(set, takes)) - {""}))}
    return [np.array([vocab.get(t, -1) for t in tk], dtype=np.int64) for tk in takes]


def embed(view: View, encoder=None, block_rows: int | None = None, on_block=None) -> np.ndarray:
    """float32 [n, D] pooled frozen features (encoder None) or [n, d] encoder.encode_video output.

    Reads the store in chunk-aligned blocks and only passes the selected rows to the encoder.
    """
    store, rows = view.store, view.rows
    out = None
    for s, e in store.blocks(block_rows):
        sel = rows[(rows >= s) & (rows < e)]
        if len(sel) == 0:
            continue
        feats = store.features(slice(s, e))[sel - s]
        require_finite(store, feats, sel)
        x = feats.astype(np.float32).mean(axis=1) if encoder is None else _encode(encoder, feats, store)
        if out is None:
            out = np.empty((len(rows), x.shape[1]), dtype=np.float32)
        at = np.searchsorted(rows, sel)
        out[at] = x
        if on_block:
            on_block(len(sel))
    if encoder is None:
        require_finite(store, out, rows)
    elif not np.isfinite(out).all():  # finite inputs (checked per block), so the model itself diverged
        r = int(rows[np.flatnonzero(~np.isfinite(out).all(axis=1))[0]])
        raise PipelineFailure(f"model {getattr(encoder, 'name', '?')!r} gives NaN/Inf for {store.path} row {r}, "
                              "whose features are finite", hint="the model diverged: retrain it with a lower --lr")
    return out


def _encode(encoder, feats: np.ndarray, store: Store) -> np.ndarray:
    x = np.asarray(encoder.encode_video(np.ascontiguousarray(feats, dtype=np.float32)), dtype=np.float32)
    if x.ndim != 2 or x.shape[0] != len(feats):
        raise PipelineFailure(f"model {getattr(encoder, 'name', '?')!r}: encode_video returned shape {x.shape} "
                              f"for {len(feats)} clips", hint="the dual encoder must map [n,T,D] to [n,d]")
    return x


def check_dims(ego: View, exo: View, encoders: list[tuple[str, object]]) -> None:
    """Frozen features must agree in D; each model's input_dim must equal the stores' D."""
    de, dx = ego.store.dim, exo.store.dim
    if de != dx:
        raise DimensionMismatch(f"feature dims differ: {ego.store.path} has D={de}, {exo.store.path} has D={dx}",
                                hint="benchmark stores extracted with the same encoder")
    for name, enc in encoders:
        if int(enc.input_dim) != de:
            raise DimensionMismatch(f"model {name!r} expects input_dim={enc.input_dim}, but the stores have D={de}",
                                    hint="use a model pretrained on features from the same encoder as these stores")


def read_features(view: View, positions: np.ndarray, block_rows: int | None = None) -> np.ndarray:
    """Frame-level features float32 [n, T, D] of View positions (sorted), read block by block."""
    rows = view.rows[positions]
    store = view.store
    out = np.empty((len(rows), store.frames, store.dim), dtype=np.float32)
    for s, e in store.blocks(block_rows):
        hit = (rows >= s) & (rows < e)
        if hit.any():
            out[hit] = store.features(slice(s, e))[rows[hit] - s]
    return out
