"""Finding video files on disk."""

from __future__ import annotations

import bisect
import os
from collections import Counter
from pathlib import Path

VIDEO_EXTS = (".mp4", ".mkv", ".webm", ".avi", ".mov")


def is_video(path: Path | str) -> bool:
    """True for a video file name (extension matched case-insensitively, hidden files excluded)."""
    name = os.path.basename(str(path))
    return not name.startswith(".") and name.lower().endswith(VIDEO_EXTS)


def list_videos(root: Path) -> list[Path]:
    """Every video file under root, recursively, sorted by path relative to root.

    Hidden files and folders (names starting with '.', e.g. macOS '._x.mp4') are skipped.
    Symlinked folders are not followed (no cycles); symlinked files are listed.
    """
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [Path(dirpath) / f for f in filenames if is_video(f)]
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


class VideoIndex:
    """Videos under a root, looked up by stem ('{uid}.mp4' -> uid) or by file name.

    `path(uid)` gives the found file, or — when it is missing — the path where it is
    expected (`<most common video folder>/<uid>.mp4`), so the row is kept and the
    extraction pipeline records the failure on it.

    Chunked videos (LaViLa's Ego4D preprocessing, its datasets README: each video cut into
    5-minute chunks, `<uid>.mp4/0.mp4`, `<uid>.mp4/300.mp4`, ..., named by their start second)
    are indexed as `chunks[uid]` = [(start_sec, path)] sorted; `locate` maps a clip onto its chunk.
    """

    def __init__(self, root: Path):
        self.root = root
        self.videos = list_videos(root) if root.is_dir() else []
        self.by_stem: dict[str, Path] = {}
        self.by_name: dict[str, Path] = {}
        self.chunks: dict[str, list[tuple[float, Path]]] = {}
        for p in self.videos:  # sorted: the first path wins, deterministically
            if is_video(p.parent.name) and p.stem.isdigit():
                self.chunks.setdefault(Path(p.parent.name).stem, []).append((float(p.stem), p))
                continue
            self.by_stem.setdefault(p.stem, p)
            self.by_name.setdefault(p.name, p)
        for c in self.chunks.values():
            c.sort()
        folders = Counter(p.parent for p in self.videos)
        # most common folder; ties broken by path so the choice is deterministic
        self.home = min(folders, key=lambda d: (-folders[d], str(d))) if folders else root
        self.missing = 0

    def path(self, uid: str) -> Path:
        """The video file of `uid` (any video extension), or the expected path if absent."""
        found = self.by_stem.get(uid)
        if found is not None:
            return found
        self.missing += 1
        return self.home / f"{uid}.mp4"

    def has(self, uid: str) -> bool:
        """Whether `uid` is on disk, whole or chunked."""
        return uid in self.by_stem or uid in self.chunks

    def is_chunked(self, uid: str) -> bool:
        """True when `uid` is on disk only as chunks."""
        return uid in self.chunks and uid not in self.by_stem

    def locate(self, uid: str, start: float, end: float) -> tuple[Path, float, float, bool]:
        """(chunk file, start, end, clamped) of a clip of a chunked `uid`, times relative to the chunk.
        A clip that runs past its chunk's end (the next chunk's start) is cut there (clamped=True),
        since one row decodes one file."""
        chunks = self.chunks[uid]
        k = max(0, bisect.bisect_right([c for c, _ in chunks], start) - 1)
        c0, path = chunks[k]
        stop = chunks[k + 1][0] if k + 1 < len(chunks) else float("inf")
        return path, start - c0, min(end, stop) - c0, end > stop
