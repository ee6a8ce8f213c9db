"""`read_clip`: T uniformly sampled RGB frames of a clip, by decord (default) or PyAV.

    frames = read_clip("a.mp4", start=2.0, end=6.0, frames=4)   # uint8 [4, H, W, 3]

Every failure (missing, empty, not a video, audio only, corrupt, truncated, window past
the end) raises `VideoError` with a one-line message naming the file.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from rosetta_cli.video.errors import VideoError, wrap
from rosetta_cli.video.integrity import check_not_truncated
from rosetta_cli.video.sampling import clip_window, sample_times

DECODERS = ("decord", "pyav")

_cache: dict = {}  # one open video per process: consecutive windows of a video reuse its reader and index
_cache_pid = os.getpid()
_inherited: list = []  # readers a forked child inherited: never used (their decoder threads are gone) nor freed


def _check_file(path) -> None:
    p = Path(path)
    if not p.exists():
        raise VideoError(f"{path}: no such file", hint="check --videos and the annotation's video paths")
    if p.is_dir():
        raise VideoError(f"{path}: is a directory, not a video file")
    if p.stat().st_size == 0:
        raise VideoError(f"{path}: empty file (0 bytes)", hint="re-download or re-copy the video")


def _open_backend(path: str, decoder: str):
    if decoder == "decord":
        from rosetta_cli.video.decord_reader import DecordVideo

        return DecordVideo(path)
    if decoder == "pyav":
        from rosetta_cli.video.pyav_reader import PyAVVideo

        return PyAVVideo(path)
    raise VideoError(f"unknown decoder {decoder!r}", hint=f"choose one of {', '.join(DECODERS)}")


def open_video(path, decoder: str = "decord"):
    """An open video with `.duration` (s) and `.read(times) -> uint8 [T,H,W,3]`, cached per process."""
    global _cache, _cache_pid
    if _cache_pid != os.getpid():  # we are a forked DataLoader worker: the parent's reader would deadlock here
        _inherited.append(_cache)   # keep it referenced: its destructor would join threads that do not exist
        _cache, _cache_pid = {}, os.getpid()
    path = os.fspath(path)
    key = (decoder, path)
    if key not in _cache:
        _check_file(path)
        _cache.clear()
        video = _open_backend(path, decoder)
        check_not_truncated(path, getattr(video, "stream", None))
        _cache[key] = video
    return _cache[key]


def release() -> None:
    """Close this process's cached reader.

    Why: after each read, decord's decoder thread keeps decoding ahead until its frame queue is full
    (0.2-0.8 core-s after a read of the test videos), work that the next read throws away when it seeks.
    An extraction worker encodes between batches, so that thread ran beside the encoder on the same
    cores: the workers' encode cost 0.166 core-s/clip with it, 0.113 without (docs/benchmarks.md, "Extraction"). Closing
    stops the thread; reopening costs ~0.02 core-s. A forked child's inherited readers are left alone
    (closing them would join threads that do not exist in the child).
    """
    if _cache_pid == os.getpid():
        _cache.clear()


def read_clip(path, start: float = 0.0, end: float | None = None, frames: int = 4,
              decoder: str = "decord") -> np.ndarray:
    """uint8 [frames, H, W, 3]: segment-centre samples of [start, end] (end None/NaN = video end).

    Windows running past the end of the video are cut at its end; rotation metadata is applied.
    """
    video = open_video(path, decoder)
    s, e = clip_window(start, end, video.duration, path)
    try:
        arr = video.read(sample_times(s, e, frames))
    except VideoError:
        _cache.clear()  # a reader that failed mid-stream is not reused
        raise
    except Exception as exc:  # anything else from a decoder library is still this clip's problem
        _cache.clear()
        raise wrap(path, "decoding failed", exc) from None
    if arr.ndim != 4 or arr.shape[0] != frames or arr.shape[-1] != 3 or arr.dtype != np.uint8:
        raise VideoError(f"{path}: decoder returned frames of shape {arr.shape} {arr.dtype}, expected [{frames},H,W,3] uint8")
    return arr


def probe_duration(path) -> float:
    """Duration of the first video stream in seconds, from the container header (fast, no decoding)."""
    _check_file(path)
    import av

    av.logging.set_level(None)
    try:
        with av.open(os.fspath(path)) as c:
            if not c.streams.video:
                raise VideoError(f"{path}: has no video stream (audio-only or not a video)")
            s = c.streams.video[0]
            if s.duration and s.time_base:
                return float(s.duration * s.time_base)
            if c.duration:
                return c.duration / 1_000_000
    except VideoError:
        raise
    except Exception as e:
        raise wrap(path, "cannot open as a video", e) from None
    raise VideoError(f"{path}: the container records no duration", hint="remux it, e.g. ffmpeg -i in.mp4 -c copy out.mp4")
