"""Decoding real, generated and broken videos with both decoders (rosetta_cli.video)."""

from __future__ import annotations

import fractions
import shutil
from pathlib import Path

import numpy as np
import pytest

from rosetta_cli.video import VideoError, clip_window, frames_at, probe_duration, read_clip, sample_times

VIDEOS = Path(__file__).parent / "data" / "videos"
BOX, CUP = VIDEOS / "box.mp4", VIDEOS / "cup.mp4"
DECODERS = ("decord", "pyav")


# ---------------------------------------------------------------- generators (PyAV)
def make_video(path, w=64, h=48, n=20, fps=10, rotate=None, vfr=None, pix="yuv420p"):
    """Frame i has red = 10*i and a green top-left quarter (in coded orientation).

    vfr: list of frame durations (s), cycled, for a variable-frame-rate file.
    """
    import av

    c = av.open(str(path), "w")
    s = c.add_stream("libx264", rate=None if vfr else fps)
    s.width, s.height, s.pix_fmt = w, h, pix
    if vfr:
        s.codec_context.time_base = s.time_base = fractions.Fraction(1, 1000)
    if rotate is not None:
        s.set_display_rotation(rotate)
    t = 0.0
    for i in range(n):
        img = np.zeros((h, w, 3), np.uint8)
        img[:, :, 0] = (i * 10) % 256
        img[: h // 4, : w // 4, 1] = 255
        f = av.VideoFrame.from_ndarray(img, format="rgb24")
        if vfr:
            f.pts, f.time_base = int(round(t * 1000)), fractions.Fraction(1, 1000)
            t += vfr[i % len(vfr)]
        for p in s.encode(f):
            c.mux(p)
    for p in s.encode():
        c.mux(p)
    c.close()
    return path


def make_audio_only(path):
    import av

    c = av.open(str(path), "w")
    s = c.add_stream("aac", rate=16000)
    for i in range(20):
        f = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        f.sample_rate, f.pts = 16000, i * 1024
        for p in s.encode(f):
            c.mux(p)
    for p in s.encode():
        c.mux(p)
    c.close()
    return path


def red(frames):
    """Mean red of the bottom-right quarter (never green): encodes the frame index as 10*i."""
    h, w = frames.shape[1:3]
    return frames[:, h // 2:, w // 2:, 0].reshape(len(frames), -1).mean(1)


# ---------------------------------------------------------------- sampling
def test_sample_times_are_segment_centres():
    np.testing.assert_allclose(sample_times(2.0, 6.0, 4), [2.5, 3.5, 4.5, 5.5])
    np.testing.assert_allclose(sample_times(0.0, 1.0, 1), [0.5])


def test_clip_window_cuts_at_video_end_and_rejects_late_start():
    assert clip_window(3.0, 100.0, 10.0) == (3.0, 10.0)
    assert clip_window(0.0, float("nan"), 10.0) == (0.0, 10.0)
    with pytest.raises(VideoError, match="starts at 12.000s"):
        clip_window(12.0, 14.0, 10.0, "v.mp4")


def test_frames_at_picks_frame_on_screen():
    starts = np.array([0.0, 0.05, 0.25, 0.3])  # variable frame rate
    assert frames_at(starts, np.array([0.0, 0.1, 0.26, 9.0])).tolist() == [0, 1, 2, 3]


# ---------------------------------------------------------------- real videos
@pytest.mark.parametrize("decoder", DECODERS)
def test_real_videos_decode(decoder):
    for path, dur in ((BOX, 15.18), (CUP, 8.10)):
        assert probe_duration(path) == pytest.approx(dur, abs=0.05)
        frames = read_clip(path, 1.0, 5.0, frames=4, decoder=decoder)
        assert frames.shape == (4, 480, 640, 3)
        assert frames.dtype == np.uint8
        assert 20 < frames.mean() < 235
        assert frames.std() > 10  # real picture content, not black/garbage
        assert not np.array_equal(frames[0], frames[-1])        # the hand moves


def test_decoders_agree_on_real_video():
    a = read_clip(CUP, 0.0, None, frames=4, decoder="decord").astype(int)
    b = read_clip(CUP, 0.0, None, frames=4, decoder="pyav").astype(int)
    assert np.abs(a - b).mean() < 2.0  # same frames; colour conversion may differ by rounding


@pytest.mark.parametrize("decoder", DECODERS)
def test_window_past_end_is_cut(decoder):
    tail = read_clip(CUP, 7.0, 30.0, frames=2, decoder=decoder)   # window [7, 8.1]
    assert tail.shape == (2, 480, 640, 3)
    with pytest.raises(VideoError, match="only 8.1"):
        read_clip(CUP, 20.0, 30.0, frames=2, decoder=decoder)


# ---------------------------------------------------------------- generated videos
@pytest.mark.parametrize("decoder", DECODERS)
def test_frame_accuracy_constant_rate(tmp_path, decoder):
    p = make_video(tmp_path / "cfr.mp4", n=20, fps=10)  # frame i shown during [i/10, (i+1)/10)
    frames = read_clip(p, 0.0, 2.0, frames=4, decoder=decoder)  # t = .25 .75 1.25 1.75 → frames 2 7 12 17
    np.testing.assert_allclose(red(frames), [20, 70, 120, 170], atol=4)


@pytest.mark.parametrize("decoder", DECODERS)
def test_variable_frame_rate_uses_timestamps(tmp_path, decoder):
    # durations .05,.2 alternate: frame starts 0, .05, .25, .30, .50, .55, ...
    p = make_video(tmp_path / "vfr.mp4", n=20, vfr=[0.05, 0.2])
    frames = read_clip(p, 0.0, 1.0, frames=4, decoder=decoder)   # t = .125 .375 .625 .875 → frames 1 3 5 7
    np.testing.assert_allclose(red(frames), [10, 30, 50, 70], atol=4)  # frame-number sampling would give 1,3,6,8


@pytest.mark.parametrize("decoder", DECODERS)
def test_odd_size(tmp_path, decoder):
    p = make_video(tmp_path / "odd.mp4", w=97, h=61, pix="yuv444p")
    assert read_clip(p, 0, None, frames=3, decoder=decoder).shape == (3, 61, 97, 3)


@pytest.mark.parametrize("decoder", DECODERS)
def test_rotation_metadata_applied(tmp_path, decoder):
    p = make_video(tmp_path / "rot.mp4", w=64, h=32, rotate=90)
    frames = read_clip(p, 0, None, frames=2, decoder=decoder)
    assert frames.shape == (2, 64, 32, 3)                 # portrait: rotated
    green = frames[0, :, :, 1] > 128                       # the coded top-left quarter, rotated 90° CCW
    ys, xs = np.nonzero(green)
    assert ys.min() >= 48
    assert xs.max() < 8  # → bottom-left


# ---------------------------------------------------------------- broken inputs
def _broken(tmp_path) -> dict:
    zero = tmp_path / "zero.mp4"
    zero.write_bytes(b"")
    trunc = tmp_path / "trunc.mp4"
    trunc.write_bytes(BOX.read_bytes()[:600_000])
    text = tmp_path / "text.mp4"
    text.write_text("hello, I am not a video\n")
    return {"empty file": zero, "truncated": trunc, "cannot open": text,
            "no video stream": make_audio_only(tmp_path / "audio.mp4"), "no such file": tmp_path / "missing.mp4"}


@pytest.mark.parametrize("decoder", DECODERS)
def test_broken_files_raise_clear_per_clip_errors(tmp_path, decoder):
    for expected, path in _broken(tmp_path).items():
        with pytest.raises(VideoError) as info:
            read_clip(path, 0.0, 2.0, frames=4, decoder=decoder)
        msg = info.value.one_line()
        assert str(path) in msg, msg
        assert expected in msg, msg
        assert "\n" not in msg
        assert ".cc:" not in msg  # one line, no C++ source context


def test_probe_duration_errors(tmp_path):
    b = _broken(tmp_path)
    for key in ("empty file", "no video stream", "no such file", "cannot open"):
        with pytest.raises(VideoError, match=key):
            probe_duration(b[key])


def test_decoder_recovers_after_a_broken_file(tmp_path):
    with pytest.raises(VideoError):
        read_clip(_broken(tmp_path)["truncated"], 0, 2, decoder="decord")
    assert read_clip(CUP, 0, 2, frames=2).shape == (2, 480, 640, 3)


@pytest.mark.parametrize("decoder", DECODERS)
def test_overlapping_windows_do_not_depend_on_what_was_read_before(decoder):
    """A reader reused across rows of one video (sliding windows) returns the same frames as a fresh one:
    otherwise a resumed or sharded extraction differs from a single run."""
    from rosetta_cli.video import open_video

    times_a, times_b = np.array([2.0, 4.47]), np.array([4.47, 5.47])  # b starts where a ended
    fresh = open_video(BOX, decoder).read(times_b)
    reused = open_video(BOX, decoder)
    reused.read(times_a)
    np.testing.assert_array_equal(reused.read(times_b), fresh)


def test_keep_freed_memory_hands_glibc_the_intended_thresholds(monkeypatch):
    """keep_freed_memory() sets M_MMAP_THRESHOLD to glibc's largest value (32 MiB) and M_TRIM_THRESHOLD to
    512 MiB through mallopt, and reports whether both took. (What that does to page faults is a property
    of glibc and of the machine's load: benchmarks/alloc_faults.py measures it.)"""
    import ctypes

    from rosetta_cli.runtime import alloc

    calls, results = [], []

    class FakeLibc:
        def __init__(self, *_a, **_k):
            self.mallopt = self

        def __call__(self, param, value):
            calls.append((param, value))
            return results.pop(0)

    monkeypatch.setattr(ctypes, "CDLL", FakeLibc)
    monkeypatch.setattr(alloc.sys, "platform", "linux")
    results[:] = [1, 1]
    assert alloc.keep_freed_memory() is True
    assert calls == [(-3, 32 * 2**20), (-1, 512 * 2**20)]          # <malloc.h>: M_MMAP_THRESHOLD -3, M_TRIM_THRESHOLD -1
    calls.clear()
    results[:] = [1, 0]                                             # glibc refused the trim threshold
    assert alloc.keep_freed_memory(mmap_threshold=1 << 20, trim_threshold=7) is False
    assert calls == [(-3, 1 << 20), (-1, 7)]
    monkeypatch.setattr(alloc.sys, "platform", "darwin")            # not glibc: left alone, mallopt never called
    calls.clear()
    assert alloc.keep_freed_memory() is False
    assert calls == []
