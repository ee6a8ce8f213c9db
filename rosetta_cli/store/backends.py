"""Two storage backends with one tiny API: zarr v3 directories and HDF5 files.

Arrays are addressed by slash paths ("clips/clip_id", "features"). Strings are
variable-length UTF-8 in both. All metadata lives in one JSON root attribute.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from rosetta_cli.errors import StoreError, cannot_write
from rosetta_cli.store.schema import META_KEY


class ZarrBackend:
    name = "zarr"

    def __init__(self, path: Path, mode: str):
        import zarr

        from rosetta_cli.store import remote

        self.path = path
        self.url = remote.parse(path)  # a URL: zarr's FsspecStore, no raw local reads
        self._arrays: dict = {}  # opened array handles: re-opening re-reads zarr.json each time
        try:
            self.root = zarr.open_group(remote.zarr_store(self.url, mode) if self.url else str(path), mode=mode)
        except StoreError:
            raise
        except PermissionError as e:
            if mode == "r":
                raise StoreError(f"{path}: cannot read it ({e.strerror})", hint="check the store's permissions") from e
            raise cannot_write(e, path) from e
        except Exception as e:  # zarr raises several types for "not a group"
            if self.url and not isinstance(e, (KeyError, ValueError)) and "Group" not in type(e).__name__:
                raise remote.translate(e, self.url) from e
            raise StoreError(f"{path}: not a readable zarr store ({type(e).__name__}: {e})",
                             hint="give a store written by `rosetta extract` or `rosetta store import`") from e

    @staticmethod
    def remove(path: Path) -> None:
        from rosetta_cli.store import remote

        if remote.is_url(path):
            remote.remove(remote.parse(path))
        else:
            shutil.rmtree(path, ignore_errors=True)

    def meta(self) -> dict | None:
        return self.root.attrs.asdict().get(META_KEY)

    def set_meta(self, meta: dict) -> None:
        self.root.attrs[META_KEY] = meta

    def create(self, name: str, shape: tuple, dtype: str, chunks: tuple, codec: str | None = None,
               incremental: bool = False):
        """codec: "lz4", "zstd", "none", or None for blosc-lz4. incremental: unused (every chunk is its own file)."""
        from zarr.codecs import BloscCodec

        parent, leaf = _split(name)
        grp = self.root.require_group(parent) if parent else self.root
        is_str = dtype == "str"
        codec = codec or "lz4"
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
        if self.url is not None:
            return self._read_remote(name, sel)
        fast = _RawChunks.of(self, name)
        if fast is not None and isinstance(sel, slice) and sel.step in (None, 1):
            return fast.read_rows(sel)
        if fast is not None and isinstance(sel, np.ndarray) and sel.ndim == 1 and sel.dtype.kind in "iu":
            return fast.read_index(sel)
        arr = self.get(name)[sel]
        if arr.dtype.kind == "T":  # numpy StringDType → plain object array of str
            arr = arr.astype(object)
        return arr

    def _read_remote(self, name: str, sel) -> np.ndarray:
        """Reads by URL: row indices through an LRU cache of whole decoded chunks (random rows then cost
        one fetch per chunk, not per row); slices straight through zarr (concurrent chunk fetches)."""
        from rosetta_cli.store import remote

        arr = self.get(name)
        try:
            if isinstance(sel, np.ndarray) and sel.ndim == 1 and sel.dtype.kind in "iu" and np.dtype(arr.dtype).kind in "fiub":
                cache = self.__dict__.setdefault("_lru", {})
                if name not in cache:
                    cache[name] = _ChunkLRU(arr)
                return cache[name].take(sel)
            out = arr[sel]
        except (IndexError, StoreError):
            raise
        except Exception as e:
            raise remote.translate(e, self.url) from e
        return out.astype(object) if out.dtype.kind == "T" else out

    def write(self, name: str, sel, values) -> None:
        if self.url is None:
            self.get(name)[sel] = values
        else:
            from rosetta_cli.store import remote

            try:
                self.get(name)[sel] = values
            except Exception as e:  # a lost connection, expired credentials: one line, exit 2
                raise remote.translate(e, self.url) from e
        lru = self.__dict__.get("_lru", {}).pop(name, None)  # cached chunks of a rewritten array are stale
        del lru

    def missing_chunks(self, name: str, sel=slice(None)) -> list[tuple[int, Path]]:
        """(row-chunk index, its file) of each chunk that the rows `sel` touch and that is absent on disk.

        zarr reads an absent chunk as the fill value (zeros), so the caller decides whether that is
        "never written" (pending rows) or lost data (rows marked done). Chunks seen present are
        remembered: a read then costs one stat per new chunk."""
        from zarr.storage import LocalStore

        arr = self.get(name)
        if self.url is None and not isinstance(arr.store_path.store, LocalStore):
            return []
        c, n = arr.chunks[0], arr.shape[0]
        if isinstance(sel, slice):
            start, stop, _ = sel.indices(n)
            chunks = range(start // c, -(-stop // c)) if stop > start else range(0)
        else:
            idx = np.asarray(sel, dtype=np.int64).reshape(-1)
            chunks = np.unique(np.where(idx < 0, idx + n, idx) // c).tolist()
        present = self.__dict__.setdefault("_present", {}).setdefault(name, set())
        if self.url is not None and sum(ci not in present for ci in chunks) > 8:
            present.update(self._listed_chunks(name, arr))  # one listing, not one request per chunk
        out = []
        for ci in chunks:
            if ci in present:
                continue
            f = self.path / name / arr.metadata.encode_chunk_key((int(ci),) + (0,) * (arr.ndim - 1))
            if self._chunk_exists(f):
                present.add(ci)
            else:
                out.append((int(ci), f))
        return out

    def _listed_chunks(self, name: str, arr) -> set[int]:
        """Row-chunk indices of `name` whose chunk objects a listing of the URL shows."""
        from rosetta_cli.store import remote

        fs, root = remote.filesystem(self.url)
        prefix = f"{root}/{name}/c/".split("://", 1)[-1]
        tail = "/" + "/".join(["0"] * (arr.ndim - 1)) if arr.ndim > 1 else ""
        try:
            found = fs.find(f"{root}/{name}/c")
        except FileNotFoundError:
            return set()
        except Exception as e:
            raise remote.translate(e, self.url) from e
        out = set()
        for p in found:
            key = p.split("://", 1)[-1][len(prefix):]
            head = key[: len(key) - len(tail)] if tail and key.endswith(tail) else key
            if head.isdigit() and (not tail or key.endswith(tail)):
                out.add(int(head))
        return out

    def _chunk_exists(self, f) -> bool:
        if self.url is None:
            return f.exists()
        from rosetta_cli.store import remote

        if "_fs" not in self.__dict__:
            self._fs = remote.filesystem(self.url)[0]
        try:
            return bool(self._fs.exists(remote.filesystem(f)[1]))
        except Exception as e:
            raise remote.translate(e, f) from e

    def resize(self, name: str, n: int) -> None:
        self.get(name).resize((n, *self.get(name).shape[1:]))

    def array_names(self) -> list[str]:
        names = []
        for key, node in self.root.members(max_depth=None):
            if hasattr(node, "shape"):
                names.append(key)
        return names

    def flush(self) -> None:
        """Nothing to do: zarr's LocalStore writes each chunk (and zarr.json) as a whole file, atomically."""

    def close(self) -> None:
        pass


class _ChunkLRU:
    """Row reads of one remote array through an LRU cache of whole decoded chunks.

    Bounded by `max_chunks` chunks and `max_bytes` bytes (ROSETTA_REMOTE_CACHE_CHUNKS, default 64;
    ROSETTA_REMOTE_CACHE_MB, default 1024). Chunks a read needs and the cache lacks are fetched
    concurrently (zarr's sync API is thread-safe: every call runs on its one event loop).
    """

    def __init__(self, arr, max_chunks: int | None = None, max_bytes: int | None = None):
        from collections import OrderedDict

        self.arr, self.c, self.n = arr, arr.chunks[0], arr.shape[0]
        self.max_chunks = max_chunks or int(os.environ.get("ROSETTA_REMOTE_CACHE_CHUNKS", 64))
        self.max_bytes = max_bytes or int(os.environ.get("ROSETTA_REMOTE_CACHE_MB", 1024)) << 20
        self.cache: "OrderedDict[int, np.ndarray]" = OrderedDict()
        self.bytes = 0
        self.fetches = 0

    def _fetch(self, chunks: list[int]) -> dict:
        from concurrent.futures import ThreadPoolExecutor

        read = lambda ci: self.arr[ci * self.c:min((ci + 1) * self.c, self.n)]
        self.fetches += len(chunks)
        if len(chunks) == 1:
            return {chunks[0]: read(chunks[0])}
        with ThreadPoolExecutor(min(8, len(chunks))) as pool:
            return dict(zip(chunks, pool.map(read, chunks)))

    def take(self, idx: np.ndarray) -> np.ndarray:
        """Rows idx [b] (any order, repeats allowed) → [b, ...]."""
        idx = np.asarray(idx, dtype=np.int64)
        idx = np.where(idx < 0, idx + self.n, idx)
        if len(idx) and (idx.min() < 0 or idx.max() >= self.n):
            raise IndexError(f"row index out of range for {self.n} rows")
        chunks = idx // self.c
        need = np.unique(chunks).tolist()
        got = {ci: self.cache[ci] for ci in need if ci in self.cache}
        got.update(self._fetch([ci for ci in need if ci not in got]) if len(got) < len(need) else {})
        out = np.empty((len(idx), *self.arr.shape[1:]), dtype=self.arr.dtype)
        for ci in need:
            sel = chunks == ci
            out[sel] = got[ci][idx[sel] - ci * self.c]
            self._keep(ci, got[ci])
        return out

    def _keep(self, ci: int, data: np.ndarray) -> None:
        if ci in self.cache:
            self.cache.move_to_end(ci)
            return
        self.cache[ci] = data
        self.bytes += data.nbytes
        while len(self.cache) > 1 and (len(self.cache) > self.max_chunks or self.bytes > self.max_bytes):
            self.bytes -= self.cache.popitem(last=False)[1].nbytes


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
        self.row_bytes = self.dtype.itemsize * int(np.prod(self.shape[1:], dtype=np.int64))

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
        order = np.argsort(idx // c, kind="stable")                      # positions grouped by chunk
        for ks in np.split(order, np.flatnonzero(np.diff(idx[order] // c)) + 1):
            if not len(ks):
                continue
            ci = int(idx[ks[0]] // c)
            local = idx[ks] - ci * c
            lo, hi = int(local.min()), int(local.max()) + 1
            if len(ks) * 8 >= hi - lo:  # dense enough: one read of the span, then pick rows
                span = np.empty((hi - lo, *self.shape[1:]), dtype=self.dtype)
                self._read_chunk(ci, lo, hi, span)
                out[ks] = span[local - lo]
            else:  # sparse rows: one open per chunk, one pread per row (a few KB apiece)
                self._read_sparse(ci, local, out, ks)
        return out

    def _read_sparse(self, ci: int, local: np.ndarray, out: np.ndarray, ks: np.ndarray) -> None:
        """out[ks[j]] = row local[j] of chunk ci."""
        f = self._chunk_file(ci)
        if not f.exists():
            out[ks] = self.fill
            return
        row_bytes = self.row_bytes
        fd = os.open(f, os.O_RDONLY)
        try:
            for r, k in zip(local.tolist(), ks.tolist()):
                if os.preadv(fd, [out[k].reshape(-1).view(np.uint8)], r * row_bytes) != row_bytes:
                    self._truncated(f)
        finally:
            os.close(fd)

    def _truncated(self, f: Path):
        raise StoreError(f"{f}: chunk file is truncated",
                         hint=f"run `rosetta store validate {self.dir.parent}`; re-extract or restore the store")

    def _chunk_file(self, ci: int) -> Path:
        return self.dir / "c" / str(ci) / "/".join(["0"] * (len(self.shape) - 1)) if len(self.shape) > 1 else self.dir / "c" / str(ci)

    def _read_chunk(self, ci: int, a: int, b: int, dst: np.ndarray) -> None:
        f = self._chunk_file(ci)
        if not f.exists():  # never written: zarr reads the fill value
            dst[...] = self.fill
            return
        row_bytes = self.row_bytes
        with open(f, "rb", buffering=0) as fh:
            fh.seek(a * row_bytes)
            view = memoryview(dst.reshape(-1).view(np.uint8))
            if fh.readinto(view) != (b - a) * row_bytes:
                self._truncated(f)


class HDF5Backend:
    """One HDF5 file, written by one process at a time (HDF5's file lock enforces it).

    Durability: HDF5 keeps writes in its caches until a flush, so `flush()` is called by the
    store after each chunk's content and again after its status (Store.write_rows), and after
    every metadata change. Arrays that are filled chunk by chunk after creation
    (``incremental``: features, text, status, errors) have all their chunks allocated when
    they are created and are stored uncompressed (unless a codec is asked for), so later
    writes go to fixed places and never touch the file's structure: a kill -9 at any moment
    leaves a file whose structure is the one created, holding every flushed chunk.
    """

    name = "hdf5"

    def __init__(self, path: Path, mode: str):
        import h5py

        from rosetta_cli.store import remote

        self.path = path
        url = remote.parse(path)
        if url is not None:  # read-only through an fsspec file object (h5py reads file-like objects)
            if mode != "r":
                raise StoreError(f"{url}: HDF5 stores open read-only by URL",
                                 hint="write a .zarr to s3:// / gs://, or convert locally (`rosetta store convert`) and push it")
            self.f = h5py.File(remote.open_file(url), "r")
            return
        try:
            self.f = h5py.File(str(path), {"r": "r", "r+": "r+", "w": "w"}[mode])
        except OSError as e:
            if _is_lock_error(e):
                raise locked_error(path, mode) from e
            raise StoreError(f"{path}: not a readable HDF5 file ({e})",
                             hint="the file may be truncated or not HDF5; re-create it or convert from a good copy") from e

    @staticmethod
    def remove(path: Path) -> None:
        from rosetta_cli.store import remote

        if remote.is_url(path):
            remote.remove(remote.parse(path))
        else:
            Path(path).unlink(missing_ok=True)

    def meta(self) -> dict | None:
        raw = self.f.attrs.get(META_KEY)
        if raw is None:
            return None
        return json.loads(raw if isinstance(raw, str) else raw.decode())

    def set_meta(self, meta: dict) -> None:
        self.f.attrs[META_KEY] = json.dumps(meta)
        self.flush()  # provenance (e.g. `finalized`) must not be lost once a stage reports it

    def create(self, name: str, shape: tuple, dtype: str, chunks: tuple, codec: str | None = None,
               incremental: bool = False):
        """codec: "none" = uncompressed, None = lzf unless incremental, else lzf (HDF5 has no blosc).

        incremental: the array is filled chunk by chunk after creation; allocate every chunk now
        (early allocation, no fill writes for numbers: the file stays sparse) so that a later write
        changes no file metadata, only bytes inside its own chunk.
        """
        import h5py

        is_str = dtype == "str"
        h5dtype = h5py.string_dtype("utf-8") if is_str else dtype
        maxshape = (None, *shape[1:])
        chunks = tuple(max(1, c) for c in chunks)
        # A compressed chunk moves when rewritten (new size → new allocation), so incremental
        # arrays are compressed only when the caller names a codec.
        compress = not is_str and codec != "none" and (codec is not None or not incremental)
        kwargs = {}
        if incremental:
            dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
            dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
            kwargs["dcpl"] = dcpl
            if not is_str:  # variable-length strings need a fill value (the empty string)
                kwargs["fill_time"] = "never"
        return self.f.create_dataset(name, shape=shape, dtype=h5dtype, chunks=chunks, maxshape=maxshape,
                                     compression="lzf" if compress else None, **kwargs)

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

    def missing_chunks(self, name: str, sel=slice(None)) -> list:
        """Always []: every chunk of a row array is allocated when it is created."""
        return []

    def resize(self, name: str, n: int) -> None:
        ds = self.f[name]
        ds.resize((n, *ds.shape[1:]))

    def array_names(self) -> list[str]:
        import h5py

        names = []
        self.f.visititems(lambda k, v: names.append(k) if isinstance(v, h5py.Dataset) else None)
        return names

    def flush(self) -> None:
        """Write HDF5's cached chunks and metadata to the file (no fsync: this survives a killed
        process, which is the failure we guard against, not a power cut)."""
        if self.f.id.valid and self.f.mode == "r+":
            self.f.flush()

    def close(self) -> None:
        self.f.close()


def _is_lock_error(e: OSError) -> bool:
    """h5py reports a held file lock as errno 11 (EAGAIN/EWOULDBLOCK): BlockingIOError."""
    import errno

    return isinstance(e, BlockingIOError) or e.errno in (errno.EAGAIN, errno.EWOULDBLOCK) \
        or "unable to lock file" in str(e)


def holders(path) -> list[tuple[int, str, int | None]]:
    """(pid, command line, parent pid) of every other process with `path` open (psutil's open files).

    Files are compared by device and inode, so a hard link or another spelling of the path counts.
    Processes of other users cannot be inspected and are missed.
    """
    import psutil

    try:
        st = os.stat(path)
    except OSError:
        return []
    me, out = os.getpid(), []
    for proc in psutil.process_iter(["pid", "ppid", "cmdline"]):
        if proc.pid != me and _has_open(proc, st.st_dev, st.st_ino):
            out.append((proc.pid, _cmdline(proc.info["cmdline"]), proc.info["ppid"]))
    return out


def _has_open(proc, dev: int, ino: int) -> bool:
    import psutil

    try:
        files = proc.open_files()
    except (psutil.Error, OSError):  # gone, or another user's
        return False
    for f in files:
        try:
            s = os.stat(f.path)
        except OSError:
            continue
        if s.st_ino == ino and s.st_dev == dev:
            return True
    return False


def _cmdline(argv: list | None, limit: int = 100) -> str:
    text = " ".join(argv) if argv else "?"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def locked_error(path, mode: str) -> StoreError:
    """The error for an HDF5 store that another process holds: who holds it, and what to do (never re-create).

    Children that share their parent's open file (e.g. decoding workers) are counted, not listed.
    """
    found = holders(path)
    pids = {pid for pid, _, _ in found}
    top = [(pid, cmd) for pid, cmd, ppid in found if ppid not in pids]
    if top:
        who = "; ".join(f"pid {pid}: {cmd}" for pid, cmd in top[:3])
        if len(found) > len(top):
            who += f"; and {len(found) - len(top)} of its child process(es)"
        stop = f"or stop it (kill {' '.join(str(pid) for pid, _ in top[:3])})"
    else:
        who, stop = "pid not found: another user's process, or another machine", "or stop that process"
    role = "is writing it" if mode == "r" else "has it open"
    return StoreError(f"{path}: locked: another process {role} ({who})",
                      hint=f"the store is not damaged; wait for that process to finish, {stop}, then rerun")


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
