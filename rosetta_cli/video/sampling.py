"""Frame sampling: which timestamps of a clip become its T frames.

Uniform sampling takes the centre of each of T equal segments of [start, end]:
    t_i = start + (i + 0.5) * (end - start) / T,   i = 0..T-1
so T = 1 gives the clip's midpoint and no sample sits on the (often black) cut frame.
Frames are chosen by presentation timestamp, so variable-frame-rate videos sample
the frame actually on screen at t_i, not frame number round(t_i * fps).
"""

from __future__ import annotations

import math

import numpy as np

from rosetta_cli.video.errors import VideoError


def clip_window(start: float, end: float | None, duration: float, path="") -> tuple[float, float]:
    """Clamp a clip window to the video: end NaN/None → video end; windows past the end are cut.

    Raises VideoError if the window starts at or after the end of the video.
    """
    start = 0.0 if start is None or math.isnan(start) else max(0.0, float(start))
    stop = duration if end is None or math.isnan(end) else min(float(end), duration)
    if start >= duration:
        raise VideoError(f"{path}: clip starts at {start:.3f}s but the video is only {duration:.3f}s long",
                         hint="check the annotation's start time or the video file")
    if stop <= start:  # zero-length window: sample its start
        stop = min(start + 1e-3, duration)
    return start, stop


def sample_times(start: float, stop: float, frames: int) -> np.ndarray:
    """[T] float64 segment-centre timestamps within [start, stop)."""
    if frames < 1:
        raise ValueError("frames must be >= 1")
    return start + (np.arange(frames) + 0.5) * (stop - start) / frames


def frames_at(starts: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Index of the frame on screen at each time: the last frame whose pts <= t.

    starts: [F] sorted frame presentation times (s); times: [T] → [T] int64 in [0, F).
    """
    idx = np.searchsorted(starts, times, side="right") - 1
    return np.clip(idx, 0, len(starts) - 1).astype(np.int64)
