"""`csv`: a manifest CSV with the columns video,start,end,view,sync_id,narration,label,skill,split.

Only `video` is required. Relative video paths resolve against the CSV's folder.
Empty cells take the defaults: start 0, end NaN (to the end of the video), view = the
`view` option, skill/label/sync_id/narration/split "". An optional `clip_id` column
gives the ids (they must be unique); otherwise the id is the video path as written in
the CSV, plus '@<start>-<end>' when the row is a window, and repeats get '#1', '#2', ...
`root` may be the CSV file or a folder holding `manifest.csv`.
"""

from __future__ import annotations

import math
from pathlib import Path

from rosetta_cli.datasets.annot import bad, csv_number, read_csv
from rosetta_cli.datasets.base import SKILLS, Manifest, clip_frame, unique_ids, vocab, window_id
from rosetta_cli.datasets.folder import check_view
from rosetta_cli.errors import InputNotFound
from rosetta_cli.store.schema import VIEWS

TEXT_COLUMNS = ("sync_id", "narration", "label", "split")


def manifest_path(root: Path) -> Path:
    if root.is_dir():
        path = root / "manifest.csv"
        if not path.is_file():
            raise InputNotFound(f"{root} has no manifest.csv", hint="pass the manifest CSV file itself")
        return path
    return root


def load(root: Path, *, view: str = "ego") -> Manifest:
    """Clips listed in a manifest CSV; `view` fills empty view cells."""
    check_view(view)
    path = manifest_path(root)
    df = read_csv(path, ("video",))
    n = len(df)
    col = {c: (df[c].str.strip() if c in df.columns else [""] * n) for c in ("view", "skill", *TEXT_COLUMNS)}
    start = csv_number(path, df, "start", default=0.0) if "start" in df.columns else [0.0] * n
    end = csv_number(path, df, "end", default=math.nan) if "end" in df.columns else [math.nan] * n
    rows, ids = [], []
    for i, video in enumerate(df["video"].str.strip()):
        entry = f"row {i} (line {i + 2})"
        if not video:
            raise bad(path, entry, "video", "is empty")
        s, e = float(start[i]), float(end[i])
        _check_row(path, entry, s, e, col["view"][i], col["skill"][i])
        v = Path(video).expanduser()
        v = v if v.is_absolute() else path.parent / v
        ids.append(video if (s == 0 and math.isnan(e)) else window_id(video, s, e))
        rows.append({
            "video": str(v.absolute()), "start": s, "end": e,
            "view": col["view"][i] or view, "skill": col["skill"][i],
            **{c: col[c][i] for c in TEXT_COLUMNS},
        })
    ids, renamed = _ids(path, df, ids)
    for r, cid in zip(rows, ids):
        r["clip_id"] = cid
    clips = clip_frame(rows)
    return Manifest("csv", clips, role=None, labels=vocab(clips["label"]), sources=[str(path)],
                    stats={"duplicate_ids_renamed": renamed})


def _check_row(path: Path, entry: str, s: float, e: float, view: str, skill: str) -> None:
    if s < 0:
        raise bad(path, entry, "start", f"must be >= 0, got {s}")
    if not math.isnan(e) and e <= s:
        raise bad(path, entry, "end", f"must be greater than start ({s}), got {e}")
    if view and view not in VIEWS:
        raise bad(path, entry, "view", f"must be ego or exo (or empty), got {view!r}")
    if skill and skill not in SKILLS:
        raise bad(path, entry, "skill", f"must be good or bad (or empty), got {skill!r}")


def _ids(path: Path, df, generated: list[str]) -> tuple[list[str], int]:
    if "clip_id" not in df.columns:
        return unique_ids(generated)
    given = df["clip_id"].str.strip().tolist()
    seen: dict[str, int] = {}
    for i, cid in enumerate(given):
        if not cid:
            raise bad(path, f"row {i} (line {i + 2})", "clip_id", "is empty")
        if cid in seen:
            raise bad(path, f"row {i} (line {i + 2})", "clip_id", f"repeats {cid!r} from row {seen[cid]}",
                      hint="clip ids must be unique; drop the clip_id column to generate them")
        seen[cid] = i
    return given, 0
