"""H.264 MP4 writing with PyAV (libx264, yuv420p, one encoder thread to stay CPU-light)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np


class Mp4Writer:
    """Write uint8 RGB frames [H, W, 3] to an MP4. Use as a context manager."""

    def __init__(self, path: str | Path, fps: int, size: int, crf: int = 23):
        import av

        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.container = av.open(str(path), mode="w")
        st = self.container.add_stream("libx264", rate=fps)
        st.width = st.height = size
        st.pix_fmt = "yuv420p"
        st.time_base = Fraction(1, fps)
        # Short GOP: extractors seek to a few frames per clip. One thread: the machine is shared,
        # and single-threaded x264 is bit-exact across runs (determinism tests compare files).
        st.options = {"crf": str(crf), "preset": "veryfast", "g": str(2 * fps), "threads": "1"}
        st.codec_context.thread_count = 1
        self.stream, self.n = st, 0
        self._av = av

    def write(self, frame: np.ndarray) -> None:
        vf = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        vf.pts = self.n
        self.n += 1
        for packet in self.stream.encode(vf):
            self.container.mux(packet)

    def close(self) -> None:
        for packet in self.stream.encode(None):
            self.container.mux(packet)
        self.container.close()

    def __enter__(self) -> "Mp4Writer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_frames(path: str | Path) -> np.ndarray:
    """Decode every frame of a video → uint8 [T, H, W, 3] (used by tests and debugging)."""
    import av

    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
