"""`store info` and `store validate`: describe a store, and find every problem in it."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from rosetta_cli.errors import RosettaError
from rosetta_cli.store import schema
from rosetta_cli.store.core import Store


def disk_size(path: Path) -> int:
    """Bytes a store occupies. An HDF5 store is a sparse file (its chunks are allocated, not written,
    at creation), so a file counts its allocated blocks, not its length."""
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
    problems += _check_values(store)
    if store.b.name == "zarr":
        problems += _check_zarr_chunks(store)
    return problems


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
        status = store.status()
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


def _check_zarr_chunks(store: Store) -> list[str]:
    """A done row whose feature chunk file is missing means lost data (zarr would read zeros)."""
    problems = []
    status = store.status()
    for name in ("features", "text"):
        if not store.b.has(name):
            continue
        arr = store.b.get(name)
        c = arr.chunks[0]
        for ci in range(0, -(-store.n_rows // c)):
            if not (status[ci * c:(ci + 1) * c] == schema.DONE).any():
                continue
            key = os.path.join(str(store.path), name, "c", str(ci), *["0"] * (arr.ndim - 1))
            if not os.path.exists(key):
                problems.append(f"{name}: chunk {ci} (rows {ci * c}-{min((ci + 1) * c, store.n_rows)}) is missing on disk")
    return problems


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
