"""Detect truncated files from the container index, before any decoder trusts them.

An interrupted download or copy keeps an MP4's index (moov) but loses the media data it
points to. decord then silently reports a shorter video and PyAV fails mid-clip, so both
decoders check here first: every indexed packet must lie inside the file.
"""

from __future__ import annotations

import os

from rosetta_cli.video.errors import VideoError

_TAIL = 256  # the furthest packets sit at the end of the index; checking the tail keeps long videos cheap


def check_not_truncated(path, stream=None) -> None:
    """Raise VideoError if the index of the first video stream points past the end of the file.

    stream: an open PyAV video stream of `path` (opened here if None). Formats without an
    index (e.g. MPEG-TS) pass; their damage surfaces as a decode error instead.
    """
    if stream is None:
        import av

        av.logging.set_level(None)
        try:
            with av.open(os.fspath(path)) as c:
                if c.streams.video:
                    check_not_truncated(path, c.streams.video[0])
        except VideoError:
            raise
        except Exception:  # unreadable by PyAV: the decoder will report it
            return
        return
    entries = stream.index_entries
    n = len(entries)
    if not n:
        return
    end = max(entries[i].pos + entries[i].size for i in range(max(0, n - _TAIL), n))
    size = os.path.getsize(path)
    if end > size:
        raise VideoError(f"{path}: truncated: the index needs {end} bytes but the file has {size} "
                         f"({100 * size / end:.0f}%)", hint="re-download or re-copy the video")
