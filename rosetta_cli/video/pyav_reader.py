"""PyAV backend (`--decoder pyav`): seek to a keyframe, decode forward, pick frames by pts.

Rotation metadata (display matrix) is applied here, to match decord.
"""

from __future__ import annotations

import numpy as np

from rosetta_cli.video.errors import VideoError, wrap

SEEK_GAP_S = 2.0  # re-seek when the next sample is further ahead than this; decoding through is cheaper below


class PyAVVideo:
    """One open video. `duration` in seconds; `read(times)` → uint8 [T, H, W, 3]."""

    name = "pyav"

    def __init__(self, path: str):
        import av

        av.logging.set_level(None)  # silence libav's log; errors still raise
        self.path = path
        try:
            self.container = av.open(str(path))
        except Exception as e:
            raise wrap(path, "cannot open as a video", e) from None
        if not self.container.streams.video:
            self.container.close()
            raise VideoError(f"{path}: has no video stream (audio-only or not a video)",
                             hint="remove it from the dataset or give the video file")
        self.stream = self.container.streams.video[0]
        self.stream.thread_count = 1  # parallelism comes from the DataLoader workers
        tb = self.stream.time_base
        self.tb = float(tb) if tb else 1e-6
        self.t0 = (self.stream.start_time or 0) * self.tb
        self.duration = self._duration()
        self.rate = float(self.stream.average_rate or self.stream.guessed_rate or 30)

    def _duration(self) -> float:
        if self.stream.duration:
            return self.stream.duration * self.tb
        if self.container.duration:
            return self.container.duration / 1_000_000
        raise VideoError(f"{self.path}: video has no duration (empty or unindexed stream)")

    def _seek(self, t_rel: float):
        self.container.seek(int((t_rel + self.t0) / self.tb), stream=self.stream, backward=True, any_frame=False)
        return self.container.decode(self.stream)

    def read(self, times: np.ndarray) -> np.ndarray:
        try:
            picked = self._pick(np.sort(times))
            arrays = [self._to_array(f) for f in picked]
        except VideoError:
            raise
        except Exception as e:
            raise wrap(self.path, "decoding failed", e) from None
        if not arrays:
            raise VideoError(f"{self.path}: no frame could be decoded")
        order = np.argsort(np.argsort(times))  # results were made for sorted times; undo the sort
        return np.stack([arrays[i] for i in order])

    def _pick(self, targets: np.ndarray) -> list:
        """Frames on screen at the sorted times `targets` (relative seconds)."""
        out, prev, i, t_prev = [], None, 0, -1.0
        frames, seeked_to = self._seek(targets[0]), targets[0]
        while i < len(targets):
            frame = next(frames, None)
            if frame is None:
                break
            t = frame.time - self.t0 if frame.time is not None else t_prev + 1.0 / self.rate
            while i < len(targets) and targets[i] < t:  # target falls before this frame: prev is on screen
                out.append(prev if prev is not None else frame)
                i += 1
            prev, t_prev = frame, t
            # Far from the next sample: jump. Only forward, as a sparse keyframe index can land us before it again.
            if i < len(targets) and targets[i] - t > SEEK_GAP_S and targets[i] > seeked_to:
                frames, prev, seeked_to = self._seek(targets[i]), None, targets[i]
        if prev is None and i < len(targets):
            raise VideoError(f"{self.path}: no frame decodes at or after {targets[i]:.3f}s (truncated file?)")
        out.extend([prev] * (len(targets) - i))  # samples after the last frame show the last frame
        return out

    def _to_array(self, frame) -> np.ndarray:
        arr = frame.to_ndarray(format="rgb24")
        k = int(round((getattr(frame, "rotation", 0) or 0) / 90.0)) % 4
        return np.ascontiguousarray(np.rot90(arr, k)) if k else arr

    def close(self) -> None:
        self.container.close()
