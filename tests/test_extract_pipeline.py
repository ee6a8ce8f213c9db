"""`rosetta extract` end to end on real videos: store content, failures, resume, shards, SIGKILL, torchrun."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import torch

from rosetta_cli.store import Store  # noqa: E402
from rosetta_cli.store.schema import DONE, FAILED, PENDING  # noqa: E402

VIDEOS = Path(__file__).parent / "data" / "videos"
REPO = Path(__file__).resolve().parents[1]
NARR = ["a hand picks up the box", "the hand turns the box over", "a hand lifts a cup", "the cup is put down"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """manifest.csv: 14 windows of box/cup with narrations + a text file posing as video + a missing file."""
    d = tmp_path_factory.mktemp("ds")
    (d / "fake.mp4").write_text("not a video")
    rows = []
    for i in range(7):
        rows.append({"video": str(VIDEOS / "box.mp4"), "start": 2.0 * i, "end": 2.0 * i + 2, "narration": NARR[i % 2]})
        if i == 3:
            rows.append({"video": str(d / "fake.mp4"), "start": 0, "end": 2, "narration": "broken"})
        rows.append({"video": str(VIDEOS / "cup.mp4"), "start": 1.0 * i, "end": 1.0 * i + 2, "narration": NARR[2 + i % 2]})
    rows.append({"video": str(d / "gone.mp4"), "start": 0, "end": 2, "narration": ""})
    pd.DataFrame(rows).to_csv(d / "manifest.csv", index=False)
    return d / "manifest.csv"


COMMON = ("--chunk-rows", "4", "--batch-size", "2", "--frames", "2")


def arrays(path) -> dict:
    """Everything that must be identical between runs (not meta: ids and times differ)."""
    with Store.open(path) as s:
        out = {"features": s.features(), "status": s.status(), "errors": s.errors(), "clip_id": s.column("clip_id")}
        if s.text_dim:
            out["text"] = s.text()
    return out


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), f"{k} differs"


@pytest.fixture(scope="module")
def reference(dataset, tmp_path_factory):
    """One uninterrupted in-process run (exit 3: two rows fail)."""
    from rosetta_cli.cli.app import main

    out = tmp_path_factory.mktemp("ref") / "ref.zarr"
    with pytest.raises(SystemExit) as e:
        main(["extract", "--videos", str(dataset), "--out", str(out), "--workers", "1", *COMMON])
    assert e.value.code == 3
    return out


def test_store_content(reference, dataset):
    from rosetta_cli.encoders import get_text_encoder, get_visual_encoder
    from rosetta_cli.video import read_clip

    with Store.open(reference) as s:
        assert (len(s), s.frames, s.dim, s.text_dim, s.chunk_rows) == (16, 2, 1280, 384, 4)
        st, err, clips = s.status(), s.errors(), s.clips()
        bad = clips["video"].str.endswith(("fake.mp4", "gone.mp4")).to_numpy()
        assert (st[bad] == FAILED).all()
        assert (st[~bad] == DONE).all()
        assert "cannot open as a video" in err[bad][0]
        assert "no such file" in err[bad][1]
        assert (err[~bad] == "").all()
        feats, text = s.features().astype(np.float32), s.text()
        assert (feats[bad] == 0).all()
        assert np.isfinite(feats).all()
        # features equal a direct encoding of the same sampled frames (fp16 storage tolerance)
        enc = get_visual_encoder("efficientnet-lite0")
        r = int(np.flatnonzero(~bad)[3])
        direct = enc.encode(read_clip(clips.video[r], clips.start[r], clips.end[r], frames=2))
        np.testing.assert_allclose(feats[r], direct, rtol=2e-2, atol=2e-2)
        # text rows are minilm(narration); rows without narration are zero
        mini = get_text_encoder("minilm").encode(list(clips.narration[~bad]))
        np.testing.assert_allclose(text[~bad], mini, atol=1e-5)
        assert (text[clips.narration.to_numpy() == ""] == 0).all()
        m = s.meta
        assert m["encoder"]["name"] == "efficientnet-lite0"
        assert m["encoder"]["weights_sha256"]
        assert m["text_encoder"]["name"] == "minilm"
        assert m["dataset"] == "csv"
        assert m["source_root"]
        assert m["config"]["frames"] == 2
        assert m["finalized"]


def test_rerun_resumes_nothing_and_keeps_store(reference, dataset, cli):
    before = arrays(reference)
    r = cli("extract", "--videos", dataset, "--out", reference, "--workers", "0", *COMMON)
    assert r.code == 3
    assert "this run 0 clips" in " ".join(r.out.split())
    assert_same(before, arrays(reference))


def test_mismatched_resume_is_refused(reference, dataset, cli):
    r = cli("extract", "--videos", dataset, "--out", reference, "--chunk-rows", "4", "--frames", "3")
    assert r.code == 2
    assert "--frames" in r.err
    assert "--overwrite" in r.err
    r = cli("extract", "--videos", dataset, "--out", reference, "--limit", "3", *COMMON)
    assert r.code == 2
    assert "clip table" in r.err


def test_shards_equal_single_run(reference, dataset, tmp_path, cli):
    out = tmp_path / "sharded.zarr"
    r1 = cli("extract", "--videos", dataset, "--out", out, "--shard", "1/2", "--workers", "0", *COMMON)
    # shard 1 created the store and failed only its own bad row; shard 0's rows are still pending
    assert r1.code == 3
    assert "1 clip(s) failed" in r1.err
    assert "8 pending in other shards" in " ".join(r1.out.split())
    with Store.open(out) as s:
        st = s.status()
        assert (st[:8] == PENDING).all()
        assert (st[8:] != PENDING).all()  # chunk-aligned contiguous share
    r0 = cli("extract", "--videos", dataset, "--out", out, "--shard", "0/2", "--workers", "0", *COMMON)
    assert r0.code == 3
    assert_same(arrays(reference), arrays(out))


def test_all_good_exits_zero_and_overwrite(tmp_path, cli):
    out = tmp_path / "f.h5"
    args = ("extract", "--videos", VIDEOS, "--out", out, "--frames", "1", "--workers", "0", "--role", "exo")
    r = cli(*args, "--window", "4", "--limit", "3", "--json")
    assert r.code == 0, r
    with Store.open(out) as s:
        assert len(s) == 3
        assert s.text_dim is None
        assert s.meta["role"] == "exo"
        assert s.meta["dataset"] == "folder"
        assert (s.status() == DONE).all()
    assert cli(*args, "--window", "5").code == 2                      # different clips: refused
    assert cli(*args, "--window", "5", "--overwrite").code == 0        # afresh
    with Store.open(out) as s:
        assert len(s) == 4  # box 15.2 s → 3 full windows of 5 s, cup 8.1 s → 1 (the folder loader drops partial tails)


def test_malformed_annotations_fail_before_any_work(tmp_path, cli):
    bad = tmp_path / "manifest.csv"
    bad.write_text("video,start,end\nbox.mp4,abc,2\n")
    out = tmp_path / "x.zarr"
    r = cli("extract", "--videos", bad, "--out", out)
    assert r.code == 2
    assert "manifest.csv" in r.err
    assert not out.exists()


# ---------------------------------------------------------------- subprocesses (slow)
def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}


@pytest.mark.slow
def test_resume_after_sigkill_is_bit_identical(reference, dataset, tmp_path):
    out = tmp_path / "killed.zarr"
    cmd = [sys.executable, "-m", "rosetta_cli", "extract", "--videos", str(dataset), "--out", str(out),
           "--workers", "1", *COMMON]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    killed = False
    deadline = time.time() + 120
    while proc.poll() is None and time.time() < deadline:
        if out.exists():
            try:
                done = (Store.open(out).status() != PENDING).sum()
            except Exception:
                done = 0
            if 0 < done:  # mid-run: some chunks written, others not
                os.killpg(proc.pid, signal.SIGKILL)  # the run and its decoding workers, at once
                killed = True
                break
        time.sleep(0.05)
    proc.wait()
    assert killed, "the run finished before it could be killed"
    assert (Store.open(out).status() == PENDING).any()
    rerun = subprocess.run(cmd, env=_env(), capture_output=True, text=True)
    assert rerun.returncode == 3, rerun.stderr[-2000:]
    assert_same(arrays(reference), arrays(out))


@pytest.mark.slow
def test_torchrun_two_processes_equal_single_run(reference, dataset, tmp_path):
    out = tmp_path / "ddp.zarr"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
           "-m", "rosetta_cli", "extract", "--videos", str(dataset), "--out", str(out), "--workers", "0", *COMMON]
    r = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert "2 clip(s) failed" in r.stderr, r.stderr[-2000:]
    assert_same(arrays(reference), arrays(out))
    with Store.open(out) as s:
        assert s.meta.get("finalized")


def test_forked_workers_do_not_reuse_parent_decoder():
    """Regression: a worker forked after the parent decoded the same file used to deadlock in decord."""
    from rosetta_cli.encoders.base import Preprocess
    from rosetta_cli.extract.data import ClipDataset, chunk_batches, make_loader
    from rosetta_cli.video import read_clip

    box = str(VIDEOS / "box.mp4")
    parent = read_clip(box, 0, 2, 2)
    ds = ClipDataset([box] * 4, [0, 0, 2, 4], [2, 2, 4, 6], 2, "decord", Preprocess(resize=32, crop=32))
    got = [b for b in make_loader(ds, chunk_batches([(0, 4)], 2), workers=1)]
    assert [b["rows"] for b in got] == [[0, 1], [2, 3]]
    assert all(all(b["ok"]) for b in got)
    assert parent.shape == (2, 480, 640, 3)


def test_store_creation_publishes_once_and_clears_dead_temps(tmp_path):
    """runtime.atomic as extract uses it: a second publisher never replaces the winner; a killed
    creator's temporary is removed, a live one's is kept."""
    from rosetta_cli.runtime import atomic

    out = tmp_path / "f.h5"
    first, second = tmp_path / "a.h5", tmp_path / "b.h5"
    first.write_text("winner")
    second.write_text("loser")
    assert atomic.publish_new(first, out)
    assert not first.exists()
    assert not atomic.publish_new(second, out)
    assert not second.exists()
    assert out.read_text() == "winner"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".f.h5.creating-{dead.pid}.h5"
    live = atomic.temp_sibling(out, "creating")
    stale.write_text("x")
    live.write_text("y")
    assert live.name == f".f.h5.creating-{os.getpid()}.h5"
    atomic.remove_stale_temps(out, "creating")
    assert not stale.exists()
    assert live.exists()


# ------------------------------------------------------------------ --device cuda: GPU defaults
@pytest.fixture
def fake_cuda(monkeypatch):
    """torch reports two CUDA devices (no kernel runs: only the defaults and the checks are under test)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


def test_device_cuda_sets_gpu_defaults_and_given_options_win(fake_cuda):
    from rosetta_cli.errors import UsageError
    from rosetta_cli.extract.config import ExtractConfig, resolve_defaults

    cores = len(os.sched_getaffinity(0))
    cfg, note = resolve_defaults(ExtractConfig("v", "o", device="cuda"))
    assert (cfg.precision, cfg.batch_size, cfg.workers) == ("bf16", 64, cores)
    assert "--precision bf16" in note and "--batch-size 64" in note and f"--workers {cores}" in note
    cfg, note = resolve_defaults(ExtractConfig("v", "o", device="cuda:1", batch_size=16, precision="fp32"),
                                 given={"batch_size", "precision"})
    assert (cfg.precision, cfg.batch_size, cfg.workers) == ("fp32", 16, cores) and "batch-size" not in note
    same = ExtractConfig("v", "o", device="cpu")
    assert resolve_defaults(same) == (same, "")  # CPU runs keep fp32 / 8 / 2 (bit-reproducible stores)
    for bad in ("cuda:2", "gpu", "cuda:x"):
        with pytest.raises(UsageError):
            resolve_defaults(ExtractConfig("v", "o", device=bad))


def test_device_cuda_cli_note_and_override(fake_cuda, monkeypatch, cli):
    """The CLI passes the options given on the command line, and says what it chose on stderr."""
    import rosetta_cli.extract as stage

    seen = {}

    def capture(cfg, progress):
        seen["cfg"] = cfg
        raise KeyboardInterrupt  # stop before any work: exit 130

    monkeypatch.setattr(stage, "run_extract", capture)
    r = cli("extract", "--videos", VIDEOS, "--out", "x.zarr", "--device", "cuda", "--batch-size", "32")
    assert r.code == 130
    assert (seen["cfg"].batch_size, seen["cfg"].precision) == (32, "bf16")
    assert "GPU defaults --precision bf16" in r.err and "batch-size" not in r.err.split("GPU defaults")[1].splitlines()[0]


def test_device_cuda_without_cuda_is_one_line_exit_2(cli):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    r = cli("extract", "--videos", VIDEOS, "--out", "x.zarr", "--device", "cuda")
    assert r.code == 2 and r.err.strip().count("\n") == 0 and "no CUDA device" in r.err


# ------------------------------------------------------------------ decode scheduling
def test_video_runs_group_consecutive_batches_of_a_video():
    from rosetta_cli.extract.data import video_runs

    videos = ["a"] * 5 + ["b"] * 2 + ["a"] * 2
    batches = [[0, 1], [2, 3], [4, 5], [6], [7, 8]]  # chunks end at 6 and 9
    assert video_runs(batches, videos) == [[[0, 1], [2, 3], [4, 5]], [[6]], [[7, 8]]]
    assert video_runs(batches, videos, most=2) == [[[0, 1], [2, 3]], [[4, 5]], [[6]], [[7, 8]]]
    assert video_runs(batches) == [[b] for b in batches]


def test_a_run_opens_its_video_once(monkeypatch):
    """GPU scheduling (workers only decode): one open per run of batches, not one per batch."""
    import rosetta_cli.video.reader as reader
    from rosetta_cli.encoders.base import Preprocess
    from rosetta_cli.extract.data import ClipDataset, chunk_batches, make_loader

    opened = []
    real = reader._open_backend
    monkeypatch.setattr(reader, "_open_backend", lambda path, dec: opened.append(path) or real(path, dec))
    reader.release()
    box, cup = str(VIDEOS / "box.mp4"), str(VIDEOS / "cup.mp4")
    ds = ClipDataset([box] * 6 + [cup] * 2, [0, 2, 4, 6, 8, 10, 0, 2], [2, 4, 6, 8, 10, 12, 2, 4], 2, "pyav",
                     Preprocess(resize=32, crop=32))
    got = list(make_loader(ds, chunk_batches([(0, 4), (4, 8)], 2), workers=0))
    assert [b["rows"] for b in got] == [[0, 1], [2, 3], [4, 5], [6, 7]] and all(all(b["ok"]) for b in got)
    assert opened == [box, cup]


def test_batches_out_of_order_give_the_same_store(reference, dataset, tmp_path, monkeypatch, cli):
    """Chunks are buffered until full, whatever order their batches come in: the store is bit-identical."""
    import rosetta_cli.extract.loop as loop

    real = loop.make_loader
    monkeypatch.setattr(loop, "make_loader", lambda *a, **k: list(reversed(list(real(*a, **k)))))
    out = tmp_path / "reversed.zarr"
    assert cli("extract", "--videos", dataset, "--out", out, "--workers", "1", *COMMON).code == 3
    assert_same(arrays(reference), arrays(out))
