"""`htm-aa`: narrated exo clips from HTM-AA (temporally aligned HowTo100M).

htm_aa_v1.csv has vid,timestamp,text; each timestamp is one (integer) second, so a clip
is the window [t - window/2, t + window/2] with start clipped at 0 (default window 4 s:
long enough for a 4-frame clip to show the action, close to HowTo100M's sentence length;
the paper does not publish it). Videos are {vid}.<ext> anywhere under root; a missing
video keeps its rows (expected path) unless missing="drop".

Sentencified ASR instead (source="asr"): one CSV per video with start,end,text in
`asr_dir` (default: a folder named "sentencified" under root), file name {vid}.csv; each
row is a clip [start, end]. Rows with empty text are dropped (counted in stats).

Clip ids: '{vid}@<start>-<end>' (repeats get '#1', '#2', ...). view exo.
"""

from __future__ import annotations

import math
from pathlib import Path

from rosetta_cli.datasets.annot import bad, csv_number, find_file, read_csv
from rosetta_cli.datasets.base import Manifest, clip_frame, unique_ids, window_id
from rosetta_cli.datasets.ego4d import check_missing
from rosetta_cli.datasets.videos import VideoIndex
from rosetta_cli.errors import InputNotFound, UsageError

ANNOTATION = "htm_aa_v1.csv"
ASR_DIR = "sentencified"


def load(
    root: Path,
    *,
    window: float = 4.0,
    source: str = "aligned",
    asr_dir: Path | str | None = None,
    split: str = "train",
    missing: str = "keep",
) -> Manifest:
    """Exo clips, one per aligned narration (or per ASR sentence)."""
    check_missing(missing)
    if not (isinstance(window, (int, float)) and math.isfinite(window) and window > 0):
        raise UsageError(f"window must be > 0 seconds, got {window!r}")
    videos_root = root if root.is_dir() else root.parent
    if source == "aligned":
        path = find_file(root, ANNOTATION) if root.is_dir() else root
        if path is None:
            raise InputNotFound(f"no {ANNOTATION} under {root}", hint="pass the HTM-AA folder, or source='asr'")
        spans, sources = _aligned(path, float(window)), [str(path)]
    elif source == "asr":
        spans, sources = _asr(Path(asr_dir) if asr_dir else videos_root / ASR_DIR)
    else:
        raise UsageError(f"source must be 'aligned' or 'asr', got {source!r}")
    index = VideoIndex(videos_root)
    rows, empty = [], 0
    for vid, start, end, text in spans:
        text = " ".join(text.split())
        if not text:
            empty += 1
            continue
        video = index.path(vid)
        if missing == "drop" and vid not in index.by_stem:
            continue
        rows.append({"clip_id": window_id(vid, start, end), "video": str(video.absolute()), "start": start,
                     "end": end, "view": "exo", "narration": text, "split": split})
    ids, renamed = unique_ids([r["clip_id"] for r in rows])
    clips = clip_frame(rows).assign(clip_id=ids)
    stats = {"empty_dropped": empty, "duplicate_ids_renamed": renamed, "missing_video_rows": index.missing}
    return Manifest("htm-aa", clips, role="exo", sources=sources, stats=stats)


def _aligned(path: Path, window: float) -> list[tuple[str, float, float, str]]:
    df = read_csv(path, ("vid", "timestamp", "text"))
    t = csv_number(path, df, "timestamp")
    if (t < 0).any():
        i = int((t < 0).to_numpy().nonzero()[0][0])
        raise bad(path, f"row {i} (line {i + 2})", "timestamp", f"must be >= 0, got {t.iloc[i]}")
    _no_empty(path, df, "vid")
    half = window / 2.0
    return [(v, max(0.0, ts - half), ts + half, txt) for v, ts, txt in zip(df["vid"].str.strip(), t, df["text"])]


def _asr(folder: Path) -> tuple[list[tuple[str, float, float, str]], list[str]]:
    if not folder.is_dir():
        raise InputNotFound(f"ASR folder not found: {folder}", hint="pass asr_dir=<folder of {vid}.csv files>")
    spans, sources = [], []
    for path in sorted(folder.glob("*.csv")):
        df = read_csv(path, ("start", "end", "text"))
        s, e = csv_number(path, df, "start"), csv_number(path, df, "end")
        badrow = (s < 0) | (e <= s)
        if badrow.any():
            i = int(badrow.to_numpy().nonzero()[0][0])
            raise bad(path, f"row {i} (line {i + 2})", "end", f"must be greater than start >= 0, got [{s.iloc[i]}, {e.iloc[i]}]")
        spans += [(path.stem, a, b, txt) for a, b, txt in zip(s, e, df["text"])]
        sources.append(str(path))
    if not sources:
        raise InputNotFound(f"no {{vid}}.csv files in {folder}")
    return spans, sources


def _no_empty(path: Path, df, col: str) -> None:
    empty = df[col].str.strip() == ""
    if empty.any():
        i = int(empty.to_numpy().nonzero()[0][0])
        raise bad(path, f"row {i} (line {i + 2})", col, "is empty")
