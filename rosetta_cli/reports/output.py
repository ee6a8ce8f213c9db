"""The report folder rule shared by `rosetta bench --out` and `rosetta retrieve --out`."""

from __future__ import annotations

import shutil
from pathlib import Path

from rosetta_cli.errors import UsageError
from rosetta_cli.runtime.guard import output_action


def prepare_out(out, ours: tuple[str, ...], what: str, overwrite: bool) -> Path:
    """Create the report folder `out`.

    ours: the files and folders a report writes there. When any exists, the folder holds an earlier
    report: runtime.guard refuses without `overwrite` (reports take seconds, so they are never resumed);
    with it, only those are removed (anything else a user keeps there stays)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: exists and is not a directory", hint="choose another --out")
    found = [out / f for f in ours if (out / f).exists()]
    output_action(out, bool(found), what=what, overwrite=overwrite, resumable=False)
    for p in found:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()
    out.mkdir(parents=True, exist_ok=True)
    return out
