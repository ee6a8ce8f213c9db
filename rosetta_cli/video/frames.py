"""Still frames for reports: a clip's video file, and the frame at its middle, small.

Frames come through `read_clip` (PyAV), the same decoder path as extraction: the same window rule
(`clip_window`: an open end is the video's end, a window past the end is cut), the same rotation
handling, the same errors.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from rosetta_cli.video.errors import VideoError
from rosetta_cli.video.reader import read_clip


def resolve_video(video: str, store) -> Path | None:
    """A clip's video path: absolute, relative to the cwd, to the store's folder, or to meta video_root.

    store: anything with `.path` (the store's folder) and `.meta` (its attrs)."""
    if not video:
        return None
    p = Path(video)
    roots = [Path.cwd(), Path(store.path).parent] + ([Path(store.meta["video_root"])] if store.meta.get("video_root") else [])
    cands = [p] if p.is_absolute() else [r / p for r in roots]
    return next((c for c in cands if c.is_file()), None)


def middle_frame(path, start: float, end: float | None, max_side: int = 200) -> np.ndarray | None:
    """RGB uint8 [h, w, 3] of the frame on screen at the middle of [start, end] (seconds; end None or NaN:
    the video's end), shrunk so its longer side is at most `max_side`. None when the video cannot be decoded:
    a report shows a blank cell rather than failing."""
    start = 0.0 if start is None or not math.isfinite(start) else start
    end = None if end is None or not math.isfinite(end) else end
    try:
        frame = read_clip(path, start, end, frames=1, decoder="pyav")[0]          # [H, W, 3]
    except VideoError:
        return None
    return thumbnail(frame, max_side)


def thumbnail(img: np.ndarray, max_side: int = 200) -> np.ndarray:
    """[H, W, 3] uint8 shrunk (bilinear) so that max(h, w) <= max_side, each side at least 2 pixels; a smaller
    image is returned as it is (a report page scales it, and a larger PNG shows nothing more)."""
    from PIL import Image

    h, w = img.shape[:2]
    s = max_side / max(h, w)
    if s >= 1:
        return img
    size = (max(2, int(w * s)), max(2, int(h * s)))
    return np.asarray(Image.fromarray(img).resize(size, Image.BILINEAR))
