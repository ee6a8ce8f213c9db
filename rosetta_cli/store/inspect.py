"""`store info` and `store validate`: describe a store, and find every problem in it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from rosetta_cli.errors import RosettaError
from rosetta_cli.store import schema
from rosetta_cli.store.core import Store, nonfinite_rows


def disk_size(path: Path) -> int:
    """Bytes a store occupies. An HDF5 store is a sparse file (its chunks are allocated, not written,
    at creation), so a file counts its allocated blocks, not its length."""
    from rosetta_cli.store import remote

    if remote.is_url(path):
        return remote.size(remote.parse(path))
    path = Path(path)
    if path.is_file():
        st = path.stat()
        return min(st.st_size, st.st_blocks * 512) if hasattr(st, "st_blocks") else st.st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def info(store: Store) -> dict:
    """Summary dict; never raises on a damaged store: problems go into `damage`."""
    out = {"path": str(store.path), "backend": store.b.name, "kind": store.kind, "id": store.id,
           "fingerprint": store.fingerprint, "rows": None, "frames": None, "dim": None, "text_dim": None,
           "dtype": None, "status": None, "views": None, "labels": None, "size_bytes": disk_size(store.path),
           "provenance": _provenance(store.meta), "damage": []}
    for key, fn in (("rows", lambda: store.n_rows), ("frames", lambda: store.frames), ("dim", lambda: store.dim),
                    ("text_dim", lambda: store.text_dim), ("dtype", lambda: store.dtype),
                    ("status", store.status_counts), ("views", lambda: _views(store)),
                    ("labels", lambda: _label_counts(store))):
        if store.kind == "pairs" and key in ("frames", "dim", "text_dim", "dtype", "status", "views", "labels"):
            continue
        try:
            out[key] = fn()
        except Exception as e:  # report, don't crash: info must work on damaged stores
            out["damage"].append(f"{key}: {type(e).__name__}: {e}")
    if store.kind == "pairs":
        out["strategy"] = store.meta.get("strategy")
    return out


def _provenance(meta: dict) -> dict:
    keys = ("created", "command", "tool_version", "encoder", "text_encoder", "parents", "revision")
    return {k: meta.get(k) for k in keys}


def _views(store: Store) -> dict:
    v = store.column("view")
    return {name: int((v == name).sum()) for name in schema.VIEWS}


def _label_counts(store: Store) -> dict:
    codes = store.column("label")
    vocab = store.labels
    u, c = np.unique(codes, return_counts=True)
    return {(vocab[i] if 0 <= i < len(vocab) else "(none)"): int(n) for i, n in zip(u, c)}


def validate(store: Store) -> list[str]:
    """Every problem found (empty list = valid)."""
    if store.kind == "pairs":
        return _validate_pairs(store)
    problems = _check_layout(store)
    if problems:
        return problems
    problems += _check_status_chunks(store)
    problems += _check_clips(store)
    problems += _check_values(store)
    problems += [msg for msg, _ in lost_rows(store) if msg]
    return problems


def _check_status_chunks(store: Store) -> list[str]:
    """A missing status chunk silently turns its rows pending: damage wherever status must all exist
    (Store.status_complete) or the rows' features were written."""
    out = []
    c = store.chunk_rows
    feats = {ci for ci, _ in store.b.missing_chunks("features")}
    for ci, f in store.b.missing_chunks("status"):
        if store.status_complete or ci not in feats:
            out.append(f"status: chunk {ci} (rows {ci * c}-{min((ci + 1) * c, store.n_rows) - 1}) is missing on disk "
                       f"({f}); its rows would read as pending")
    return out


def _check_clips(store: Store) -> list[str]:
    """Clip ids unique (stages join on them); times sane: start >= 0 and end >= start (NaN start = from the
    video's start, NaN end = to its end)."""
    out = []
    ids = pd.Series(store.column("clip_id"), dtype=object)
    dup = ids[ids.duplicated(keep=False)]
    if len(dup):
        out.append(f"clips/clip_id: {dup.nunique()} id(s) occur more than once, e.g. {dup.iloc[0]!r} at rows "
                   f"{', '.join(map(str, dup.index[dup == dup.iloc[0]][:3].tolist()))}")
    start, end = store.column("start").astype(np.float64), store.column("end").astype(np.float64)
    for what, bad in (("start is not a finite number >= 0", np.isinf(start) | (start < 0)),
                      ("end is before start", np.isfinite(end) & (end < np.nan_to_num(start))),
                      ("end is infinite", np.isinf(end))):
        rows = np.flatnonzero(bad)
        if len(rows):
            out.append(f"clips: {len(rows)} row(s) where {what}, e.g. row {rows[0]} "
                       f"(start {start[rows[0]]}, end {end[rows[0]]})")
    return out


def _check_layout(store: Store) -> list[str]:
    need = [f"clips/{c}" for c in schema.CLIP_COLUMNS] + ["features", "status", "errors"]
    problems = [f"missing array '{n}'" for n in need if not store.b.has(n)]
    if problems:
        return problems
    n = store.n_rows
    for name in need + (["text"] if store.b.has("text") else []):
        try:
            shape = store.b.get(name).shape
        except Exception as e:
            problems.append(f"array '{name}' unreadable: {e}")
            continue
        if shape[0] != n:
            problems.append(f"array '{name}' has {shape[0]} rows, expected {n}")
    if store.b.get("features").ndim != 3:
        problems.append("features must be [N, T, D]")
    for key in ("frames", "dim", "text_dim"):
        want = store.meta.get(key)
        if want is not None and getattr(store, key) != want:
            problems.append(f"metadata says {key}={want} but arrays have {getattr(store, key)}")
    return problems


def _check_values(store: Store) -> list[str]:
    problems = []
    try:
        status = _raw_status(store)
    except Exception as e:
        return [f"status unreadable: {type(e).__name__}: {e}"]
    bad = set(np.unique(status).tolist()) - set(schema.STATUS_NAMES)
    if bad:
        problems.append(f"status has unknown codes {sorted(bad)}")
    views = set(store.column("view").tolist()) - set(schema.VIEWS) - {""}
    if views:
        problems.append(f"clips/view has values {sorted(views)}; expected ego or exo")
    for start, stop in store.blocks():
        done = status[start:stop] == schema.DONE
        for name in ("features", "text"):
            if name == "text" and not store.b.has("text"):
                continue
            try:
                block = store.b.read(name, slice(start, stop))
            except Exception as e:
                problems.append(f"{name} rows {start}-{stop}: unreadable ({type(e).__name__}: {e})")
                continue
            width = int(np.prod(block.shape[1:]))  # explicit: reshape(0, -1) fails on a block with no done row
            nonfinite = ~np.isfinite(block[done].astype(np.float32)).reshape(int(done.sum()), width).all(axis=1)
            for r in np.flatnonzero(done)[nonfinite][:5]:
                problems.append(f"{name} row {start + r}: NaN/Inf in a done row")
    return problems


def _raw_status(store: Store) -> np.ndarray:
    """status as stored (a missing chunk reads as pending here; _check_status_chunks reports it)."""
    return store.b.read("status")


def lost_rows(store: Store) -> list[tuple[str, np.ndarray]]:
    """(problem, rows) for each missing chunk that holds rows marked done (features, text) and each
    missing status chunk that must exist: the rows `mark_failed` fails."""
    out = []
    status, c, n = _raw_status(store), store.chunk_rows, store.n_rows
    for name in ("features", "text"):
        if not store.b.has(name):
            continue
        cr = store.b.get(name).chunks[0]
        for ci, _ in store.b.missing_chunks(name):
            rows = np.arange(ci * cr, min((ci + 1) * cr, n))
            done = rows[status[rows] == schema.DONE]
            if len(done):
                out.append((f"{name}: chunk {ci} (rows {rows[0]}-{rows[-1]}) is missing on disk; "
                            f"{len(done)} of its rows are marked done", done))
    feats = {ci for ci, _ in store.b.missing_chunks("features")}
    for ci, _ in store.b.missing_chunks("status"):
        if store.status_complete or ci not in feats:
            out.append(("", np.arange(ci * c, min((ci + 1) * c, n))))
    return out


def nonfinite_done(store: Store) -> np.ndarray:
    """Done rows whose features or text hold NaN/Inf (readers refuse them: core.require_finite)."""
    status, out = _raw_status(store), []
    for a, b in store.blocks():
        done = np.flatnonzero(status[a:b] == schema.DONE)
        bad = np.zeros(b - a, bool)
        for name in ("features", "text"):
            if store.b.has(name):
                bad[done] |= nonfinite_rows(store.b.read(name, slice(a, b))[done].astype(np.float32))
        out.append(a + np.flatnonzero(bad))
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def mark_failed(store: Store) -> int:
    """Mark the rows of lost chunks, and done rows holding NaN/Inf, failed (errors say why), so readers skip
    them and `--retry-failed` redoes them. → rows marked.

    Writes whole chunks of `status` and `errors`, which also puts a missing status chunk back."""
    lost = lost_rows(store)
    nan = nonfinite_done(store)
    if len(nan):
        lost.append(("NaN/Inf in a done row's features or text; ", nan))
    if not lost:
        return 0
    status, errors = _raw_status(store), store.b.read("errors")
    for msg, rows in lost:
        status[rows] = schema.FAILED
        errors[rows] = "lost: " + (msg.split(";")[0] if msg else "status chunk missing on disk")
    c = store.chunk_rows
    rows = np.concatenate([r for _, r in lost])
    for ci in sorted({int(r) // c for r in rows}):
        a, b = ci * c, min((ci + 1) * c, store.n_rows)
        store.b.write("errors", slice(a, b), errors[a:b])
        store.b.write("status", slice(a, b), status[a:b])
    store.flush()
    return int(len(np.unique(rows)))


def _validate_pairs(store: Store) -> list[str]:
    problems = []
    lens = {}
    for col in schema.PAIR_COLUMNS:
        try:
            lens[col] = store.b.get(f"pairs/{col}").shape[0]
        except Exception as e:
            problems.append(f"pairs/{col}: missing or unreadable ({type(e).__name__})")
    if len(set(lens.values())) > 1:
        problems.append(f"pairs columns have different lengths: {lens}")
    if not problems:
        try:
            df = store.pairs()
            if not np.isfinite(df["score"].to_numpy(np.float64)).all() and store.meta.get("strategy") != "random":
                problems.append("pairs/score has NaN/Inf")
        except RosettaError as e:
            problems.append(str(e))
    return problems
