"""`folder`: every video under a directory (or one video file).

Clip ids are the video's path relative to the directory (posix separators), so
a/clip.mp4 and b/clip.mp4 never collide; windows add '@<start>-<end>'.

Windows (`window`, `stride` seconds) need each video's duration, from the caller's
`duration_fn(path) -> float | None` (the extraction pipeline passes its probe).
Windows are [k*stride, k*stride + window] for every k with the window inside the video;
a trailing remainder shorter than `window` is dropped, and a video shorter than one
window gives one clip [0, duration]. A video whose duration is unknown (the probe
returns None/0/NaN or raises) gives one whole-video row (start 0, end NaN), so the
pipeline records the failure on that row instead of the video silently vanishing.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

from rosetta_cli.datasets.base import Manifest, clip_frame, window_id
from rosetta_cli.datasets.videos import is_video, list_videos
from rosetta_cli.errors import UsageError
from rosetta_cli.store.schema import VIEWS


def check_view(view: str) -> str:
    if view not in VIEWS:
        raise UsageError(f"view must be 'ego' or 'exo', got {view!r}", hint="pass view='ego' or view='exo'")
    return view


def load(
    root: Path,
    *,
    view: str = "ego",
    window: float | None = None,
    stride: float | None = None,
    split: str = "",
    duration_fn: Callable[[Path], float | None] | None = None,
) -> Manifest:
    """One clip per video (or per window). `view` is the same for every clip."""
    check_view(view)
    base = root.parent if root.is_file() else root
    videos = [root] if root.is_file() else list_videos(root)
    if root.is_file() and not is_video(root):
        raise UsageError(f"{root} is not a video file", hint="pass a folder of videos or a video file")
    stride = check_window(window, stride)
    if window is not None and duration_fn is None:
        raise UsageError("window needs video durations", hint="pass duration_fn=<probe> (rosetta extract does)")
    rows, stats = [], {"unknown_duration": 0}
    for path in videos:
        rel = path.relative_to(base).as_posix()
        common = {"video": str(path.absolute()), "view": view, "split": split}
        spans = None
        if window is not None:
            spans = windows(_duration(duration_fn, path), window, stride)
            stats["unknown_duration"] += spans is None
        if spans is None:
            rows.append({"clip_id": rel, "start": 0.0, "end": math.nan, **common})
        else:
            rows += [{"clip_id": window_id(rel, s, e), "start": s, "end": e, **common} for s, e in spans]
    if window is None:
        stats = {}
    return Manifest("folder", clip_frame(rows), role=None, stats=stats)


def check_window(window, stride) -> float | None:
    """The stride to use (default = window), after checking both; None without a window."""
    if window is None:
        if stride is not None:
            raise UsageError("stride needs window", hint="pass window=<seconds> too")
        return None
    if not (window > 0 and math.isfinite(window)):
        raise UsageError(f"window must be > 0 seconds, got {window}")
    stride = window if stride is None else stride
    if not (stride > 0 and math.isfinite(stride)):
        raise UsageError(f"stride must be > 0 seconds, got {stride}")
    return stride


def _duration(duration_fn, path: Path) -> float | None:
    try:
        d = duration_fn(path)
    except Exception:  # an unreadable video: its whole-video row records the failure later
        return None
    if d is None or not isinstance(d, (int, float)) or not math.isfinite(d) or d <= 0:
        return None
    return float(d)


def windows(duration: float | None, window: float, stride: float) -> list[tuple[float, float]] | None:
    """[(start, end)] windows inside [0, duration]; None when the duration is unknown."""
    if duration is None:
        return None
    if duration < window:
        return [(0.0, duration)]
    n = int(math.floor((duration - window) / stride + 1e-9)) + 1
    return [(round(k * stride, 6), round(k * stride + window, 6)) for k in range(n)]
