"""Reading annotation files with errors that name the file, the entry and the field.

Every loader parses and checks all of its annotation files before returning, so a
malformed file stops `rosetta extract` before any video is decoded.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pandas as pd

from rosetta_cli.errors import AnnotationError, InputNotFound

_TYPES = {
    "str": (str,),
    "num": (int, float),
    "dict": (dict,),
    "list": (list,),
}
_TYPE_WORDS = {"str": "a string", "num": "a number", "dict": "an object", "list": "a list"}


def where(path: Path, entry: str | None = None) -> str:
    """'takes.json entry 3' style location (the file's path as given, then the entry)."""
    return f"{path}" + (f" {entry}" if entry else "")


def bad(path: Path, entry: str | None, field: str, problem: str, hint: str | None = None, *,
        reason: str | None = None) -> AnnotationError:
    """An AnnotationError naming the file, the entry (if any) and the field.

    It also carries `file`, `entry` and `reason` (a short, countable cause such as "'timestamp' is
    missing"; default "'<field>' is missing" or "'<field>' is invalid") for `skip`.
    """
    err = AnnotationError(
        f"{where(path, entry)}: field '{field}' {problem}",
        hint=hint or f"fix or re-download {Path(path).name}",
    )
    err.file, err.entry = str(path), entry
    err.reason = reason or f"'{field}' " + ("is missing" if problem == "is missing" else "is invalid")
    return err


def skip(skipped: list[dict], err: AnnotationError) -> None:
    """Record a bad record that is left out so the rest still loads (load_manifest(strict=True) raises it).

    The record: {"file", "entry", "reason", "error", "hint"}; `Manifest.skipped` holds them and extract's
    summary counts them by file and reason.
    """
    skipped.append({"file": getattr(err, "file", ""), "entry": getattr(err, "entry", None),
                    "reason": getattr(err, "reason", "invalid"), "error": str(err), "hint": err.hint})


def get(obj: dict, key: str, kind: str, path: Path, entry: str | None, *, required: bool = True, default=None):
    """obj[key] checked against `kind` ("str"|"num"|"dict"|"list"); None/absent -> default unless required.

    Numbers reject bools and NaN/inf; a key path like "a.b" in the message is the caller's `key`.
    """
    if not isinstance(obj, dict):
        raise bad(path, entry, key, f"cannot be read: the entry is {type(obj).__name__}, not an object")
    val = obj.get(key)
    if val is None:
        if required:
            raise bad(path, entry, key, "is missing")
        return default
    ok = isinstance(val, _TYPES[kind]) and not isinstance(val, bool)
    if ok and kind == "num" and not math.isfinite(val):
        ok = False
    if not ok:
        raise bad(path, entry, key, f"must be {_TYPE_WORDS[kind]}, got {type(val).__name__} {str(val)[:40]!r}")
    return val


def read_json(path: Path):
    """Parse a JSON file; syntax errors become AnnotationError with line and column."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise InputNotFound(f"annotation file not found: {path}") from None
    except json.JSONDecodeError as e:
        raise AnnotationError(
            f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})",
            hint=f"the file is damaged or truncated; re-download {path.name}",
        ) from None
    except (UnicodeDecodeError, OSError) as e:
        raise AnnotationError(f"{path}: cannot be read ({e})", hint=f"re-download {path.name}") from None


def read_csv(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    """Read a CSV as strings (empty cells stay ""), requiring `required` columns."""
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except FileNotFoundError:
        raise InputNotFound(f"file not found: {path}") from None
    except pd.errors.EmptyDataError:
        raise AnnotationError(f"{path}: empty CSV file", hint=f"it needs a header row with {', '.join(required)}") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as e:
        raise AnnotationError(f"{path}: not a readable CSV ({str(e).strip()[:200]})") from None
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise AnnotationError(
            f"{path}: field '{missing[0]}' is missing (no such column; columns are {', '.join(df.columns)})",
            hint=f"the header must include {', '.join(required)}",
        )
    return df


def csv_number(path: Path, df: pd.DataFrame, col: str, *, default: float | None = None) -> pd.Series:
    """Column `col` as float64; an empty cell -> default (an error when default is None).

    Errors name the row (0-based data row) and its line in the file (header = line 1).
    """
    raw = df[col].astype(str).str.strip()
    vals = pd.to_numeric(raw.where(raw != "", None), errors="coerce").astype("float64")
    empty = raw == ""
    badrows = ~empty & ~(vals.abs() < float("inf"))  # unparsable (NaN) or infinite
    if default is None:
        badrows |= empty
    if badrows.any():
        i = int(badrows.to_numpy().nonzero()[0][0])
        got = "an empty cell" if empty.iloc[i] else repr(raw.iloc[i])
        raise bad(path, f"row {i} (line {i + 2})", col, f"must be a number of seconds, got {got}")
    return vals.where(~empty, default if default is not None else float("nan"))


def find_file(root: Path, name: str, max_depth: int = 3) -> Path | None:
    """The shallowest file called `name` under root (root itself first), ties by path; hidden dirs skipped."""
    if root.is_file():
        return root if root.name == name else None
    return find_files(root, (name,), max_depth).get(name)


def find_files(root: Path, names: tuple[str, ...], max_depth: int = 3) -> dict[str, Path]:
    """{name: shallowest file with that name} for the names found within max_depth folder levels (one walk)."""
    found: dict[str, Path] = {}
    level = [root]
    for _ in range(max_depth + 1):
        for name in names:
            if name not in found:
                hits = sorted(d / name for d in level if (d / name).is_file())
                if hits:
                    found[name] = hits[0]
        if len(found) == len(names):
            break
        level = [Path(e.path) for d in level for e in _scandir(d) if e.is_dir() and not e.name.startswith(".")]
        if not level:
            break
    return found


def _scandir(d: Path):
    try:
        return sorted(os.scandir(d), key=lambda e: e.name)
    except OSError:
        return []
