"""`rosetta prep`: transcoded copies decode to the same frames (scaled), at the same times, with key frames
every second; failures stay alone; reruns resume; other settings are refused; `extract --prepped` reads them."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from rosetta_cli.errors import UsageError
from rosetta_cli.video import read_clip
from rosetta_cli.video.prep import PrepConfig, gop_frames, output_path, run, scaled_size

sys.path.insert(0, str(Path(__file__).parent))
from test_video_decode import CUP, make_video  # noqa: E402


def shrink(frames: np.ndarray, w: int, h: int) -> np.ndarray:
    """uint8 [T, H, W, 3] → [T, h, w, 3] (PIL bicubic: an independent resizer)."""
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(f).resize((w, h), Image.BICUBIC)) for f in frames])


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """A real video, a VFR one, a rotated .mkv in a subfolder, and a broken file."""
    src = tmp_path_factory.mktemp("src")
    (src / "sub").mkdir()
    shutil.copy(CUP, src / "cup.mp4")
    make_video(src / "sub" / "vfr.mp4", w=320, h=240, n=30, vfr=[0.05, 0.2])
    make_video(src / "sub" / "rot.mkv", w=320, h=240, n=20, rotate=90)
    (src / "broken.mp4").write_text("not a video")
    return src


@pytest.fixture(scope="module")
def prepped(source, tmp_path_factory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("prep") / "p144"
    return out, run(PrepConfig(str(source), str(out), short_side=144, workers=0))


def test_helpers():
    assert gop_frames("1s", 29.97) == 30 and gop_frames("0.5s", 30) == 15 and gop_frames("12", 50) == 12
    for bad in ("x", "-1s", "0"):
        with pytest.raises(UsageError):
            gop_frames(bad, 30)
    assert scaled_size(1920, 1080, 288) == (512, 288) and scaled_size(1080, 1920, 288) == (288, 512)
    assert scaled_size(320, 240, 288) == (320, 240)  # never upscaled
    assert scaled_size(641, 481, 288) == (384, 288)  # even sides (yuv420p)
    assert output_path("a/b.mp4") == "a/b.mp4" and output_path("a/b.mkv") == "a/b.mkv.mp4"


def test_outputs_mirror_and_failure_stays_alone(source, prepped):
    out, r = prepped
    assert (r.videos, r.done, r.failed, r.skipped) == (4, 3, 1, 0)
    assert r.failures[0][0] == "broken.mp4" and "broken.mp4" in r.failures[0][1]
    assert {p.relative_to(out).as_posix() for p in out.rglob("*.mp4")} == {"cup.mp4", "sub/vfr.mp4", "sub/rot.mkv.mp4"}
    log = [json.loads(line) for line in (out / "prep-log.jsonl").read_text().splitlines()]
    assert sorted((e["video"], e["status"]) for e in log) == [
        ("broken.mp4", "failed"), ("cup.mp4", "done"), ("sub/rot.mkv", "done"), ("sub/vfr.mp4", "done")]
    settings = json.loads((out / "prep.json").read_text())
    assert settings["short_side"] == 144 and settings["gop"] == "1s" and settings["source"] == str(source)
    assert not list(out.rglob(".*"))  # no temporaries left


@pytest.mark.parametrize("decoder", ["decord", "pyav"])
def test_same_frames_at_same_times(source, prepped, decoder):
    """Each sampled frame of the copy is the source's frame at that time, scaled (VFR timing kept)."""
    out, _ = prepped
    for rel, start, end in (("cup.mp4", 1.0, 7.0), ("sub/vfr.mp4", 0.3, 3.5)):
        a = read_clip(source / rel, start, end, 6, decoder)
        b = read_clip(out / output_path(rel), start, end, 6, decoder)
        assert b.shape[1] == 144
        err = np.abs(shrink(a, b.shape[2], b.shape[1]).astype(int) - b.astype(int)).mean(axis=(1, 2, 3))
        assert err.max() < 6, err  # codec noise; a neighbouring frame differs by far more in the VFR video
    v = read_clip(out / "sub/vfr.mp4", 0.3, 3.5, 6, decoder)[:, 60, 100, 0].astype(int)
    src = read_clip(source / "sub/vfr.mp4", 0.3, 3.5, 6, decoder)[:, 120, 200, 0].astype(int)
    assert np.abs(v - src).max() <= 4  # red = 10 * frame index: the same frame indices


def test_rotation_is_applied_to_pixels(source, prepped):
    out, _ = prepped
    b = read_clip(out / "sub/rot.mkv.mp4", 0, None, 2, "pyav")
    a = read_clip(source / "sub/rot.mkv", 0, None, 2, "pyav")  # PyAV applies the display matrix
    assert a.shape[1:3] == (320, 240) and b.shape[1:3] == (192, 144)  # upright: taller than wide
    assert np.abs(shrink(a, 144, 192).astype(int) - b.astype(int)).mean() < 8
    import av

    with av.open(str(out / "sub/rot.mkv.mp4")) as c:  # no rotation left to apply
        f = next(c.decode(video=0))
        assert (getattr(f, "rotation", 0) or 0) == 0


def test_key_frame_every_second(prepped):
    import av

    out, _ = prepped
    with av.open(str(out / "cup.mp4")) as c:
        s = c.streams.video[0]
        keys = [i for i, f in enumerate(c.decode(s)) if f.key_frame]
        n = s.frames
    gop = gop_frames("1s", 26.777)
    assert keys == list(range(0, n, gop))


def test_rerun_resumes_and_refuses_other_settings(source, tmp_path, cli):
    out = tmp_path / "p"
    first = cli("prep", "--videos", source, "--out", out, "--short-side", "96", "--workers", "2", "--json")
    assert first.code == 3, first
    assert json.loads(first.out)["done"] == 3
    (out / "sub" / "vfr.mp4").unlink()
    stale = out / ".cup.mp4.prep-999999999.mp4"
    stale.write_bytes(b"half")
    again = cli("prep", "--videos", source, "--out", out, "--short-side", "96", "--json")
    r = json.loads(again.out)
    assert again.code == 3 and r["failures"][0][0] == "broken.mp4"
    assert (r["done"], r["skipped"], r["failed"]) == (1, 2, 1) and not stale.exists()
    other = cli("prep", "--videos", source, "--out", out, "--short-side", "128")
    assert other.code == 2 and "short_side=96" in other.err and len(other.err.strip().splitlines()) == 1
    inside = cli("prep", "--videos", source, "--out", source / "x")
    assert inside.code == 2 and "inside" in inside.err


def test_extract_prepped_reads_the_copies(source, prepped, tmp_path, cli):
    from rosetta_cli.store import Store

    out, _ = prepped
    good = tmp_path / "good"
    good.mkdir()
    shutil.copy(CUP, good / "cup.mp4")
    prep = tmp_path / "prep"
    assert cli("prep", "--videos", good, "--out", prep, "--workers", "0").code == 0
    common = ("extract", "--videos", good, "--window", "2", "--frames", "2", "--workers", "0", "--text-encoder", "none")
    full, small = tmp_path / "full.zarr", tmp_path / "small.zarr"
    assert cli(*common, "--out", full).code == 0
    r = cli(*common, "--out", small, "--prepped", prep)
    assert r.code == 0, r
    a, b = Store.open(full), Store.open(small)
    assert list(a.column("video")) == list(b.column("video"))  # the store names the source videos
    assert b.meta["prepped"]["short_side"] == 288 and b.meta["extract"]["prepped"]
    fa, fb = a.features()[:].astype(np.float32), b.features()[:].astype(np.float32)
    cos = (fa * fb).sum(-1) / np.linalg.norm(fa, axis=-1) / np.linalg.norm(fb, axis=-1)
    assert cos.min() > 0.9, cos.min()  # the same frames, from a smaller copy
    a.close(), b.close()
    refused = cli(*common, "--out", small)  # resume from the sources into a prepped store
    assert refused.code == 2 and "prepped" in refused.err
    other = cli(*common, "--out", tmp_path / "x.zarr", "--prepped", out)  # cup.mp4 of another source
    assert other.code == 2 and str(good) in other.err
