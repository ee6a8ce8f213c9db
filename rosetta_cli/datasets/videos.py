"""Finding video files on disk."""

from __future__ import annotations

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
    """

    def __init__(self, root: Path):
        self.root = root
        self.videos = list_videos(root) if root.is_dir() else []
        self.by_stem: dict[str, Path] = {}
        self.by_name: dict[str, Path] = {}
        for p in self.videos:  # sorted: the first path wins, deterministically
            self.by_stem.setdefault(p.stem, p)
            self.by_name.setdefault(p.name, p)
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
