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
