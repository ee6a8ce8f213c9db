"""decord backend (the default): random access by frame index, timestamps from the index.

decord applies the container's rotation metadata itself (checked in tests against PyAV).
"""

from __future__ import annotations

import numpy as np

from rosetta_cli.video.errors import wrap
from rosetta_cli.video.sampling import frames_at


class DecordVideo:
    """One open video. `duration` in seconds; `read(times)` → uint8 [T, H, W, 3]."""

    name = "decord"

    def __init__(self, path: str):
        import decord

        decord.logging.set_level(decord.logging.QUIET)  # ffmpeg chatter would break the progress bar
        self.path = path
        try:
            # One thread: parallelism comes from the DataLoader workers, and cores are shared.
            self.vr = decord.VideoReader(str(path), num_threads=1)
            n = len(self.vr)
            ts = self.vr.get_frame_timestamp(np.arange(n)) if n else np.zeros((0, 2))
        except Exception as e:  # decord raises RuntimeError / DECORDError with C++ context
            raise wrap(path, "cannot open as a video", e) from None
        if n == 0:
            raise wrap(path, "video stream has no frames", ValueError("0 frames"))
        # Times are relative to the first frame, as annotations count from the video's start.
        self.starts = ts[:, 0] - ts[0, 0]
        self.duration = float(max(ts[-1, 1] - ts[0, 0], self.starts[-1] + 1e-3))

    def read(self, times: np.ndarray) -> np.ndarray:
        idx = frames_at(self.starts, times)
        try:
            # decord resumes from its last position: without a seek, a batch that starts at the frame the
            # previous batch ended on comes back shifted (frames 132, 162 for 134, 164), so features of
            # overlapping windows would depend on what was decoded before (breaking resume and --shard)
            self.vr.seek(0)
            return self.vr.get_batch(idx.tolist()).asnumpy()
        except Exception as e:
            raise wrap(self.path, f"decoding frames {idx.min()}..{idx.max()} failed", e) from None
