"""`rosetta store push SRC URL` / `rosetta store pull URL DST`: copy a zarr store object by object.

Order (both ways): the incomplete marker first, then every chunk and array zarr.json, then the root
zarr.json (which holds the metadata), then the marker is removed. A reader never takes a copy in
progress (or a killed one) for a store: Store.open refuses the marker, and a copy without its root
zarr.json. A rerun resumes: objects already there with the same size (and the same MD5, where the
filesystem reports one: S3's single-part ETag, GCS's md5Hash) are skipped. The bytes are copied
verbatim, so the copy has the source's id and fingerprint: `rosetta status` and staleness hold.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from rosetta_cli.errors import StoreError, UsageError
from rosetta_cli.runtime.progress import SILENT, Progress
from rosetta_cli.store import remote
from rosetta_cli.store.core import Store

BATCH = 64  # objects per fsspec put/get call (fetched concurrently by async filesystems)


@dataclass
class CopyResult:
    src: str
    dst: str
    objects: int        # objects in the store
    copied: int         # objects sent this run
    skipped: int        # objects already there (resume)
    bytes_copied: int
    seconds: float
    fingerprint: str
    problems: list

    def to_dict(self) -> dict:
        return asdict(self)


def push(src, url, *, overwrite: bool = False, progress: Progress = SILENT) -> CopyResult:
    """Upload the local zarr store `src` to `url` (s3:// or gs://).

    A store already at `url` with the same id (an earlier push of this store) is brought up to date in
    place; another store there needs `overwrite`."""
    src, url = Path(src), remote.parse(url)
    if url is None:
        raise UsageError("push needs a URL (s3://BUCKET/PATH.zarr)", hint="use `rosetta store convert` for local copies")
    _require_zarr(src, url)
    if url.scheme not in remote.WRITABLE:
        raise UsageError(f"{url}: cannot push to {url.scheme}:// (read-only here)",
                         hint="push to s3:// or gs://; for the Hugging Face Hub upload the folder with `huggingface-cli upload`")
    with Store.open(src) as s:
        fingerprint, sid = s.fingerprint, s.id
    fs, root = remote.filesystem(url)
    local = _local_objects(src)
    t0 = time.perf_counter()
    try:
        there = _remote_objects(fs, root)
        if there and not _ours(fs, root, there, sid):
            if not overwrite:
                raise UsageError(f"{url}: already holds another store", hint="pass --overwrite to replace it, or choose another URL")
            remote.remove(url)
            there = {}
        if there.keys() == local.keys() and _all_same(src, local, there):
            progress.note(f"{url}: already up to date")
            return CopyResult(str(src), str(url), len(local), 0, len(local), 0, 0.0, fingerprint, [])
        remote.write_marker(url, f"`rosetta store push {src} {url}`")
        todo = [k for k in local if k != "zarr.json" and not _same(src / k, local[k], there.get(k))]
        progress.start("push", total=_mb(sum(local[k] for k in todo) + local["zarr.json"]), unit="MB")
        for i in range(0, len(todo), BATCH):
            keys = todo[i:i + BATCH]
            fs.put([str(src / k) for k in keys], [f"{root}/{k}" for k in keys])
            progress.advance(_mb(sum(local[k] for k in keys)))
        stale = [f"{root}/{k}" for k in there if k not in local and k != remote.MARKER]
        if stale:  # objects of an older state of this store (e.g. a resized array's chunks)
            fs.rm(stale)
        fs.put_file(str(src / "zarr.json"), f"{root}/zarr.json")  # the metadata last: the store is whole
        progress.advance(_mb(local["zarr.json"]))
        after = _remote_objects(fs, root)
        missing = [k for k, n in local.items() if after.get(k, {}).get("size") != n]
        if missing:
            raise StoreError(f"{url}: {len(missing)} object(s) missing or of the wrong size after upload, e.g. {missing[0]}",
                             hint="rerun the push (it resumes)")
        remote.remove_marker(url)
    except (UsageError, StoreError):
        raise
    except Exception as e:
        raise remote.translate(e, url) from e
    sent = sum(local[k] for k in todo) + local["zarr.json"]
    return CopyResult(str(src), str(url), len(local), len(todo) + 1, len(local) - len(todo) - 1, sent,
                      time.perf_counter() - t0, fingerprint, _check_copy(url, fingerprint))


def pull(url, dst, *, overwrite: bool = False, progress: Progress = SILENT) -> CopyResult:
    """Download the store at `url` into the local folder `dst` (.zarr), then validate it.

    A local copy of the same store (same id: an earlier pull) is brought up to date in place;
    another store at `dst` needs `overwrite`."""
    from rosetta_cli.store.backends import ZarrBackend
    from rosetta_cli.store.inspect import validate

    url, dst = remote.parse(url), Path(dst)
    if url is None:
        raise UsageError("pull needs a URL", hint="use `rosetta store convert` for local copies")
    _require_zarr(dst, url)
    remote.check_complete(url)  # never copy a half-uploaded store
    fs, root = remote.filesystem(url)
    t0 = time.perf_counter()
    try:
        there = {k: v for k, v in _remote_objects(fs, root).items() if k != remote.MARKER}
        sid = _store_id(fs.cat_file(f"{root}/zarr.json"))
        if dst.exists() and not (dst / remote.MARKER).exists() and _store_id(_read_local(dst / "zarr.json")) != sid:
            if not overwrite:
                raise UsageError(f"{dst}: already holds another store", hint="pass --overwrite to replace it, or choose another DST")
            ZarrBackend.remove(dst)
        dst.mkdir(parents=True, exist_ok=True)
        (dst / remote.MARKER).write_text('{"writer": "`rosetta store pull`"}')
        todo = [k for k in there if k != "zarr.json" and not _same(dst / k, there[k]["size"], there[k], local_side=True)]
        progress.start("pull", total=_mb(sum(there[k]["size"] for k in todo) + there["zarr.json"]["size"]), unit="MB")
        for i in range(0, len(todo), BATCH):
            keys = todo[i:i + BATCH]
            for k in keys:
                (dst / k).parent.mkdir(parents=True, exist_ok=True)
            fs.get([f"{root}/{k}" for k in keys], [str(dst / k) for k in keys])
            progress.advance(_mb(sum(there[k]["size"] for k in keys)))
        for k in set(_local_objects(dst, need_root=False)) - set(there):
            (dst / k).unlink()  # files of an older state of this store
        fs.get_file(f"{root}/zarr.json", str(dst / "zarr.json"))
        progress.advance(_mb(there["zarr.json"]["size"]))
    except (UsageError, StoreError):
        raise
    except Exception as e:
        raise remote.translate(e, url) from e
    (dst / remote.MARKER).unlink()
    with Store.open(dst) as s:
        problems, fingerprint = validate(s), s.fingerprint
    got = sum(there[k]["size"] for k in todo) + there["zarr.json"]["size"]
    return CopyResult(str(url), str(dst), len(there), len(todo) + 1, len(there) - len(todo) - 1, got,
                      time.perf_counter() - t0, fingerprint, problems)


def _store_id(raw: bytes | None) -> str | None:
    """The rosetta id in a root zarr.json (None if absent or unreadable)."""
    try:
        return json.loads(raw)["attributes"]["rosetta"]["id"]
    except Exception:
        return None


def _read_local(f: Path) -> bytes | None:
    return f.read_bytes() if f.is_file() else None


def _ours(fs, root: str, there: dict, sid: str) -> bool:
    """Whether the objects at root are (a copy in progress of) the store with id `sid`: its root
    zarr.json says so, or, without one, the marker says a push of it was under way."""
    if "zarr.json" in there:
        return _store_id(fs.cat_file(f"{root}/zarr.json")) == sid
    return remote.MARKER in there


def _require_zarr(local: Path, url) -> None:
    for p in (str(local), str(url)):
        if not p.rstrip("/").endswith(".zarr"):
            raise UsageError(f"{p}: push and pull copy .zarr stores",
                             hint="convert an HDF5 store first: rosetta store convert X.h5 X.zarr")


def _local_objects(src: Path, need_root: bool = True) -> dict[str, int]:
    """relative key → size of every file of a local zarr store (the marker excluded)."""
    out = {f.relative_to(src).as_posix(): f.stat().st_size for f in sorted(src.rglob("*")) if f.is_file()}
    out.pop(remote.MARKER, None)
    if need_root and "zarr.json" not in out:
        raise StoreError(f"{src}: no zarr.json (not a zarr store)", hint="give a store written by rosetta")
    return out


def _remote_objects(fs, root: str) -> dict[str, dict]:
    """relative key → fsspec info of every object under root ({} when there is none)."""
    try:
        found = fs.find(root, detail=True)
    except FileNotFoundError:
        return {}
    out, full = {}, {}
    for path, info in found.items():
        key = path.split("://", 1)[-1][len(root.split("://", 1)[-1]):].lstrip("/")
        if key and info.get("type", "file") != "directory":
            out[key], full[key] = dict(info), path
    unsized = [k for k, info in out.items() if info.get("size") is None]  # http listings give names only
    if unsized:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(16) as pool:  # one HEAD per object, 16 at a time
            for k, n in zip(unsized, pool.map(lambda k: fs.info(full[k]).get("size"), unsized)):
                out[k]["size"] = n
    return out


def _remote_md5(info: dict | None) -> str | None:
    """The object's MD5 where the filesystem reports one: an S3 single-part ETag, a GCS md5Hash."""
    if not info:
        return None
    etag = str(info.get("ETag") or info.get("etag") or "").strip('"')
    if len(etag) == 32 and "-" not in etag:
        return etag
    if info.get("md5Hash"):
        return base64.b64decode(info["md5Hash"]).hex()
    return None


def _same(local: Path, size: int, info: dict | None, local_side: bool = False) -> bool:
    """Whether the object needs no copy: same size, and the same MD5 where known."""
    if info is None:
        return False
    if local_side:
        if not local.exists() or local.stat().st_size != size:
            return False
    elif info.get("size") != size:
        return False
    md5 = _remote_md5(info)
    return md5 is None or hashlib.md5(local.read_bytes()).hexdigest() == md5


def _all_same(src: Path, local: dict, there: dict) -> bool:
    return all(_same(src / k, n, there[k]) for k, n in local.items())


def _check_copy(url, fingerprint: str) -> list[str]:
    """The uploaded store opens, has the source's fingerprint, and its arrays agree in shape.
    (Every object's presence and size were checked against the source's listing; reading every
    chunk back would download the whole store.)"""
    from rosetta_cli.store.inspect import _check_layout

    with Store.open(url) as s:
        problems = [] if s.kind == "pairs" else _check_layout(s)
        if s.fingerprint != fingerprint:
            problems.append(f"fingerprint {s.fingerprint} differs from the source's {fingerprint}")
    return problems


def _mb(n: int) -> float:
    return n / 1e6
