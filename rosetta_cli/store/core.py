"""`Store`: the feature store every stage reads and writes (layout: docs/store-format.md).

A row store (kinds features / translations / embeddings) holds, for N clips:
  clips/<col>  [N]        the clip table (see schema.CLIP_COLUMNS)
  features     [N, T, D]  frame-level features (fp16 by default)
  text         [N, Dt]    narration embeddings (optional)
  status       [N] uint8  0 pending / 1 done / 2 failed
  errors       [N] str    message for failed rows
A pairs store holds pairs/<col> [M] instead (schema.PAIR_COLUMNS).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pandas as pd

from rosetta_cli.errors import InputNotFound, StoreError, UsageError
from rosetta_cli.provenance import base_attrs, fingerprint_of, new_id, now_iso
from rosetta_cli.runtime.guard import Action, output_action
from rosetta_cli.store import remote
from rosetta_cli.store import schema
from rosetta_cli.store.backends import BACKENDS


def _backend_name(path: Path) -> str:
    name = schema.backend_for(path)
    if name is None:
        raise UsageError(f"{path}: unknown store suffix", hint="use a path ending in .zarr (default) or .h5")
    return name


class Store:
    """An open store. Create with `Store.create`, open with `Store.open` (or `open_store`)."""

    def __init__(self, path: Path, backend, meta: dict, writable: bool):
        self.path = remote.as_path(path)  # a Path, or a remote.StoreURL
        self.b = backend
        self.meta = meta
        self.writable = writable

    # ------------------------------------------------------------------ open/create
    @classmethod
    def open(cls, path, mode: str = "r", kind: str | Iterable[str] | None = None) -> "Store":
        path = remote.as_path(path)
        if isinstance(path, remote.StoreURL):
            if _backend_name(path) == "zarr":
                remote.check_complete(path)  # never read a half-uploaded store as complete
            elif not path.exists():
                raise InputNotFound(f"{path}: no such store", hint="check the URL (and your credentials)")
        elif not path.exists():
            raise InputNotFound(f"{path}: no such store", hint="check the path, or create it with `rosetta extract`")
        elif (path / remote.MARKER).exists():  # a `rosetta store pull` that did not finish
            raise StoreError(f"{path}: incomplete store (a copy into it did not finish)",
                             hint="rerun the `rosetta store pull` (it resumes), or delete the folder")
        backend = BACKENDS[_backend_name(path)](path, mode)
        meta = backend.meta()
        if not isinstance(meta, dict) or meta.get("format") != schema.FORMAT:
            backend.close()
            raise StoreError(f"{path}: not a rosetta store (no '{schema.META_KEY}' metadata with format '{schema.FORMAT}')",
                             hint="give a store written by rosetta, or bring foreign features in with `rosetta store import`")
        if meta.get("format_version", 0) > schema.FORMAT_VERSION:
            backend.close()
            raise StoreError(f"{path}: store format v{meta.get('format_version')} is newer than this rosetta (v{schema.FORMAT_VERSION})",
                             hint="upgrade rosetta")
        store = cls(path, backend, meta, writable=mode != "r")
        if kind is not None:
            try:
                store.require_kind(kind)
            except StoreError:
                store.close()
                raise
        return store

    @classmethod
    def create(cls, path, *, kind: str, clips: pd.DataFrame | None = None, frames: int | None = None,
               dim: int | None = None, text_dim: int | None = None, dtype: str = "float16",
               chunk_rows: int = schema.DEFAULT_CHUNK_ROWS, attrs: dict | None = None, config=None,
               overwrite: bool = False, codec: str = schema.DEFAULT_CODEC) -> "Store":
        """Create a row store with N = len(clips) rows, all pending. clips: DataFrame with CLIP_COLUMNS.

        codec: compression of `features` ("lz4", "zstd" or "none"; HDF5 uses lzf unless "none").
        """
        if kind not in schema.ROW_KINDS:
            raise UsageError(f"cannot create a row store of kind {kind!r}")
        path = cls._prepare_path(path, overwrite)
        table, labels, skills = encode_clips(clips)
        n = len(table["clip_id"])
        meta = cls._new_meta(kind, config, attrs, chunk_rows)
        meta.update(labels=labels, skills=skills, frames=frames, dim=dim, text_dim=text_dim, dtype=dtype, codec=codec)
        backend = cls._new_backend(path)
        c = chunk_rows
        for col in schema.CLIP_COLUMNS:
            backend.create(f"clips/{col}", (n,), _clip_dtype(col), (c,))
            if n:
                backend.write(f"clips/{col}", slice(None), table[col])
        # The row arrays stages fill chunk by chunk: HDF5 allocates them in full now (durability,
        # see backends.HDF5Backend); text and status take the backend's default codec.
        backend.create("features", (n, frames, dim), dtype, (c, frames, dim), codec=codec, incremental=True)
        if text_dim:
            backend.create("text", (n, text_dim), "float32", (c, text_dim), incremental=True)
        backend.create("status", (n,), "uint8", (c,), incremental=True)
        backend.create("errors", (n,), "str", (c,), incremental=True)
        if n:
            backend.write("errors", slice(None), np.array([""] * n, dtype=object))
            # every status chunk exists from now on, so a missing one is damage (Store.status)
            backend.write("status", slice(None), np.zeros(n, np.uint8))
        meta["status_prefilled"] = True
        backend.set_meta(meta)
        cls._created(path)
        return cls(path, backend, meta, writable=True)

    @classmethod
    def create_pairs(cls, path, table: pd.DataFrame, *, attrs: dict | None = None, config=None,
                     chunk_rows: int = 65536, overwrite: bool = False) -> "Store":
        """Create a pairs store from a DataFrame with schema.PAIR_COLUMNS."""
        missing = [c for c in schema.PAIR_COLUMNS if c not in table.columns]
        if missing:
            raise UsageError(f"pairs table lacks columns {missing}")
        path = cls._prepare_path(path, overwrite)
        meta = cls._new_meta("pairs", config, attrs, chunk_rows)
        backend = cls._new_backend(path)
        n = len(table)
        for col, dt in schema.PAIR_COLUMNS.items():
            backend.create(f"pairs/{col}", (n,), dt, (chunk_rows,))
            if n:
                vals = table[col].to_numpy()
                backend.write(f"pairs/{col}", slice(None), vals.astype(object) if dt == "str" else vals.astype(dt))
        meta["revision"] = new_id()
        backend.set_meta(meta)
        cls._created(path)
        return cls(path, backend, meta, writable=True)

    @staticmethod
    def _prepare_path(path, overwrite: bool) -> Path:
        path = remote.as_path(path)
        _backend_name(path)
        if output_action(path, path.exists(), what="a store", overwrite=overwrite, resumable=False) is Action.REPLACE:
            BACKENDS[_backend_name(path)].remove(path)
        if not isinstance(path, remote.StoreURL):
            path.parent.mkdir(parents=True, exist_ok=True)
        return path

    @staticmethod
    def _new_backend(path):
        """The backend of a new store. At a URL (no rename on object stores) the store is built in place
        under the incomplete marker, which `_created` removes: a crash leaves a store every reader refuses."""
        backend = BACKENDS[_backend_name(path)](path, "w")
        if isinstance(path, remote.StoreURL):
            remote.write_marker(path, "a store creation")
        return backend

    @staticmethod
    def _created(path) -> None:
        if isinstance(path, remote.StoreURL):
            remote.remove_marker(path)

    @staticmethod
    def _new_meta(kind: str, config, attrs: dict | None, chunk_rows: int) -> dict:
        meta = {"format": schema.FORMAT, "format_version": schema.FORMAT_VERSION, **base_attrs(kind, config)}
        meta.update(chunk_rows=chunk_rows, parents=[], encoder=None, text_encoder=None, revision=None)
        meta.update(attrs or {})
        return meta

    # ------------------------------------------------------------------ metadata
    @property
    def kind(self) -> str:
        return self.meta["kind"]

    @property
    def id(self) -> str:
        return self.meta["id"]

    @property
    def fingerprint(self) -> str:
        """Changes whenever the content is rewritten (new id) or finalized again (new revision)."""
        return fingerprint_of(self.meta["id"], self.meta.get("revision"))

    @property
    def chunk_rows(self) -> int:
        return int(self.meta.get("chunk_rows", schema.DEFAULT_CHUNK_ROWS))

    @property
    def n_rows(self) -> int:
        name = "pairs/query_row" if self.kind == "pairs" else "status"
        return int(self.b.get(name).shape[0])

    def __len__(self) -> int:
        return self.n_rows

    @property
    def frames(self) -> int:
        return int(self.b.get("features").shape[1])

    @property
    def dim(self) -> int:
        return int(self.b.get("features").shape[2])

    @property
    def text_dim(self) -> int | None:
        return int(self.b.get("text").shape[1]) if self.b.has("text") else None

    @property
    def dtype(self) -> str:
        return str(self.b.get("features").dtype)

    @property
    def labels(self) -> list[str]:
        return list(self.meta.get("labels") or [])

    @property
    def skills(self) -> list[str]:
        return list(self.meta.get("skills") or [])

    def require_kind(self, kinds: str | Iterable[str]) -> None:
        kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
        if self.kind not in kinds:
            raise StoreError(f"{self.path}: is a {self.kind!r} store, but this needs {' or '.join(map(repr, kinds))}",
                             hint="check which store you passed to which option")

    def require_view(self, view: str, option: str, hint: str = "swap --ego and --exo") -> None:
        """Refuse a store given for `view` ("ego" or "exo") that was made for the other role (`role`
        metadata) or holds only the other view's clips. Stages would otherwise run on it without an
        error, e.g. mine an ego store against itself (every clip its own pair, score 1.0)."""
        other = "exo" if view == "ego" else "ego"
        role = self.meta.get("role")
        views = pd.Series(self.column("view"), dtype=object).astype(str).str.lower()
        only_other = not ((views == view) | (views == "")).any() and bool((views == other).any())
        if role == other or only_other:
            what = f"it was made as the {other!r} store (role)" if role == other else f"its clips are all {other!r} views"
            raise StoreError(f"{self.path}: given as {option}, but {what}", hint=hint)

    def update_meta(self, **fields) -> None:
        self.meta.update(fields)
        self.b.set_meta(self.meta)

    def add_parent(self, role: str, other: "Store | dict") -> None:
        entry = other if isinstance(other, dict) else parent_entry(role, other)
        parents = [p for p in self.meta.get("parents", []) if p.get("role") != role]
        self.update_meta(parents=parents + [entry])

    def finalize(self) -> None:
        """Mark the content as changed: new revision → new fingerprint (for staleness)."""
        self.update_meta(revision=new_id(), finalized=now_iso())

    def close(self) -> None:
        self.b.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ reading
    def clips(self, rows=slice(None)) -> pd.DataFrame:
        """Clip table; label/skill decoded to strings ('' for none), plus label_id/skill_id codes."""
        data = {col: self.b.read(f"clips/{col}", rows) for col in schema.CLIP_COLUMNS}
        df = pd.DataFrame(data)
        for col in ("label", "skill"):
            codes = df[col].to_numpy().astype(np.int64)
            df[f"{col}_id"] = codes
            df[col] = self._decode(col, codes)
        return df

    def names(self, col: str, rows=slice(None)) -> np.ndarray:
        """One vocabulary column ("label" or "skill") decoded to strings ('' for none), [n] object;
        what clips()[col] holds, without reading the other columns."""
        return self._decode(col, self.column(col, rows).astype(np.int64))

    def _decode(self, col: str, codes: np.ndarray) -> np.ndarray:
        vocab = {"label": self.labels, "skill": self.skills}[col]
        lut = np.array(list(vocab) + [""], dtype=object)
        return lut[np.where(codes < 0, len(vocab), codes)]

    def column(self, col: str, rows=slice(None)) -> np.ndarray:
        return self.b.read(f"clips/{col}", rows)

    def features(self, rows=slice(None)) -> np.ndarray:
        """[n, T, D] in the stored dtype. A done row whose chunk file is gone raises StoreError."""
        out = self.b.read("features", rows)
        self._check_chunks("features", rows)
        return out

    def _check_chunks(self, name: str, rows) -> None:
        """Refuse to hand out zeros for rows marked done whose chunk file is missing: that is damage
        (a deleted or lost file), not a fill value. Chunks of rows not done are just never written."""
        missing = self.b.missing_chunks(name, rows)
        if not missing:
            return
        status, c = self.status(), self.b.get(name).chunks[0]
        for ci, f in missing:
            lo, hi = ci * c, min((ci + 1) * c, len(status))
            done = int((status[lo:hi] == schema.DONE).sum())
            if done:
                raise StoreError(f"{f}: chunk file missing, but {done} of its rows ({lo}-{hi - 1}) are marked done",
                                 hint=self.lost_hint())

    def pooled(self, rows=slice(None)) -> np.ndarray:
        """Clip-level features: mean over T, float32 [n, D]."""
        return self.features(rows).astype(np.float32).mean(axis=1)

    def text(self, rows=slice(None)) -> np.ndarray:
        if not self.b.has("text"):
            raise StoreError(f"{self.path}: has no text embeddings",
                             hint="extract or import with a text encoder (e.g. --text-encoder minilm)")
        out = self.b.read("text", rows).astype(np.float32)
        self._check_chunks("text", rows)
        return out

    def status(self, rows=slice(None)) -> np.ndarray:
        """[n] uint8. A missing status chunk of a store whose status is all written raises StoreError:
        its rows would silently read as pending."""
        out = self.b.read("status", rows)
        if self.status_complete:
            missing = self.b.missing_chunks("status", rows)
            if missing:
                c = self.chunk_rows
                ci, f = missing[0]
                raise StoreError(f"{f}: status chunk missing (rows {ci * c}-{min((ci + 1) * c, self.n_rows) - 1} "
                                 "would read as pending)", hint=self.lost_hint())
        return out

    def lost_hint(self) -> str:
        """The fix for a lost chunk file (one wording for every reader)."""
        return (f"restore the file, or run `rosetta store validate {self.path} --mark-failed` and redo those rows: "
                "`rosetta extract ... --retry-failed` or `rosetta store import ... --resume`")

    @property
    def status_complete(self) -> bool:
        """Whether every status chunk must exist: written at creation (`status_prefilled`), or finalized."""
        return bool(self.meta.get("status_prefilled") or self.meta.get("finalized"))

    def errors(self, rows=slice(None)) -> np.ndarray:
        return self.b.read("errors", rows)

    def done_mask(self) -> np.ndarray:
        return self.status() == schema.DONE

    def trainable_mask(self) -> np.ndarray:
        """[N] bool: done rows outside the benchmark splits (schema.EVAL_SPLITS); what training may use."""
        # pandas: hash lookups (np.char.lower + np.isin took ~2 s per call on 1.7M rows)
        split = pd.Series(self.column("split"), dtype=object).astype(str).str.lower()
        return self.done_mask() & ~split.isin(schema.EVAL_SPLITS).to_numpy()

    def pairs(self) -> pd.DataFrame:
        self.require_kind("pairs")
        return pd.DataFrame({c: self.b.read(f"pairs/{c}") for c in schema.PAIR_COLUMNS})

    def status_counts(self) -> dict:
        st = self.status()
        return {name: int((st == code).sum()) for code, name in schema.STATUS_NAMES.items()}

    def blocks(self, block_rows: int | None = None, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, int]]:
        """Chunk-aligned (start, stop) row ranges covering [start, stop)."""
        step = block_rows or self.chunk_rows
        stop = self.n_rows if stop is None else stop
        for s in range(start, stop, step):
            yield s, min(s + step, stop)

    # ------------------------------------------------------------------ writing
    def write_rows(self, start: int, *, features=None, text=None, status=None, errors=None) -> None:
        """Write rows [start, start+n): features [n, T, D], text [n, Dt], errors [n] str, status [n] or scalar.

        Content first, status last, each made durable before the next (backend.flush: a no-op for
        zarr, whose chunk files are written whole): a process killed at any point leaves these rows
        with their old status or with a status whose data is in the store, never a done row without
        its data. Concurrent writers must use disjoint chunk-aligned blocks.
        """
        n = None
        for name, val in (("features", features), ("text", text)):
            if val is not None:
                val = np.asarray(val)
                n = len(val)
                self.b.write(name, slice(start, start + n), val.astype(self.b.get(name).dtype, copy=False))
        if errors is not None:
            self.b.write("errors", slice(start, start + len(errors)), np.asarray(list(errors), dtype=object))
            n = len(errors) if n is None else n
        if status is not None:
            status = np.broadcast_to(np.asarray(status, dtype=np.uint8), (n,) if n is not None else np.shape(status))
            if n is not None:
                self.b.flush()  # the data, before the status that vouches for it
            self.b.write("status", slice(start, start + len(status)), status)
        self.b.flush()

    def flush(self) -> None:
        """Make every write so far survive a kill of this process (see write_rows)."""
        self.b.flush()

    def write_clip_column(self, col: str, values, rows=slice(None)) -> None:
        self.b.write(f"clips/{col}", rows, np.asarray(values, dtype=object if col in schema.CLIP_STR_COLUMNS else None))
        self.b.flush()


def open_store(path, kind=None, mode: str = "r") -> Store:
    return Store.open(path, mode=mode, kind=kind)


def nonfinite_rows(x: np.ndarray | None) -> np.ndarray:
    """[n] bool: rows of x [n, ...] holding a NaN or Inf (all False for None). Writers mark such rows
    failed, alone: a done row must hold finite features (readers would score NaN or never match it)."""
    if x is None:
        return np.zeros(0, bool)
    n = len(x)
    return ~np.isfinite(np.asarray(x).reshape(n, -1)).all(axis=1) if n else np.zeros(0, bool)


def require_finite(store: Store, x: np.ndarray, rows, what: str = "features") -> None:
    """Refuse done rows holding NaN/Inf (a store written before writers failed such rows, or edited
    since): a reader would score NaN, or silently never match them. Names the first row and the fix."""
    bad = nonfinite_rows(x)
    if bad.any():
        r = int(np.asarray(rows).reshape(-1)[np.flatnonzero(bad)[0]])
        raise StoreError(f"{store.path}: row {r} is marked done but its {what} hold NaN/Inf "
                         f"({int(bad.sum())} such row(s) in this read)",
                         hint=f"run `rosetta store validate {store.path} --mark-failed` to mark them failed "
                         "(every stage then skips them), or redo them with the stage that wrote the store")


def check_ego_exo(ego: Store, exo: Store) -> None:
    """--ego and --exo must be two stores of their views (bench, mine and pretrain check the same way):
    one store as both, or a swapped pair, would pair clips of one view without an error."""
    if ego.id == exo.id:
        raise StoreError(f"{exo.path}: the same store is given as --ego and --exo",
                         hint="pass the ego store as --ego and the exo store as --exo")
    ego.require_view("ego", "--ego")
    exo.require_view("exo", "--exo")


def check_translations(tr: Store, ego: Store) -> list[str]:
    """A translations store must be made from this ego store (a parent with its id) and row-aligned
    with it. → notes (a changed ego store since the translation)."""
    fix = f"translate this ego store: rosetta translate --rst RST_DIR --ego {ego.path} --out TRANSLATED.zarr"
    parents = tr.meta.get("parents") or []
    if parents and not any(p.get("id") == ego.id for p in parents):
        made = next((p.get("path") for p in parents if p.get("role") == "ego"), None) or parents[0].get("path", "?")
        raise StoreError(f"{tr.path}: was not translated from {ego.path} (it was made from {made})", hint=fix)
    if tr.n_rows != ego.n_rows:
        raise StoreError(f"{tr.path}: has {tr.n_rows} rows but ego store {ego.path} has {ego.n_rows}", hint=fix)
    if parents and not any(p.get("fingerprint") == ego.fingerprint for p in parents):
        return [f"{ego.path} changed after {tr.path} was translated (fingerprint differs); re-translate if rows changed"]
    return []


def parent_entry(role: str, store: Store) -> dict:
    return {"role": role, "id": store.id, "fingerprint": store.fingerprint, "path": str(store.path), "kind": store.kind}


def _clip_dtype(col: str) -> str:
    if col in schema.CLIP_STR_COLUMNS:
        return "str"
    if col in schema.CLIP_FLOAT_COLUMNS:
        return "float64"
    return "int32"


def encode_clips(clips: pd.DataFrame | None) -> tuple[dict, list[str], list[str]]:
    """DataFrame (CLIP_COLUMNS; missing ones get defaults) → column arrays + label/skill vocabularies.

    label/skill may be strings (vocabulary built sorted) or already-int codes with a
    vocabulary in `clips.attrs['labels'|'skills']`.
    """
    clips = pd.DataFrame(columns=list(schema.CLIP_COLUMNS)) if clips is None else clips
    n = len(clips)
    out: dict = {}
    for col in schema.CLIP_STR_COLUMNS:
        vals = clips[col] if col in clips else pd.Series([""] * n)
        out[col] = np.array(vals.fillna("").astype(str).tolist(), dtype=object)
    for col in schema.CLIP_FLOAT_COLUMNS:
        vals = clips[col] if col in clips else pd.Series([np.nan] * n)
        out[col] = pd.to_numeric(vals, errors="coerce").to_numpy(dtype=np.float64)
    vocabs = []
    for col in schema.CLIP_CODE_COLUMNS:
        vals = clips[col] if col in clips else pd.Series([""] * n)
        codes, vocab = _encode_vocab(vals, clips.attrs.get(f"{col}s"))
        out[col] = codes
        vocabs.append(vocab)
    return out, vocabs[0], vocabs[1]


def _encode_vocab(vals: pd.Series, given: list[str] | None) -> tuple[np.ndarray, list[str]]:
    if given is not None and pd.api.types.is_integer_dtype(vals):
        return vals.to_numpy(dtype=np.int32), list(given)
    strs = vals.fillna("").astype(str)
    vocab = list(given) if given is not None else sorted({s for s in strs if s})
    index = {v: i for i, v in enumerate(vocab)}
    missing = sorted({s for s in strs if s and s not in index})
    vocab += missing
    index.update({v: len(index) + i for i, v in enumerate(missing)})
    return np.array([index.get(s, -1) if s else -1 for s in strs], dtype=np.int32), vocab
