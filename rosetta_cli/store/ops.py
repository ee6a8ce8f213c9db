"""Store operations behind `rosetta store`: convert, merge, export (import: store/importer.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from rosetta_cli.errors import AnnotationError, DimensionMismatch, InputNotFound, StoreError, UsageError
from rosetta_cli.store import schema
from rosetta_cli.store.backends import BACKENDS
from rosetta_cli.store.core import Store, _backend_name

IMPORT_COLUMNS = list(schema.CLIP_COLUMNS)


# --------------------------------------------------------------------------- convert
def convert(src_path, dst_path, overwrite: bool = False, block_rows: int = 65536) -> Store:
    """Copy every array and the metadata verbatim to the other backend (lossless)."""
    src = Store.open(src_path)
    dst_path = Store._prepare_path(dst_path, overwrite)
    dst = Store._new_backend(dst_path)  # at a URL: under the incomplete marker until the metadata is written
    for name in src.b.array_names():
        arr = src.b.get(name)
        is_str = arr.dtype.kind in "OT"
        codec = src.meta.get("codec", "lz4") if name == "features" else "lz4"  # keep uncompressed features fast
        dst.create(name, arr.shape, "str" if is_str else str(arr.dtype), _chunks(arr), codec=codec)
        for s in range(0, arr.shape[0], block_rows):
            block = src.b.read(name, slice(s, s + block_rows))
            dst.write(name, slice(s, s + len(block)), block)
    dst.set_meta(src.meta)
    dst.close()
    Store._created(dst_path)
    src.close()
    return Store.open(dst_path)


def _chunks(arr) -> tuple:
    chunks = getattr(arr, "chunks", None)
    return tuple(chunks) if chunks else (schema.DEFAULT_CHUNK_ROWS, *arr.shape[1:])


# --------------------------------------------------------------------------- merge
def merge(src_paths: list, out_path, overwrite: bool = False) -> Store:
    """Concatenate shards of one kind and one encoder (row order = argument order)."""
    if not src_paths:
        raise UsageError("store merge needs at least one SRC")
    srcs = [Store.open(p) for p in src_paths]
    _check_mergeable(srcs)
    if srcs[0].kind == "pairs":
        table = pd.concat([s.pairs() for s in srcs], ignore_index=True)
        out = Store.create_pairs(out_path, table, attrs=_merge_attrs(srcs), overwrite=overwrite)
    else:
        out = _merge_rows(srcs, out_path, overwrite)
    for entry in _common_parents(srcs):
        out.add_parent(entry["role"], entry)
    for i, s in enumerate(srcs):
        out.add_parent(f"shard{i}", s)
        s.close()
    out.finalize()
    return out


def _common_parents(srcs: list[Store]) -> list[dict]:
    """Parents every shard shares (same role and id), e.g. the ego/exo stores of mined pair shards."""
    first = {p.get("role"): p for p in srcs[0].meta.get("parents", [])}
    for s in srcs[1:]:
        ids = {p.get("role"): p.get("id") for p in s.meta.get("parents", [])}
        first = {r: p for r, p in first.items() if ids.get(r) == p.get("id")}
    return list(first.values())


def _check_mergeable(srcs: list[Store]) -> None:
    first = srcs[0]
    seen = {}
    for s in srcs:  # the same shard twice would duplicate every clip id (and pair)
        if s.id in seen:
            raise UsageError(f"{s.path}: given twice (also as {seen[s.id]})", hint="give each shard once")
        seen[s.id] = s.path
    for s in srcs[1:]:
        if s.kind != first.kind:
            raise StoreError(f"cannot merge a {s.kind!r} store ({s.path}) into {first.kind!r} stores",
                             hint="merge only shards of one kind")
        if first.kind == "pairs":
            continue
        if (s.frames, s.dim, s.text_dim) != (first.frames, first.dim, first.text_dim):
            raise DimensionMismatch(
                f"{s.path}: shape T={s.frames} D={s.dim} Dt={s.text_dim} differs from {first.path}: "
                f"T={first.frames} D={first.dim} Dt={first.text_dim}", hint="merge only shards made with the same encoder and --frames")
        if _enc_id(s.meta.get("encoder")) != _enc_id(first.meta.get("encoder")):
            raise StoreError(f"{s.path}: encoder {_enc_id(s.meta.get('encoder'))} differs from {first.path}: "
                             f"{_enc_id(first.meta.get('encoder'))}", hint="merge only shards extracted with one encoder")
    if first.kind != "pairs":
        _check_unique_ids(srcs)


def _check_unique_ids(srcs: list[Store]) -> None:
    """Clip ids stay unique in the merged store (stages join on them)."""
    where: dict = {}
    for s in srcs:
        for cid in s.column("clip_id"):
            if cid in where:
                raise StoreError(f"{s.path}: clip id {cid!r} is also in {where[cid]}",
                                 hint="merge shards that hold disjoint clips (each shard once)")
            where[cid] = s.path


def _enc_id(enc) -> str | None:
    if not enc:
        return None
    return f"{enc.get('name')}@{enc.get('fingerprint') or enc.get('weights_sha256') or ''}"


def _merge_attrs(srcs: list[Store]) -> dict:
    keep = ("encoder", "text_encoder", "strategy", "dataset", "role", "topk", "text_weight")
    return {k: srcs[0].meta.get(k) for k in keep if k in srcs[0].meta}


def _merge_rows(srcs: list[Store], out_path, overwrite: bool) -> Store:
    clips = pd.concat([s.clips() for s in srcs], ignore_index=True)
    clips.attrs["labels"] = _union([s.labels for s in srcs])
    clips.attrs["skills"] = _union([s.skills for s in srcs])
    first = srcs[0]
    out = Store.create(out_path, kind=first.kind, clips=clips[list(schema.CLIP_COLUMNS)], frames=first.frames, dim=first.dim,
                       text_dim=first.text_dim, dtype=first.dtype, chunk_rows=first.chunk_rows,
                       attrs=_merge_attrs(srcs), overwrite=overwrite)
    offset = 0
    for s in srcs:
        for a, b in s.blocks(65536):
            out.write_rows(offset + a, features=s.features(slice(a, b)),
                           text=s.text(slice(a, b)) if s.text_dim else None,
                           status=s.status(slice(a, b)), errors=s.errors(slice(a, b)))
        offset += s.n_rows
    return out


def _union(vocabs: list[list[str]]) -> list[str]:
    out: list[str] = []
    for v in vocabs:
        out += [x for x in v if x not in out]
    return out


# --------------------------------------------------------------------------- import helpers
# The import itself is rosetta_cli/store/importer.py (a stage-shaped run(cfg)); these are shared.
def read_clips_csv(path) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise InputNotFound(f"{path}: no such clips CSV")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as e:
        raise AnnotationError(f"{path}: not a readable CSV ({e})") from e
    missing = [c for c in IMPORT_COLUMNS if c not in df.columns]
    if missing:
        raise AnnotationError(f"{path}: missing columns {missing}", hint=f"the header must be {','.join(IMPORT_COLUMNS)}")
    bad_view = sorted(set(df["view"]) - set(schema.VIEWS))
    if bad_view:
        raise AnnotationError(f"{path}: field 'view' has values {bad_view[:5]}", hint="use ego or exo")
    for col in schema.CLIP_FLOAT_COLUMNS:
        df[col] = _seconds(path, df, col)
    _check_times(path, df)  # empty start (NaN) = the video's start; empty end = its end
    return df[IMPORT_COLUMNS]


def _seconds(path: Path, df: pd.DataFrame, col: str) -> pd.Series:
    """A time column as float seconds; a value that is not a number names its line."""
    raw = df[col].str.strip()
    vals = pd.to_numeric(raw.replace("", np.nan), errors="coerce")
    bad = np.flatnonzero(vals.isna().to_numpy() & (raw != "").to_numpy())
    if len(bad):
        i = int(bad[0])
        raise AnnotationError(f"{path}: line {i + 2} (clip {df['clip_id'].iat[i]!r}): field {col!r} is "
                              f"{df[col].iat[i]!r}, not a number of seconds",
                              hint=f"give {col} in seconds (empty {col}: the video's {'start' if col == 'start' else 'end'})")
    return vals


def _check_times(path: Path, df: pd.DataFrame) -> None:
    """start (when given) finite and >= 0; end (when given) finite and not before start."""
    start, end = df["start"].to_numpy(float), df["end"].to_numpy(float)
    checks = (("start", np.isinf(start) | (start < 0), "must be a finite number >= 0"),
              ("end", np.isinf(end) | (end < np.nan_to_num(start)), "must not be before start"))
    for col, bad, rule in checks:
        rows = np.flatnonzero(bad)
        if len(rows):
            i = int(rows[0])
            raise AnnotationError(f"{path}: line {i + 2} (clip {df['clip_id'].iat[i]!r}): {col} {df[col].iat[i]:g} "
                                  f"{rule} (start {start[i]:g}, end {end[i]:g})", hint="fix the clip's times in the CSV")


def load_array(f: Path) -> np.ndarray:
    """A plain tensor file (.npy, or a torch tensor saved with torch.save, loaded weights_only) -> ndarray."""
    if f.suffix == ".npy":
        try:
            return np.load(f, allow_pickle=False)
        except ValueError as e:
            raise StoreError(f"{f}: not a plain numeric .npy ({e})", hint="object arrays are refused for safety") from e
    import torch

    try:
        t = torch.load(f, map_location="cpu", weights_only=True)
    except Exception as e:
        raise StoreError(f"{f}: cannot load as a tensor with weights_only=True ({type(e).__name__})",
                         hint="save plain tensors (torch.save(tensor)), never pickled objects") from e
    if not hasattr(t, "numpy"):
        raise StoreError(f"{f}: holds a {type(t).__name__}, expected a tensor [windows, D] or [windows, T, D]")
    return t.float().numpy() if t.dtype == torch.bfloat16 else t.numpy()


# --------------------------------------------------------------------------- export
def export(store_path, out_dir) -> list[Path]:
    """Plain files: features.npy ([N,D] if T=1 else [N,T,D]), text.npy, clips.csv, clips.parquet; pairs.csv for pairs."""
    with Store.open(store_path) as store:
        return _export(store, Path(out_dir))


def _export(store: Store, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    if store.kind == "pairs":
        f = out / "pairs.csv"
        store.pairs().to_csv(f, index=False)
        return [f]
    written = [_export_array(store, "features", out / "features.npy")]
    if store.text_dim:
        written.append(_export_array(store, "text", out / "text.npy"))
    clips = store.clips()[IMPORT_COLUMNS]
    clips.to_csv(out / "clips.csv", index=False)
    clips.to_parquet(out / "clips.parquet", index=False)
    return written + [out / "clips.csv", out / "clips.parquet"]


def _export_array(store: Store, name: str, f: Path) -> Path:
    arr = store.b.get(name)
    shape = arr.shape
    squeeze = name == "features" and shape[1] == 1
    mm = np.lib.format.open_memmap(f, mode="w+", dtype=arr.dtype, shape=(shape[0], shape[2]) if squeeze else shape)
    for a, b in store.blocks(65536):
        block = store.b.read(name, slice(a, b))
        mm[a:b] = block[:, 0] if squeeze else block
    mm.flush()
    del mm
    return f
