"""Temp-then-rename, one definition: a reader sees the old file (or directory) or the new one, never half.

The temporary name sits beside the target (same file system, so the rename is atomic) and carries the
pid, so two writers never share one.
"""

from __future__ import annotations

import os
from pathlib import Path


def temp_path(path) -> Path:
    """A sibling temporary name for `path`: .NAME.tmp-PID."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def write_text(path, text: str) -> None:
    """Write `text` to `path` atomically (fsync'd before the rename)."""
    tmp = temp_path(path)
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_with(path, write) -> None:
    """Call write(tmp_path) to produce the file, then rename it onto `path` (np.save, faiss.write_index, ...)."""
    tmp = temp_path(path)
    try:
        write(str(tmp))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def replace_dir(tmp, path) -> None:
    """Move the finished directory `tmp` onto `path`, replacing any old one.

    Directories cannot be renamed over a non-empty target, so the old one steps aside first
    (.NAME.old-PID); `recover_dir` puts it back if a crash falls between the two renames.
    """
    import shutil

    tmp, path = Path(tmp), Path(path)
    old = None
    if path.exists():
        old = path.with_name(f".{path.name}.old-{os.getpid()}")
        os.rename(path, old)
    os.rename(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def recover_dir(path) -> None:
    """Undo a crash between the two renames of `replace_dir`: put the newest `.NAME.old-*` back."""
    path = Path(path)
    if path.exists() or not path.parent.exists():
        return
    olds = sorted(path.parent.glob(f".{path.name}.old-*"), key=lambda p: p.stat().st_mtime)
    if olds:
        os.rename(olds[-1], path)


# ------------------------------------------------------------------ create-once outputs (stores)
def temp_sibling(path, tag: str = "tmp") -> Path:
    """A sibling temporary name that keeps `path`'s suffix (backends are chosen by it): .NAME.TAG-PID.SUFFIX."""
    path = Path(path)
    return path.with_name(f".{path.name}.{tag}-{os.getpid()}{path.suffix}")


def publish_new(tmp, path) -> bool:
    """Move the finished file or directory `tmp` to `path` unless `path` exists already; True if ours won.

    Unlike `os.replace`, a concurrent winner is never overwritten: a directory rename fails on an
    existing non-empty directory, and a file is hard-linked (fails if the name exists) then unlinked.
    """
    tmp, path = Path(tmp), Path(path)
    try:
        if tmp.is_dir():
            os.rename(tmp, path)
        else:
            os.link(tmp, path)
            os.unlink(tmp)
        return True
    except OSError:
        _remove(tmp)
        return False


def remove_stale_temps(path, tag: str = "tmp") -> None:
    """Remove `temp_sibling(path, tag)` leftovers of writers that were killed (their pid is gone)."""
    import psutil

    path = Path(path)
    for p in path.parent.glob(f".{path.name}.{tag}-*"):
        try:
            pid = int(p.name.rsplit("-", 1)[1].split(".")[0])
        except (ValueError, IndexError):
            continue  # not one of ours
        if not psutil.pid_exists(pid):
            _remove(p)


def _remove(p: Path) -> None:
    import shutil

    if p.is_dir():
        shutil.rmtree(p, ignore_errors=True)
    elif p.exists():
        p.unlink()
