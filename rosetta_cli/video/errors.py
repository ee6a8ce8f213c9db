"""The per-clip error of the video layer.

A `VideoError` concerns one clip: the extraction pipeline records its message in the
store's `errors` array for that row and carries on with the other clips.
"""

from __future__ import annotations

import re

from rosetta_cli.errors import UsageError

# decord prefixes messages with "[hh:mm:ss] /path/to/source.cc:123: " (sometimes nested); users need none of it.
_CPP_CONTEXT = re.compile(r"\[\d\d:\d\d:\d\d\] \S+?:\d+: ")


class VideoError(UsageError):
    """A clip could not be decoded (missing, empty, corrupt, truncated, not a video, no video stream...)."""


def wrap(path, what: str, exc: BaseException) -> VideoError:
    """Turn a decoder library's exception into a one-line `VideoError` naming the file."""
    msg = _CPP_CONTEXT.sub("", " ".join(str(exc).split()))
    if "cannot find video stream" in msg:
        return VideoError(f"{path}: has no video stream (audio-only or not a video)",
                          hint="remove it from the dataset or give the video file")
    if len(msg) > 240:
        msg = msg[:237] + "..."
    return VideoError(f"{path}: {what} ({type(exc).__name__}: {msg})")
