"""Provenance: what every output records about how it was made (JSON only)."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import sys
import uuid
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from rosetta_cli import __version__


def new_id() -> str:
    return uuid.uuid4().hex


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# The resolved command of the CLI command running now (set by cli/core.StageCommand, scoped to its run).
_COMMAND: ContextVar[list[str] | None] = ContextVar("rosetta_command", default=None)


@contextmanager
def recording(argv: list[str]):
    """Within this block, outputs record `argv` as the command that made them."""
    token = _COMMAND.set(list(argv))
    try:
        yield
    finally:
        _COMMAND.reset(token)


def command_line() -> list[str]:
    """The command as the user could retype it: the CLI's resolved command (explicit options plus
    workspace defaults), else argv (`python -m rosetta_cli` and torchrun runs show as `rosetta`)."""
    if _COMMAND.get() is not None:
        return list(_COMMAND.get())
    if not sys.argv:
        return []
    prog = Path(sys.argv[0]).name
    return ["rosetta" if prog in ("__main__.py", "rosetta", "-m", "-c") else prog, *sys.argv[1:]]


def base_attrs(kind: str, config: Any = None) -> dict:
    """Root attributes shared by every store and checkpoint."""
    return {
        "kind": kind,
        "id": new_id(),
        "created": now_iso(),
        "command": command_line(),
        "tool_version": __version__,
        "config": to_jsonable(config) if config is not None else None,
    }


def to_jsonable(obj: Any) -> Any:
    """Dataclasses/Paths/numpy scalars → plain JSON values (round-trips through json)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = dataclasses.asdict(obj)
    return json.loads(json.dumps(obj, default=_default))


def _default(o: Any):
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, (set, tuple)):
        return list(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def fingerprint_of(*parts: Any) -> str:
    """Short stable hash of JSON-able parts."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=_default).encode()).hexdigest()[:16]
