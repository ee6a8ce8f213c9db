"""Feature store: both backends, concurrency, plain-library readability, store commands, bad input."""

from __future__ import annotations

import json
import multiprocessing as mp
import shutil
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import zarr

from rosetta_cli.errors import UsageError
from rosetta_cli.store import DONE, FAILED, PENDING, Store
from rosetta_cli.store.inspect import validate

BACKENDS = [".zarr", ".h5"]


def make_clips(n, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "clip_id": [f"v{i // 3}/c{i}" for i in range(n)],
        "video": [f"/data/v{i // 3}.mp4" for i in range(n)],
        "start": np.round(rng.uniform(0, 10, n), 3),
        "end": np.round(rng.uniform(10, 20, n), 3),
        "view": ["ego" if i % 2 == 0 else "exo" for i in range(n)],
        "sync_id": [f"take{i // 2}" if i < n // 2 else "" for i in range(n)],
        "narration": [f"C cuts pepper, {i} times" for i in range(n)],
        "label": [["cut pepper", "pour milk", ""][i % 3] for i in range(n)],
        "skill": [["good", "bad", ""][i % 3] for i in range(n)],
        "split": ["train" if i % 4 else "test" for i in range(n)],
    })


def make_store(path, n=10, T=2, D=6, Dt=4, chunk=4, seed=0, done=True):
    s = Store.create(path, kind="features", clips=make_clips(n, seed), frames=T, dim=D, text_dim=Dt, chunk_rows=chunk)
    rng = np.random.default_rng(seed)
    feats = rng.standard_normal((n, T, D)).astype(np.float16)
    text = rng.standard_normal((n, Dt)).astype(np.float32)
    if done:
        s.write_rows(0, features=feats, text=text, status=DONE)
        s.finalize()
    return s, feats, text


@pytest.mark.parametrize("suffix", BACKENDS)
def test_roundtrip_values(tmp_path, suffix):
    s, feats, text = make_store(tmp_path / f"a{suffix}")
    s.close()
    r = Store.open(tmp_path / f"a{suffix}", kind="features")
    assert (r.n_rows, r.frames, r.dim, r.text_dim) == (10, 2, 6, 4)
    np.testing.assert_array_equal(r.features(), feats)
    np.testing.assert_array_equal(r.text(), text)
    np.testing.assert_allclose(r.pooled(np.array([3, 1])), feats[[3, 1]].astype(np.float32).mean(1))
    c = r.clips()
    assert list(c["label"][:3]) == ["cut pepper", "pour milk", ""]
    assert list(c["label_id"][:3]) == [r.labels.index("cut pepper"), r.labels.index("pour milk"), -1]
    assert c["narration"][4] == "C cuts pepper, 4 times"
    assert list(r.names("label")) == list(c["label"]) and list(r.names("skill", slice(2, 5))) == list(c["skill"][2:5])
    assert list(r.trainable_mask()) == [i % 4 != 0 for i in range(10)]   # rows 0, 4, 8 are "test"
    assert r.status_counts() == {"pending": 0, "done": 10, "failed": 0}


def _writer(path, start, stop, seed):
    s = Store.open(path, mode="r+")
    rng = np.random.default_rng(seed)
    for a in range(start, stop, s.chunk_rows):
        b = min(a + s.chunk_rows, stop)
        s.write_rows(a, features=rng.standard_normal((b - a, s.frames, s.dim)), status=DONE, errors=[""] * (b - a))


def test_two_processes_disjoint_chunks(tmp_path):
    path = tmp_path / "c.zarr"
    s = Store.create(path, kind="features", clips=make_clips(64), frames=2, dim=8, chunk_rows=8)
    s.close()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(path), 0, 32, 1)), ctx.Process(target=_writer, args=(str(path), 32, 64, 2))]
    [p.start() for p in procs]
    [p.join(60) for p in procs]
    assert all(p.exitcode == 0 for p in procs)
    r = Store.open(path)
    assert r.status_counts()["done"] == 64
    exp = np.concatenate([np.random.default_rng(1).standard_normal((32, 2, 8)), np.random.default_rng(2).standard_normal((32, 2, 8))])
    np.testing.assert_array_equal(r.features(), exp.astype(np.float16))


def test_plain_zarr_reader_follows_docs(tmp_path):
    """Read with zarr alone, using only names from docs/store-format.md."""
    s, feats, text = make_store(tmp_path / "p.zarr")
    g = zarr.open_group(str(tmp_path / "p.zarr"), mode="r")
    meta = g.attrs["rosetta"]
    assert meta["format"] == "rosetta-store"
    assert meta["kind"] == "features"
    np.testing.assert_array_equal(g["features"][:], feats)
    np.testing.assert_array_equal(g["text"][:], text)
    labels = np.asarray(g["clips/label"][:])
    assert meta["labels"][labels[0]] == "cut pepper"
    assert str(g["clips/clip_id"][2]) == "v0/c2"
    assert (g["status"][:] == 1).all()
    doc = (Path(__file__).parents[1] / "docs" / "store-format.md").read_text()
    for name in ["clips/clip_id", "clips/sync_id", "features", "text", "status", "errors", "pairs/query_row", "\"rosetta\""]:
        assert name in doc


def test_plain_h5py_reader_follows_docs(tmp_path):
    s, feats, text = make_store(tmp_path / "p.h5")
    s.close()
    with h5py.File(tmp_path / "p.h5", "r") as f:
        meta = json.loads(f.attrs["rosetta"])
        assert meta["kind"] == "features"
        np.testing.assert_array_equal(f["features"][:], feats)
        assert f["clips/clip_id"].asstr()[2] == "v0/c2"
        assert f["clips/view"].asstr()[1] == "exo"


def test_convert_roundtrip_bit_for_bit(tmp_path, cli):
    s, feats, _ = make_store(tmp_path / "a.zarr", n=11)
    s.write_rows(3, status=[FAILED], errors=["decode error: x.mp4"])
    s.close()
    assert cli("store", "convert", tmp_path / "a.zarr", tmp_path / "b.h5").code == 0
    assert cli("store", "convert", tmp_path / "b.h5", tmp_path / "c.zarr").code == 0
    a, c = Store.open(tmp_path / "a.zarr"), Store.open(tmp_path / "c.zarr")
    assert a.features().tobytes() == c.features().tobytes()
    assert a.text().tobytes() == c.text().tobytes()
    pd.testing.assert_frame_equal(a.clips(), c.clips())
    assert a.meta == c.meta
    np.testing.assert_array_equal(a.status(), c.status())
    assert c.errors()[3] == "decode error: x.mp4"


def test_merge_and_mismatch(tmp_path, cli):
    make_store(tmp_path / "s0.zarr", n=5, seed=0)[0].close()
    s1 = make_store(tmp_path / "s1.h5", n=7, seed=1)[0]
    s1.write_clip_column("clip_id", [f"s1/{i}" for i in range(7)])  # shards hold disjoint clips
    s1.close()
    r = cli("store", "merge", tmp_path / "s0.zarr", tmp_path / "s1.h5", "--out", tmp_path / "m.zarr")
    assert r.code == 0, r
    m, a, b = (Store.open(tmp_path / p) for p in ("m.zarr", "s0.zarr", "s1.h5"))
    np.testing.assert_array_equal(m.features(), np.concatenate([a.features(), b.features()]))
    assert list(m.clips()["label"]) == list(a.clips()["label"]) + list(b.clips()["label"])
    parents = {p["role"]: p["id"] for p in m.meta["parents"]}
    assert parents["shard0"] == a.id
    assert parents["shard1"] == b.id
    make_store(tmp_path / "bad.zarr", n=3, D=5)[0].close()
    r = cli("store", "merge", tmp_path / "s0.zarr", tmp_path / "bad.zarr", "--out", tmp_path / "m2.zarr")
    assert r.code == 2
    assert "D=5" in r.err
    assert "Traceback" not in r.err
    assert not (tmp_path / "m2.zarr").exists()


@pytest.mark.parametrize("shape", [(6, 5), (6, 3, 5)])
def test_import_export_roundtrip(tmp_path, cli, shape):
    feats = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    np.save(tmp_path / "f.npy", feats)
    text = np.random.default_rng(1).standard_normal((6, 4)).astype(np.float32)
    np.save(tmp_path / "t.npy", text)
    clips = make_clips(6)
    clips["start"] = [0.5, np.nan, 1, 2, 3, 4]
    clips.to_csv(tmp_path / "clips.csv", index=False)
    r = cli("store", "import", "--features", tmp_path / "f.npy", "--clips", tmp_path / "clips.csv",
            "--text", tmp_path / "t.npy", "--out", tmp_path / "i.zarr")
    assert r.code == 0, r
    assert cli("store", "export", tmp_path / "i.zarr", "--out", tmp_path / "exp").code == 0
    np.testing.assert_array_equal(np.load(tmp_path / "exp" / "features.npy"), feats)
    np.testing.assert_array_equal(np.load(tmp_path / "exp" / "text.npy"), text)
    assert (tmp_path / "exp" / "clips.csv").read_text() == (tmp_path / "clips.csv").read_text()
    pq = pd.read_parquet(tmp_path / "exp" / "clips.parquet")
    assert list(pq.columns) == list(clips.columns)


def test_import_folder_of_per_video_tensors(tmp_path, cli):
    import torch

    d = tmp_path / "feats"
    d.mkdir()
    a, b = np.arange(12, dtype=np.float32).reshape(3, 4), -np.arange(8, dtype=np.float32).reshape(2, 4)
    np.save(d / "vidA.npy", a)
    torch.save(torch.from_numpy(b), d / "vidB.pt")
    clips = make_clips(5)
    clips["video"] = ["vidA.mp4", "vidB.mp4", "vidA.mp4", "vidA.mp4", "vidB.mp4"]
    clips.to_csv(tmp_path / "c.csv", index=False)
    r = cli("store", "import", "--features", d, "--clips", tmp_path / "c.csv", "--out", tmp_path / "i.h5")
    assert r.code == 0, r
    s = Store.open(tmp_path / "i.h5")
    np.testing.assert_array_equal(s.features()[:, 0], np.stack([a[0], b[0], a[1], a[2], b[1]]))


def test_bad_inputs_one_line_and_nothing_changed(tmp_path, cli):
    r = cli("store", "info", tmp_path / "nope.zarr")
    assert r.code == 2
    assert "nope.zarr" in r.err
    assert len(r.err.strip().splitlines()) == 1
    (tmp_path / "dir.zarr").mkdir()
    (tmp_path / "dir.zarr" / "x.txt").write_text("hi")
    r = cli("store", "info", tmp_path / "dir.zarr")
    assert r.code == 2
    assert "not a" in r.err
    with h5py.File(tmp_path / "foreign.h5", "w") as f:
        f["x"] = np.zeros(3)
    r = cli("store", "validate", tmp_path / "foreign.h5")
    assert r.code == 2
    assert "not a rosetta store" in r.err
    make_store(tmp_path / "s.zarr")[0].close()
    before = sorted(p.name for p in tmp_path.iterdir())
    pd.DataFrame({"video": ["a.mp4"]}).to_csv(tmp_path / "short.csv", index=False)
    np.save(tmp_path / "f.npy", np.zeros((2, 3), np.float32))
    r = cli("store", "import", "--features", tmp_path / "f.npy", "--clips", tmp_path / "short.csv", "--out", tmp_path / "o.zarr")
    assert r.code == 2
    assert "missing columns" in r.err
    make_clips(3).to_csv(tmp_path / "three.csv", index=False)
    r = cli("store", "import", "--features", tmp_path / "f.npy", "--clips", tmp_path / "three.csv", "--out", tmp_path / "o.zarr")
    assert r.code == 2
    assert "3 rows" in r.err
    assert "2 feature rows" in r.err
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(before + ["short.csv", "f.npy", "three.csv"])
    make_clips(2).to_csv(tmp_path / "two.csv", index=False)
    r = cli("store", "import", "--features", tmp_path / "f.npy", "--clips", tmp_path / "two.csv", "--out", tmp_path / "s.zarr")
    assert r.code == 2
    assert "--overwrite" in r.err
    assert Store.open(tmp_path / "s.zarr").n_rows == 10


def test_merge_pairs_keeps_shared_parents(tmp_path):
    ego, _, _ = make_store(tmp_path / "ego.zarr")
    cols = {"query_row": [0], "query_clip_id": ["a"], "candidate_row": [1], "candidate_clip_id": ["b"],
            "rank": [0], "score": [0.5], "weight": [0.4]}
    for i in range(2):
        p = Store.create_pairs(tmp_path / f"p{i}.zarr", pd.DataFrame(cols))
        p.add_parent("ego", ego)
        p.close()
    from rosetta_cli.store.ops import merge

    m = merge([tmp_path / "p0.zarr", tmp_path / "p1.zarr"], tmp_path / "m.zarr")
    roles = {p["role"]: p["id"] for p in m.meta["parents"]}
    assert roles["ego"] == ego.id
    assert len(m.pairs()) == 2


def test_wrong_kind(tmp_path):
    from rosetta_cli.errors import StoreError

    Store.create_pairs(tmp_path / "p.zarr", pd.DataFrame({c: [] for c in
                       ["query_row", "query_clip_id", "candidate_row", "candidate_clip_id", "rank", "score", "weight"]}))
    with pytest.raises(StoreError, match="'pairs' store"):
        Store.open(tmp_path / "p.zarr", kind="features")


def test_damaged_store_info_and_validate(tmp_path, cli):
    s, _, _ = make_store(tmp_path / "d.zarr", n=12, chunk=4)
    s.close()
    assert cli("store", "validate", tmp_path / "d.zarr").code == 0
    shutil.rmtree(tmp_path / "d.zarr" / "features" / "c" / "1")
    r = cli("store", "validate", tmp_path / "d.zarr")
    assert r.code == 1
    assert "chunk 1" in r.out
    (tmp_path / "d.zarr" / "status" / "zarr.json").write_text("{broken")
    r = cli("store", "info", tmp_path / "d.zarr", "--json")
    assert r.code == 0
    assert json.loads(r.out)["damage"], r.out


def test_validate_nan_and_truncated_h5(tmp_path, cli):
    s, feats, _ = make_store(tmp_path / "n.h5", n=6)
    s.write_rows(2, features=np.full((1, 2, 6), np.nan), status=[DONE])
    s.write_rows(3, features=np.full((1, 2, 6), np.nan), status=[PENDING])
    s.close()
    r = cli("store", "validate", tmp_path / "n.h5")
    assert r.code == 1
    assert "row 2" in r.out
    assert "row 3" not in r.out
    data = (tmp_path / "n.h5").read_bytes()
    (tmp_path / "t.h5").write_bytes(data[: len(data) // 2])
    r = cli("store", "info", tmp_path / "t.h5")
    assert r.code == 2
    assert "t.h5" in r.err


def test_info_json_keys(tmp_path, cli):
    s, _, _ = make_store(tmp_path / "i.zarr", n=9)
    s.write_rows(0, status=[FAILED, PENDING], errors=["bad", ""])
    s.close()
    r = cli("store", "info", tmp_path / "i.zarr", "--json")
    d = json.loads(r.out)
    assert d["kind"] == "features"
    assert d["rows"] == 9
    assert d["frames"] == 2
    assert d["dim"] == 6
    assert d["text_dim"] == 4
    assert d["status"] == {"pending": 1, "done": 7, "failed": 1}
    assert d["views"] == {"ego": 5, "exo": 4}


def test_import_with_minilm_text_encoder(tmp_path, cli):
    np.save(tmp_path / "f.npy", np.ones((3, 4), np.float32))
    clips = make_clips(3)
    clips["narration"] = ["C cuts the pepper", "C slices the bell pepper", "C pours the milk"]
    clips.to_csv(tmp_path / "c.csv", index=False)
    r = cli("store", "import", "--features", tmp_path / "f.npy", "--clips", tmp_path / "c.csv",
            "--text-encoder", "minilm", "--out", tmp_path / "i.zarr")
    assert r.code == 0, r
    s = Store.open(tmp_path / "i.zarr")
    e = s.text()
    assert e.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1, atol=1e-3)
    assert e[0] @ e[1] > e[0] @ e[2]  # the two pepper narrations are closer than pepper vs milk
    assert s.meta["text_encoder"]["name"] == "minilm"


def test_raw_chunk_fast_path_equals_zarr(tmp_path):
    """Uncompressed zarr arrays are read from chunk files directly; results must equal zarr's own reads."""
    from rosetta_cli.errors import StoreError
    from rosetta_cli.store.backends import _RawChunks

    s, feats, _ = make_store(tmp_path / "f.zarr", n=23, chunk=5)
    s.write_rows(20, status=[PENDING] * 3)
    s.close()
    r = Store.open(tmp_path / "f.zarr")
    assert _RawChunks.of(r.b, "features") is not None
    z = zarr.open_group(str(tmp_path / "f.zarr"), mode="r")
    rng = np.random.default_rng(0)
    for _ in range(20):
        a = int(rng.integers(0, 23))
        b = int(rng.integers(a, 24))
        np.testing.assert_array_equal(r.features(slice(a, b)), z["features"][a:b])
        idx = np.sort(rng.choice(23, size=int(rng.integers(1, 10)), replace=False))
        np.testing.assert_array_equal(r.features(idx), z["features"][:][idx])
        np.testing.assert_array_equal(r.features(idx[::-1].copy()), z["features"][:][idx[::-1]])
    # a chunk that was never written reads as the fill value, like zarr
    e = Store.create(tmp_path / "e.zarr", kind="features", clips=make_clips(8), frames=1, dim=2, chunk_rows=4)
    e.write_rows(0, features=np.ones((4, 1, 2)))
    np.testing.assert_array_equal(Store.open(tmp_path / "e.zarr").features(), np.r_[np.ones((4, 1, 2)), np.zeros((4, 1, 2))])
    lz = Store.create(tmp_path / "lz.zarr", kind="features", clips=make_clips(3), frames=1, dim=2, codec="lz4")
    assert _RawChunks.of(lz.b, "features") is None  # compressed: zarr's own path


def test_checkpoint_recovers_from_crash_between_renames(tmp_path):
    import torch

    from rosetta_cli.runtime.checkpoint import load_weights, read_config, save_checkpoint

    m = torch.nn.Linear(3, 2)
    ck = tmp_path / "ck"
    save_checkpoint(ck, kind="rst", config={"model": {}}, model_state=m.state_dict())
    (ck).rename(tmp_path / ".ck.old-deadbeef")  # the state a crash after the first rename leaves
    assert read_config(ck)["kind"] == "rst"
    torch.testing.assert_close(load_weights(ck)["weight"], m.weight.detach())
    assert not list(tmp_path.glob(".ck.*"))


# --------------------------------------------------------------------------- import by time
def _time_clips(rows):
    """rows: [(video, start, end)] -> a clips table."""
    df = make_clips(len(rows))
    df["video"] = [r[0] for r in rows]
    df["start"] = [r[1] for r in rows]
    df["end"] = [r[2] for r in rows]
    return df


def test_overlapping_windows_and_pooling_by_hand():
    from rosetta_cli.store.importer import overlapping_windows, pool_frames

    # window 2 s, stride 1 s: window i = [i, i+2). Clip [2.5, 4.0] overlaps windows 1 [1,3), 2 [2,4), 3 [3,5);
    # window 4 starts at 4.0, not before the end: out.
    assert overlapping_windows(10, 2.0, 1.0, 2.5, 4.0) == (1, 4)
    assert overlapping_windows(10, 2.0, 1.0, 0.0, 0.5) == (0, 1)
    assert overlapping_windows(3, 2.0, 1.0, 7.0, 9.0) == (3, 3)  # after the last window [2, 4): none
    x = np.arange(10, dtype=np.float32).reshape(5, 2)  # rows [0,1], [2,3], [4,5], [6,7], [8,9]
    # mean into 2 frames: groups [0, 2) and [2, 5)
    np.testing.assert_array_equal(pool_frames(x, 2, "mean"), [[1, 2], [6, 7]])
    np.testing.assert_array_equal(pool_frames(x, 1, "mean"), [[4, 5]])
    # uniform into 2: windows floor(0.5*5/2)=1 and floor(1.5*5/2)=3
    np.testing.assert_array_equal(pool_frames(x, 2, "uniform"), [[2, 3], [6, 7]])
    # fewer windows than frames: windows repeat
    np.testing.assert_array_equal(pool_frames(x[:2], 4, "mean"), [[0, 1], [0, 1], [2, 3], [2, 3]])


def test_presets_are_ego4d_numbers():
    from rosetta_cli.store.importer import ImportConfig

    sf = ImportConfig(features="f", clips="c", out="o.zarr", preset="ego4d-slowfast")
    om = ImportConfig(features="f", clips="c", out="o.zarr", preset="ego4d-omnivore")
    sf.check(), om.check()
    assert sf.timing() == (32 / 30, 16 / 30)
    assert om.timing() == (32 / 30, 16 / 30)  # Ego4D feature docs: stride 16 (6 was a superseded revision)
    with pytest.raises(UsageError, match="--preset"):
        ImportConfig(features="f", clips="c", out="o.zarr", preset="ego4d-slowfast", fps=30).check()
    with pytest.raises(UsageError, match="--fps, --window and --stride"):
        ImportConfig(features="f", clips="c", out="o.zarr", fps=30, window=32).check()
    with pytest.raises(UsageError, match="--frames"):
        ImportConfig(features="f", clips="c", out="o.zarr", frames=4).check()


def test_import_by_time_pools_the_overlapping_windows(tmp_path, cli):
    d = tmp_path / "feats"
    d.mkdir()
    a = np.arange(20, dtype=np.float32).reshape(10, 2)   # window i = [i/2, i/2 + 1) s (fps 2, window 2, stride 1)
    b = 100 + np.arange(8, dtype=np.float32).reshape(4, 2)
    np.save(d / "vidA.npy", a)
    np.save(d / "vidB.npy", b)
    _time_clips([("x/vidA.mp4", 1.2, 2.0), ("x/vidB.mp4", 0.0, np.nan), ("x/vidA.mp4", 0.0, 0.4)]).to_csv(tmp_path / "c.csv", index=False)
    r = cli("store", "import", "--features", d, "--clips", tmp_path / "c.csv", "--out", tmp_path / "t.zarr",
            "--fps", 2, "--window", 2, "--stride", 1, "--frames", 2, "--json")
    assert r.code == 0, r
    assert json.loads(r.out)["mode"] == "by-time"
    s = Store.open(tmp_path / "t.zarr")
    f = s.features()
    # [1.2, 2.0]: windows starting before 2.0 and ending after 1.2: i = 1 [0.5, 1.5), 2 [1, 2), 3 [1.5, 2.5);
    # T=2 -> groups [0, 1) and [1, 3) of those three
    np.testing.assert_array_equal(f[0], [a[1], a[2:4].mean(0)])
    # vidB, whole video: 4 windows -> groups [0,2), [2,4)
    np.testing.assert_array_equal(f[1], [b[0:2].mean(0), b[2:4].mean(0)])
    # [0, 0.4]: windows 0 [0, 1) only -> repeated
    np.testing.assert_array_equal(f[2], a[[0, 0]])
    assert s.meta["import"]["timing"]["window_sec"] == 1.0
    assert s.meta["import"]["timing"]["pool"] == "mean"
    assert (s.status() == DONE).all()


def test_import_by_time_bad_rows_keep_done_rows_and_resume(tmp_path, cli):
    d = tmp_path / "feats"
    d.mkdir()
    np.save(d / "vidA.npy", np.ones((10, 3), np.float32))
    clips = _time_clips([("vidA.mp4", 0, 1), ("vidA.mp4", 1, 2), ("vidA.mp4", 40, 50), ("vidA.mp4", 2, 3)])
    clips.to_csv(tmp_path / "c.csv", index=False)
    args = ["store", "import", "--features", d, "--clips", tmp_path / "c.csv", "--out", tmp_path / "r.zarr",
            "--window-sec", 1, "--stride-sec", 1, "--chunk-rows", 2]
    r = cli(*args)
    assert r.code == 2
    assert "row 2" in r.err
    assert "c.csv" in r.err
    assert "vidA.npy" in r.err
    assert "outside" in r.err
    assert len([x for x in r.err.splitlines() if "error" in x]) == 1  # (the other stderr line is the progress bar)
    s = Store.open(tmp_path / "r.zarr")
    assert list(s.status()) == [DONE, DONE, FAILED, 0]
    assert "outside" in s.errors()[2]
    s.close()
    clips.loc[2, ["start", "end"]] = [4, 5]           # fix the row, then resume: only rows 2-3 are redone
    clips.to_csv(tmp_path / "c.csv", index=False)
    r = cli(*args, "--resume", "--json")
    assert r.code == 2
    assert "other inputs" in r.err  # the CSV changed: refused, nothing lost
    r = cli(*args, "--overwrite", "--json")
    assert r.code == 0
    assert json.loads(r.out)["imported"] == 4


def test_import_resume_redoes_only_unfinished_rows(tmp_path, cli):
    d = tmp_path / "feats"
    d.mkdir()
    np.save(d / "vidA.npy", np.ones((10, 3), np.float32))
    _time_clips([("vidA.mp4", 0, 1), ("vidA.mp4", 1, 2), ("vidB.mp4", 0, 1)]).to_csv(tmp_path / "c.csv", index=False)
    args = ["store", "import", "--features", d, "--clips", tmp_path / "c.csv", "--out", tmp_path / "r.h5",
            "--window-sec", 1, "--stride-sec", 1, "--chunk-rows", 2]
    r = cli(*args)
    assert r.code == 2
    assert "row 2" in r.err
    assert "vidB" in r.err
    assert "no tensor" in r.err
    np.save(d / "vidB.npy", 2 * np.ones((10, 3), np.float32))
    r = cli(*args, "--resume", "--json")
    assert r.code == 0, r
    assert json.loads(r.out)["imported"] == 1
    assert json.loads(r.out)["skipped"] == 2
    s = Store.open(tmp_path / "r.h5")
    assert (s.status() == DONE).all()
    assert s.features()[2, 0, 0] == 2


def test_import_wrong_dimension_names_file_and_row(tmp_path, cli):
    d = tmp_path / "feats"
    d.mkdir()
    np.save(d / "a.npy", np.ones((4, 3), np.float32))
    np.save(d / "b.npy", np.ones((4, 5), np.float32))
    clips = make_clips(4)
    clips["video"] = ["a.mp4", "a.mp4", "b.mp4", "a.mp4"]
    clips.to_csv(tmp_path / "c.csv", index=False)
    r = cli("store", "import", "--features", d, "--clips", tmp_path / "c.csv", "--out", tmp_path / "w.zarr")
    assert r.code == 2
    assert "row 2" in r.err
    assert "b.npy" in r.err
    assert "D=5" in r.err
    s = Store.open(tmp_path / "w.zarr")
    assert list(s.status()[:2]) == [DONE, DONE]
    assert s.status()[2] == FAILED


def test_store_package_imports_no_encoder():
    import ast

    import rosetta_cli

    root = Path(rosetta_cli.__file__).parent / "store"
    mods = {n.module for p in root.rglob("*.py") for n in ast.walk(ast.parse(p.read_text())) if isinstance(n, ast.ImportFrom)}
    mods |= {a.name for p in root.rglob("*.py") for n in ast.walk(ast.parse(p.read_text())) if isinstance(n, ast.Import)
             for a in n.names}
    assert not [m for m in mods if m and m.startswith("rosetta_cli.encoders")]


def test_sparse_row_reads_match_zarr_and_fail_loudly_on_a_truncated_chunk(tmp_path):
    """Store.features(rows) on uncompressed zarr reads sparse rows straight from the chunk files (one
    pread per row): any order, repeats, negative rows, a chunk never written (the fill value), all
    equal to zarr's own read (independent reference); a truncated chunk file is a StoreError."""
    import zarr

    from rosetta_cli.errors import StoreError
    from rosetta_cli.store.backends import _RawChunks

    s = Store.create(tmp_path / "s.zarr", kind="features", clips=make_clips(256, 0), frames=2, dim=6, chunk_rows=64)
    feats = np.random.default_rng(3).standard_normal((128, 2, 6)).astype(np.float16)
    s.write_rows(0, features=feats, status=DONE)          # chunks 2 and 3 never written
    assert _RawChunks.of(s.b, "features") is not None     # the raw path is the one under test
    rows = np.array([3, 60, 3, 130, 250, -1, 127, 64, 0])  # 1-2 rows per chunk: the sparse path
    ref = zarr.open_array(str(tmp_path / "s.zarr" / "features"), mode="r")
    np.testing.assert_array_equal(s.features(rows), ref.get_orthogonal_selection((rows % 256,)))
    np.testing.assert_array_equal(s.features(rows)[[0, 1, 6]], feats[[3, 60, 127]])
    chunk1 = tmp_path / "s.zarr" / "features" / "c" / "1" / "0" / "0"
    chunk1.write_bytes(chunk1.read_bytes()[:100])
    with pytest.raises(StoreError, match="truncated"):
        s.features(np.array([3, 127]))
