"""Video decoding and frame sampling: `read_clip`, `probe_duration`, `VideoError`."""

from rosetta_cli.video.errors import VideoError
from rosetta_cli.video.reader import DECODERS, open_video, probe_duration, read_clip
from rosetta_cli.video.sampling import clip_window, frames_at, sample_times

__all__ = ["DECODERS", "VideoError", "clip_window", "frames_at", "open_video", "probe_duration", "read_clip",
           "sample_times"]
