"""Two storage backends with one tiny API: zarr v3 directories and HDF5 files.

Arrays are addressed by slash paths ("clips/clip_id", "features"). Strings are
variable-length UTF-8 in both. All metadata lives in one JSON root attribute.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from rosetta_cli.errors import StoreError
from rosetta_cli.store.schema import META_KEY


class ZarrBackend:
    name = "zarr"

    def __init__(self, path: Path, mode: str):
        import zarr

        self.path = path
        self._arrays: dict = {}  # opened array handles: re-opening re-reads zarr.json each time
        try:
            self.root = zarr.open_group(str(path), mode=mode)
        except Exception as e:  # zarr raises several types for "not a group"
            raise StoreError(f"{path}: not a readable zarr store ({type(e).__name__}: {e})",
                             hint="give a store written by `rosetta extract` or `rosetta store import`") from e

    @staticmethod
    def remove(path: Path) -> None:
        shutil.rmtree(path, ignore_errors=True)

    def meta(self) -> dict | None:
        return self.root.attrs.asdict().get(META_KEY)

    def set_meta(self, meta: dict) -> None:
        self.root.attrs[META_KEY] = meta

    def create(self, name: str, shape: tuple, dtype: str, chunks: tuple, codec: str = "lz4"):
        from zarr.codecs import BloscCodec

        parent, leaf = _split(name)
        grp = self.root.require_group(parent) if parent else self.root
        is_str = dtype == "str"
        kwargs = {}
        if not is_str:
            kwargs["compressors"] = None if codec == "none" else BloscCodec(cname=codec, clevel=5, shuffle="shuffle")
        # write_empty_chunks: an all-zero chunk must still exist on disk, so that
        # `validate` can tell a missing chunk from a zero one.
        self._arrays[name] = grp.create_array(leaf, shape=shape, dtype=str if is_str else dtype, chunks=chunks,
                                              config={"write_empty_chunks": True}, **kwargs)
        return self._arrays[name]

    def has(self, name: str) -> bool:
        try:
            self.get(name)
            return True
        except KeyError:
            return False

    def get(self, name: str):
        if name not in self._arrays:
            self._arrays[name] = self.root[name]
        return self._arrays[name]

    def read(self, name: str, sel=slice(None)) -> np.ndarray:
        fast = _RawChunks.of(self, name)
        if fast is not None and isinstance(sel, slice) and sel.step in (None, 1):
            return fast.read_rows(sel)
        if fast is not None and isinstance(sel, np.ndarray) and sel.ndim == 1 and sel.dtype.kind in "iu":
            return fast.read_index(sel)
        arr = self.get(name)[sel]
        if arr.dtype.kind == "T":  # numpy StringDType → plain object array of str
            arr = arr.astype(object)
        return arr

    def write(self, name: str, sel, values) -> None:
        self.get(name)[sel] = values

    def resize(self, name: str, n: int) -> None:
        self.get(name).resize((n, *self.get(name).shape[1:]))

    def array_names(self) -> list[str]:
        names = []
        for key, node in self.root.members(max_depth=None):
            if hasattr(node, "shape"):
                names.append(key)
        return names

    def close(self) -> None:
        pass


class _RawChunks:
    """Row-slice reads of an *uncompressed* local zarr v3 array straight from its chunk files.

    zarr-python's generic read path costs ~3x a memcpy per 10 MB chunk; for arrays whose only
    codec is little-endian bytes, a chunk file is exactly the C-order chunk, so whole chunks are
    read into the output buffer with `readinto` (the fast path behind shuffled chunk-batch
    training reads; docs/benchmarks.md). Anything else falls back to zarr.
    """

    def __init__(self, arr, root: Path):
        self.shape, self.dtype = arr.shape, np.dtype(arr.dtype)
        self.chunk = arr.metadata.chunk_grid.chunk_shape
        self.dir = root
        self.fill = arr.metadata.fill_value

    @staticmethod
    def of(backend: "ZarrBackend", name: str) -> "_RawChunks | None":
        cache = backend.__dict__.setdefault("_raw", {})
        if name not in cache:
            cache[name] = _RawChunks._probe(backend, name)
        return cache[name]

    @staticmethod
    def _probe(backend, name):
        from zarr.codecs import BytesCodec
        from zarr.storage import LocalStore

        arr = backend.get(name)
        md = arr.metadata
        ok = (getattr(md, "zarr_format", 3) == 3 and len(md.codecs) == 1 and isinstance(md.codecs[0], BytesCodec)
              and str(getattr(md.codecs[0].endian, "value", "little")) == "little" and np.dtype(arr.dtype).kind in "fiub"
              and getattr(md.chunk_key_encoding, "separator", None) == "/" and type(md.chunk_key_encoding).__name__ == "DefaultChunkKeyEncoding"
              and all(c == s for c, s in zip(md.chunk_grid.chunk_shape[1:], arr.shape[1:]))
              and isinstance(arr.store_path.store, LocalStore))
        return _RawChunks(arr, backend.path / name) if ok else None

    def read_rows(self, sel: slice) -> np.ndarray:
        start, stop, _ = sel.indices(self.shape[0])
        out = np.empty((max(stop - start, 0), *self.shape[1:]), dtype=self.dtype)
        c = self.chunk[0]
        for ci in range(start // c, -(-stop // c)):
            a, b = max(start, ci * c), min(stop, (ci + 1) * c)
            self._read_chunk(ci, a - ci * c, b - ci * c, out[a - start:b - start])
        return out

    def read_index(self, idx: np.ndarray) -> np.ndarray:
        """Rows `idx` (any order, repeats allowed): one read per chunk span when dense, else per row."""
        idx = np.where(idx < 0, idx + self.shape[0], idx)
        if len(idx) and (idx.min() < 0 or idx.max() >= self.shape[0]):
            raise IndexError(f"row index out of range for {self.shape[0]} rows")
        out = np.empty((len(idx), *self.shape[1:]), dtype=self.dtype)
        c = self.chunk[0]
        for ci in np.unique(idx // c):
            ks = np.flatnonzero(idx // c == ci)
            lo, hi = int(idx[ks].min()) - int(ci) * c, int(idx[ks].max()) - int(ci) * c + 1
            if len(ks) * 8 >= hi - lo:  # dense enough: one read of the span, then pick rows
                span = np.empty((hi - lo, *self.shape[1:]), dtype=self.dtype)
                self._read_chunk(int(ci), lo, hi, span)
                out[ks] = span[idx[ks] - int(ci) * c - lo]
                continue
            for k in ks:  # sparse rows: seek to each (a few KB apiece)
                r = int(idx[k]) - int(ci) * c
                self._read_chunk(int(ci), r, r + 1, out[k:k + 1])
        return out

    def _chunk_file(self, ci: int) -> Path:
        return self.dir / "c" / str(ci) / "/".join(["0"] * (len(self.shape) - 1)) if len(self.shape) > 1 else self.dir / "c" / str(ci)

    def _read_chunk(self, ci: int, a: int, b: int, dst: np.ndarray) -> None:
        f = self._chunk_file(ci)
        if not f.exists():  # never written: zarr reads the fill value
            dst[...] = self.fill
            return
        row_bytes = self.dtype.itemsize * int(np.prod(self.shape[1:], dtype=np.int64))
        with open(f, "rb", buffering=0) as fh:
            fh.seek(a * row_bytes)
            view = memoryview(dst.reshape(-1).view(np.uint8))
            if fh.readinto(view) != (b - a) * row_bytes:
                from rosetta_cli.errors import StoreError

                raise StoreError(f"{f}: chunk file is truncated",
                                 hint=f"run `rosetta store validate {self.dir.parent}`; re-extract or restore the store")


class HDF5Backend:
    name = "hdf5"

    def __init__(self, path: Path, mode: str):
        import h5py

        self.path = path
        try:
            self.f = h5py.File(str(path), {"r": "r", "r+": "r+", "w": "w"}[mode])
        except OSError as e:
            raise StoreError(f"{path}: not a readable HDF5 file ({e})",
                             hint="the file may be truncated or not HDF5; re-create it or convert from a good copy") from e

    @staticmethod
    def remove(path: Path) -> None:
        Path(path).unlink(missing_ok=True)

    def meta(self) -> dict | None:
        raw = self.f.attrs.get(META_KEY)
        if raw is None:
            return None
        return json.loads(raw if isinstance(raw, str) else raw.decode())

    def set_meta(self, meta: dict) -> None:
        self.f.attrs[META_KEY] = json.dumps(meta)

    def create(self, name: str, shape: tuple, dtype: str, chunks: tuple, codec: str = "lz4"):
        import h5py

        is_str = dtype == "str"
        h5dtype = h5py.string_dtype("utf-8") if is_str else dtype
        maxshape = (None, *shape[1:])
        chunks = tuple(max(1, c) for c in chunks)
        return self.f.create_dataset(name, shape=shape, dtype=h5dtype, chunks=chunks, maxshape=maxshape,
                                     compression=None if is_str or codec == "none" else "lzf")

    def has(self, name: str) -> bool:
        return name in self.f

    def get(self, name: str):
        return self.f[name]

    def read(self, name: str, sel=slice(None)) -> np.ndarray:
        ds = self.f[name]
        if ds.dtype.kind == "O":
            return np.asarray(ds.asstr()[sel] if not isinstance(sel, np.ndarray) else _take_str(ds, sel), dtype=object)
        if isinstance(sel, np.ndarray):
            return _take(ds, sel)
        return ds[sel]

    def write(self, name: str, sel, values) -> None:
        self.f[name][sel] = values

    def resize(self, name: str, n: int) -> None:
        ds = self.f[name]
        ds.resize((n, *ds.shape[1:]))

    def array_names(self) -> list[str]:
        import h5py

        names = []
        self.f.visititems(lambda k, v: names.append(k) if isinstance(v, h5py.Dataset) else None)
        return names

    def close(self) -> None:
        self.f.close()


def _take(ds, idx: np.ndarray) -> np.ndarray:
    """h5py fancy indexing needs sorted unique indices; read sorted and un-permute."""
    order = np.argsort(idx, kind="stable")
    uniq, inv = np.unique(idx[order], return_inverse=True)
    data = ds[uniq] if len(uniq) else ds[0:0]
    out = np.empty((len(idx), *ds.shape[1:]), dtype=ds.dtype)
    out[order] = data[inv]
    return out


def _take_str(ds, idx: np.ndarray) -> np.ndarray:
    order = np.argsort(idx, kind="stable")
    uniq, inv = np.unique(idx[order], return_inverse=True)
    data = np.asarray(ds.asstr()[uniq] if len(uniq) else [], dtype=object)
    out = np.empty(len(idx), dtype=object)
    out[order] = data[inv]
    return out


def _split(name: str) -> tuple[str, str]:
    if "/" in name:
        parent, leaf = name.rsplit("/", 1)
        return parent, leaf
    return "", name


BACKENDS = {"zarr": ZarrBackend, "hdf5": HDF5Backend}
