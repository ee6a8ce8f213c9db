"""Stores at URLs: s3://, gs://, http(s)://, hf:// opened in place through fsspec (docs/store-format.md,
"Sharing stores").

Local paths keep the fast local readers (backends._RawChunks); a URL goes through zarr's FsspecStore,
whose reads fetch a selection's chunks concurrently. Credentials come from each filesystem's usual
environment variables and config files (AWS_*, ~/.aws, GOOGLE_APPLICATION_CREDENTIALS, HF_TOKEN, ...):
nothing about them is ever written into a store.

Object stores have no rename, so a store that is being written in place (`rosetta store push`, a
remote `Store.create`) carries the marker object `.rosetta-incomplete.json` from its first byte to its
last; `check_complete` refuses a store that still has it, or that has objects but no root zarr.json.
"""

from __future__ import annotations

import json
import re
from pathlib import PurePosixPath

from rosetta_cli.errors import InputNotFound, StoreError, UsageError

MARKER = ".rosetta-incomplete.json"  # present while a store is written in place (push, remote create)

# scheme → (fsspec protocol, the module that implements it, the extra that installs it)
SCHEMES = {
    "s3": ("s3", "s3fs", "s3"),
    "gs": ("gcs", "gcsfs", "gcs"),
    "gcs": ("gcs", "gcsfs", "gcs"),
    "http": ("http", "aiohttp", "http"),
    "https": ("http", "aiohttp", "http"),
    "hf": ("hf", "huggingface_hub", "hf"),
}
WRITABLE = ("s3", "gs", "gcs")  # http is read-only; hf needs a commit per write (push a local copy instead)
# pathlib collapses "//" (Path("s3://b/x") is "s3:/b/x"): accept one or more slashes after the scheme.
_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*):/+(?P<rest>.*)$")


class StoreURL(str):
    """A store's URL, usable where stages expect a Path for naming (`.name`, `.suffix`, `/`, `.exists()`)."""

    @property
    def scheme(self) -> str:
        return self.split(":", 1)[0].lower()

    @property
    def name(self) -> str:
        return PurePosixPath(self.rstrip("/").split("://", 1)[1]).name

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.name).suffix

    @property
    def parent(self) -> "StoreURL":
        return StoreURL(self.rstrip("/").rsplit("/", 1)[0])

    def __truediv__(self, other) -> "StoreURL":
        return StoreURL(f"{self.rstrip('/')}/{other}")

    def exists(self) -> bool:
        return exists(self)


def parse(p) -> StoreURL | None:
    """The URL that `p` (str or Path) spells, or None for a local path.

    Known schemes only (a Windows drive "C:/x" or a local "weird:name" stays a path); the "//" that
    pathlib collapsed is put back. An unknown scheme that looks like a URL (x://) is refused."""
    if p is None or isinstance(p, StoreURL):
        return p
    m = _URL.match(str(p))
    if not m:
        return None
    scheme = m["scheme"].lower()
    if scheme not in SCHEMES:
        if "://" in str(p):
            raise UsageError(f"{p}: unsupported URL scheme {scheme!r}",
                             hint="stores open from a local path or an s3://, gs://, http(s)://, hf:// URL")
        return None
    return StoreURL(f"{scheme}://{m['rest']}")


def is_url(p) -> bool:
    return parse(p) is not None


def as_path(p):
    """A URL as StoreURL, anything else as a pathlib.Path (where stages resolve --out/--ego/...)."""
    from pathlib import Path

    u = parse(p)
    return u if u is not None else Path(p)


def require_local(p, option: str) -> None:
    """Refuse a URL given to an option that only takes a local path (exit 2)."""
    if is_url(p):
        raise UsageError(f"{option} {p}: a URL is not accepted here, only a local path",
                         hint=f"copy it first (`rosetta store pull {p} LOCAL.zarr` for a store)")


def extra_for(url: StoreURL) -> str:
    return SCHEMES[url.scheme][2]


def filesystem(url: StoreURL, **opts):
    """(fsspec filesystem, path inside it) for `url`; a missing implementation names the extra to install."""
    import fsspec

    protocol, module, extra = SCHEMES[url.scheme]
    try:
        fs, path = fsspec.core.url_to_fs(str(url), **opts)
    except ImportError as e:
        raise UsageError(f"{url}: reading {url.scheme}:// URLs needs the {module} package ({e.name or module} is not installed)",
                         hint=f"pip install 'rosetta-cli[{extra}]'") from e
    return fs, path.rstrip("/")


def zarr_store(url: StoreURL, mode: str):
    """A zarr FsspecStore at `url` (async chunk fetches); read-only unless mode is "w" or "r+"."""
    from zarr.storage import FsspecStore

    if mode != "r" and url.scheme not in WRITABLE:
        raise UsageError(f"{url}: {url.scheme}:// stores are read-only here",
                         hint="write to a local path or s3:// / gs://, then share it (`rosetta store push`)")
    filesystem(url)  # the extra check, with its message
    try:
        return FsspecStore.from_url(str(url), read_only=mode == "r")
    except Exception as e:
        raise translate(e, url) from e


def exists(url: StoreURL) -> bool:
    fs, path = filesystem(url)
    try:
        return bool(fs.exists(path))
    except Exception as e:
        raise translate(e, url) from e


def check_complete(url: StoreURL) -> None:
    """Refuse a store that is not all there: a push or create in progress (or killed), or objects
    without a root zarr.json. InputNotFound when nothing is at `url`. Reads objects rather than
    asking `exists` (fsspec's http `exists` answers False for an unreachable host)."""
    fs, path = filesystem(url)
    marker = _read(fs, f"{path}/{MARKER}", url)
    if marker is not None:
        raise StoreError(f"{url}: incomplete store ({_writer(marker)} did not finish)",
                         hint=f"rerun it to completion (`rosetta store push` resumes), or remove {url}")
    if _read(fs, f"{path}/zarr.json", url) is not None:
        return
    try:
        there = fs.exists(path)
    except Exception as e:
        raise translate(e, url) from e
    if not there:
        raise InputNotFound(f"{url}: no such store",
                            hint="check the URL (and your credentials), or upload it with `rosetta store push`")
    raise StoreError(f"{url}: incomplete store: objects but no root zarr.json (a half-finished upload?)",
                     hint="upload it again with `rosetta store push SRC URL`")


def _read(fs, path: str, url) -> bytes | None:
    """The object's bytes, or None if it does not exist; other failures → translate."""
    try:
        return fs.cat_file(path)
    except FileNotFoundError:
        return None
    except Exception as e:
        raise translate(e, url) from e


def _writer(raw: bytes) -> str:
    try:
        return json.loads(raw).get("writer", "an upload")
    except Exception:
        return "an upload"


def write_marker(url: StoreURL, writer: str) -> None:
    fs, path = filesystem(url)
    fs.pipe_file(f"{path}/{MARKER}", json.dumps({"writer": writer}).encode())


def remove_marker(url: StoreURL) -> None:
    fs, path = filesystem(url)
    if fs.exists(f"{path}/{MARKER}"):
        fs.rm_file(f"{path}/{MARKER}")


def remove(url: StoreURL) -> None:
    """Delete every object under `url` (for --overwrite)."""
    fs, path = filesystem(url)
    try:
        if fs.exists(path):
            fs.rm(path, recursive=True)
    except FileNotFoundError:
        pass
    except Exception as e:
        raise translate(e, url) from e


def size(url: StoreURL) -> int:
    """Bytes under `url` (0 where the filesystem cannot list, e.g. some HTTP servers)."""
    fs, path = filesystem(url)
    try:
        return int(fs.du(path, total=True))
    except Exception:
        return 0


def open_file(url: StoreURL):
    """A read-only fsspec file object (for HDF5 by URL: h5py reads file-like objects)."""
    fs, path = filesystem(url)
    try:
        return fs.open(path, "rb", block_size=4 << 20, cache_type="blockcache")
    except Exception as e:
        raise translate(e, url) from e


def translate(e: BaseException, url) -> UsageError:
    """An fsspec / aiohttp / botocore exception → one line naming the URL and the fix (exit 2)."""
    if isinstance(e, UsageError):
        return e
    names = {c.__name__ for c in type(e).__mro__}
    text = f"{type(e).__name__}: {e}".splitlines()[0][:200]
    creds = {"s3": "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or ~/.aws/credentials (AWS_PROFILE)",
             "gs": "GOOGLE_APPLICATION_CREDENTIALS or `gcloud auth application-default login`",
             "gcs": "GOOGLE_APPLICATION_CREDENTIALS or `gcloud auth application-default login`",
             "hf": "HF_TOKEN or `huggingface-cli login`"}.get(str(url).split(":", 1)[0], "the server's access rules")
    if names & {"NoCredentialsError", "PartialCredentialsError", "NoAuthTokenError"} or isinstance(e, PermissionError):
        return StoreError(f"{url}: access denied or no credentials ({text})", hint=f"set credentials: {creds}")
    if names & {"ClientConnectorError", "EndpointConnectionError", "ConnectTimeoutError", "ServerDisconnectedError",
                "ConnectionError", "ClientOSError", "ConnectionRefusedError", "gaierror", "TimeoutError"}:
        return StoreError(f"{url}: cannot reach the host ({text})",
                          hint="check the URL, the network, and the endpoint (AWS_ENDPOINT_URL for S3-compatible servers)")
    if isinstance(e, FileNotFoundError) or names & {"NoSuchBucket", "NoSuchKey"}:
        return InputNotFound(f"{url}: not found ({text})", hint="check the URL; upload the store with `rosetta store push`")
    return StoreError(f"{url}: remote read failed ({text})", hint="check the URL, the network and your credentials")


CHECKPOINT_FILES = ("config.json", "model.safetensors")  # what loading a dual encoder reads


def local_checkpoint(p):
    """A checkpoint folder given as a URL (--model s3://.../vi) → a local copy of just config.json and
    model.safetensors under ROSETTA_CACHE (default ~/.cache/rosetta)/models; a local path is returned as is.

    config.json is fetched every time (it is small, and says which weights belong to it); the weights
    only when the cached file's sha256 differs from the config's `weights_sha256`."""
    import hashlib
    import os
    from pathlib import Path

    from rosetta_cli.provenance import sha256_file

    url = parse(p)
    if url is None:
        return p
    cache = Path(os.environ.get("ROSETTA_CACHE", Path.home() / ".cache" / "rosetta")) / "models"
    dst = cache / hashlib.sha256(url.rstrip("/").encode()).hexdigest()[:16]
    dst.mkdir(parents=True, exist_ok=True)
    fs, path = filesystem(url)
    try:
        raw = fs.cat_file(f"{path}/config.json")
    except FileNotFoundError as e:
        raise InputNotFound(f"{url}: no checkpoint here (no config.json)", hint="check the URL") from e
    except Exception as e:
        raise translate(e, url) from e
    try:
        want = json.loads(raw).get("weights_sha256")
    except ValueError:
        want = None
    weights = dst / "model.safetensors"
    if not (want and weights.exists() and sha256_file(weights) == want):
        tmp = dst / f".model.safetensors.tmp-{os.getpid()}"
        try:
            fs.get_file(f"{path}/model.safetensors", str(tmp))
        except Exception as e:
            tmp.unlink(missing_ok=True)
            raise translate(e, url) from e
        os.replace(tmp, weights)
    (dst / "config.json").write_bytes(raw)  # after the weights: a cached config always has its weights
    return dst

