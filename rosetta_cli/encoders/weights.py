"""Locating bundled weights without importing them, and fingerprinting weight files."""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache
from pathlib import Path

from rosetta_cli.provenance import sha256_file


def package_dir(module: str) -> Path | None:
    """Installed directory of a package, found without importing it (keeps `rosetta encoders` fast)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


@lru_cache(maxsize=32)
def _sha(path: str, size: int, mtime: float) -> str:
    return sha256_file(path)


def fingerprint(path) -> str | None:
    """sha256 of a weights file (a directory: of its largest file), cached per path/size/mtime."""
    if path is None:
        return None
    p = Path(path)
    if p.is_dir():
        files = [f for f in p.rglob("*") if f.is_file()]
        if not files:
            return None
        p = max(files, key=lambda f: f.stat().st_size)
    if not p.is_file():
        return None
    st = p.stat()
    return _sha(os.fspath(p), st.st_size, st.st_mtime)
