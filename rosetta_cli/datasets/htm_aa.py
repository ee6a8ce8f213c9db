"""`htm-aa`: narrated exo clips from HTM-AA (temporally aligned HowTo100M).

htm_aa_v1.csv has vid,timestamp,text; each timestamp is one (integer) second, so a clip
is the window [t - window/2, t + window/2] with start clipped at 0 (a row with an empty vid or a
missing, unparsable or negative timestamp is skipped alone, Manifest.skipped) (default window 4 s:
long enough for a 4-frame clip to show the action, close to HowTo100M's sentence length;
the paper does not publish it). Videos are {vid}.<ext> anywhere under root; a missing
video keeps its rows (expected path) unless missing="drop".

Sentencified ASR instead (source="asr"), each sentence a clip [start, end], in either form:
- the released file (TAN, "Sentencified HTM": sentencified_htm_1200k.json / _370k.json): one JSON
  {vid: {"start": [s...], "end": [e...], "text": [t...]}}, the three lists of one length;
- one CSV per video with start,end,text, file name {vid}.csv (TAN's data loaders' own layout).
`asr_dir` is that JSON file or that folder; by default the first sentencified_htm*.json under root
(up to 3 levels down), else a folder named "sentencified" under root. Sentences with empty text are
dropped (counted in stats). A bad sentence (end <= start, a negative or non-numeric time, a text that
is not a string) or a video whose lists differ in length is skipped alone (Manifest.skipped).

Clip ids: '{vid}@<start>-<end>' (repeats get '#1', '#2', ...). view exo.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from rosetta_cli.datasets.annot import bad, csv_number, find_file, get, read_csv, read_json, skip
from rosetta_cli.datasets.base import Manifest, clip_frame, unique_ids, window_id
from rosetta_cli.datasets.ego4d import check_missing
from rosetta_cli.datasets.videos import VideoIndex
from rosetta_cli.errors import AnnotationError, InputNotFound, UsageError

ANNOTATION = "htm_aa_v1.csv"
ASR_DIR = "sentencified"
ASR_JSON = ("sentencified_htm_1200k.json", "sentencified_htm_370k.json")  # TAN's released files


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
    skipped: list[dict] = []
    if source == "aligned":
        path = find_file(root, ANNOTATION) if root.is_dir() else root
        if path is None:
            raise InputNotFound(f"no {ANNOTATION} under {root}", hint="pass the HTM-AA folder, or source='asr'")
        spans, sources = _aligned(path, float(window), skipped), [str(path)]
    elif source == "asr":
        spans, sources = _asr(_asr_path(videos_root, asr_dir), skipped)
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
    return Manifest("htm-aa", clips, role="exo", sources=sources, stats=stats, skipped=skipped)


def _aligned(path: Path, window: float, skipped: list[dict]) -> list[tuple[str, float, float, str]]:
    """(vid, start, end, text) per good row; a row with an empty vid or a missing, unparsable or
    negative timestamp is skipped alone (annot.skip)."""
    df = read_csv(path, ("vid", "timestamp", "text"))
    t = pd.to_numeric(df["timestamp"].str.strip(), errors="coerce").astype("float64")
    half = window / 2.0
    spans = []
    for i, (v, ts, raw, txt) in enumerate(zip(df["vid"].str.strip(), t, df["timestamp"], df["text"])):
        at = f"row {i} (line {i + 2})"
        if not v:
            skip(skipped, bad(path, at, "vid", "is empty", reason="'vid' is empty"))
        elif not (0 <= ts < float("inf")):
            got = "an empty cell" if not raw.strip() else repr(raw.strip())
            skip(skipped, bad(path, at, "timestamp", f"must be a number of seconds >= 0, got {got}"))
        else:
            spans.append((v, max(0.0, ts - half), ts + half, txt))
    return spans


def _asr_path(videos_root: Path, asr_dir) -> Path:
    """The sentencified ASR: asr_dir when given, else the released JSON under root, else root/sentencified."""
    if asr_dir:
        return Path(asr_dir)
    found = [p for p in (find_file(videos_root, name) for name in ASR_JSON) if p is not None]
    return found[0] if found else videos_root / ASR_DIR


def _asr(path: Path, skipped: list[dict]) -> tuple[list[tuple[str, float, float, str]], list[str]]:
    if path.is_file() and path.suffix.lower() == ".json":
        return _asr_json(path, skipped), [str(path)]
    if not path.is_dir():
        raise InputNotFound(f"sentencified ASR not found: {path}",
                            hint="pass asr_dir=<sentencified_htm_1200k.json, or a folder of {vid}.csv files>")
    spans, sources = [], []
    for csv in sorted(path.glob("*.csv")):
        df = read_csv(csv, ("start", "end", "text"))
        s, e = csv_number(csv, df, "start"), csv_number(csv, df, "end")
        for i, (a, b, txt) in enumerate(zip(s, e, df["text"])):
            if a < 0 or b <= a:
                skip(skipped, bad(csv, f"row {i} (line {i + 2})", "end", f"must be greater than start >= 0, got [{a}, {b}]",
                                  reason="end <= start (or start < 0)"))
                continue
            spans.append((csv.stem, float(a), float(b), txt))
        sources.append(str(csv))
    if not sources:
        raise InputNotFound(f"no {{vid}}.csv files in {path}")
    return spans, sources


def _asr_json(path: Path, skipped: list[dict]) -> list[tuple[str, float, float, str]]:
    """(vid, start, end, text) of every good sentence of {vid: {"start": [], "end": [], "text": []}}."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise bad(path, None, "<top level>", f"must be an object {{vid: {{start, end, text}}}}, got {type(data).__name__}")
    spans = []
    for vid, entry in data.items():
        at = f"video {vid!r}"
        try:
            cols = [get(entry, k, "list", path, at) for k in ("start", "end", "text")]
            if len({len(c) for c in cols}) > 1:
                raise bad(path, at, "text", f"has {len(cols[2])} sentences but start has {len(cols[0])} and end "
                                            f"{len(cols[1])}", reason="start/end/text lengths differ")
        except AnnotationError as e:
            skip(skipped, e)
            continue
        for k, (a, b, txt) in enumerate(zip(*cols)):
            try:
                spans.append(_sentence(path, f"{at} sentence {k}", vid, a, b, txt))
            except AnnotationError as e:
                skip(skipped, e)
    return spans


def _sentence(path: Path, at: str, vid: str, a, b, txt) -> tuple[str, float, float, str]:
    """One checked sentence: times are finite numbers with 0 <= start < end, text a string."""
    fields = {"start": a, "end": b, "text": txt}
    start, end = get(fields, "start", "num", path, at), get(fields, "end", "num", path, at)
    text = get(fields, "text", "str", path, at)
    if start < 0 or end <= start:
        raise bad(path, at, "end", f"must be greater than start >= 0, got [{start}, {end}]",
                  reason="end <= start (or start < 0)")
    return vid, float(start), float(end), text
