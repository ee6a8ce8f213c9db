"""Stores by URL, against real servers on the loopback: `python -m http.server` over a folder of
stores, and moto's S3 server mode. Nothing here reaches beyond 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rosetta_cli.store import DONE, PENDING, Store
from rosetta_cli.store import remote
from rosetta_cli.synthetic.bench_stores import make_stores

REPO = Path(__file__).resolve().parents[1]
S3_ENV = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(cmd: list, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"{cmd[:3]} exited with {proc.returncode}")
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{cmd[:3]} did not listen on {port}")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(folder, base URL): bench-sized ego/exo stores served by `python -m http.server` on 127.0.0.1."""
    d = tmp_path_factory.mktemp("served")
    make_stores(d, n_ego=60, n_exo_train=120, n_classes=6, dim=16, frames=3, seed=0)
    _tiny_model(d / "vi")
    _paired_store(d / "paired.zarr")
    port = _free_port()
    proc = _serve([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "-d", str(d)], port)
    yield d, f"http://127.0.0.1:{port}"
    proc.kill()
    proc.wait()


def _paired_store(path, n=64):
    """A synchronized ego-exo store (train split) for pretrain: rows 2i (ego) and 2i+1 (exo) share sync_id."""
    clips = pd.DataFrame({"clip_id": [f"c{i}" for i in range(n)], "view": ["ego", "exo"] * (n // 2),
                          "sync_id": [f"s{i // 2}" for i in range(n)], "split": "train", "label": "a"})
    x = np.random.default_rng(0).normal(size=(n, 3, 16)).astype(np.float16)
    with Store.create(path, kind="features", clips=clips, frames=3, dim=16, chunk_rows=8) as s:
        s.write_rows(0, features=x, status=DONE)
        s.finalize()


def _tiny_model(path):
    """A real (untrained) dual-encoder checkpoint for the served stores (D=16, T=3)."""
    import dataclasses

    import torch

    from rosetta_cli.contrastive.config import ModelConfig
    from rosetta_cli.contrastive.model import build_model
    from rosetta_cli.runtime.checkpoint import save_checkpoint

    torch.manual_seed(0)
    cfg = ModelConfig(input_dim=16, frames=3, text_dim=None, dim=8, heads=2)
    save_checkpoint(path, kind="dual-encoder", config={"model": dataclasses.asdict(cfg), "name": "tiny"},
                    model_state=build_model(cfg).state_dict())


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """The endpoint of a moto S3 server on 127.0.0.1 with bucket `lab`; this module's env points at it."""
    port = _free_port()
    proc = _serve([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], port)
    endpoint = f"http://127.0.0.1:{port}"
    old = {k: os.environ.get(k) for k in (*S3_ENV, "AWS_ENDPOINT_URL")}
    os.environ.update(S3_ENV, AWS_ENDPOINT_URL=endpoint)
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    s3fs.S3FileSystem().mkdir("lab")
    yield endpoint
    for k, v in old.items():
        os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    s3fs.S3FileSystem.clear_instance_cache()
    proc.kill()
    proc.wait()


def _info(cli, path) -> dict:
    r = cli("store", "info", path, "--json")
    assert r.code == 0, r
    return json.loads(r.out)


def _arrays(path) -> dict:
    with Store.open(path) as s:
        out = {"features": s.features(), "status": s.status(), "errors": s.errors(), "clip_id": s.column("clip_id"),
               "fingerprint": s.fingerprint}
        if s.text_dim:
            out["text"] = s.text()
    return out


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), f"{k} differs"


# ---------------------------------------------------------------- URLs
def test_url_parsing_undoes_pathlib_and_refuses_unknown_schemes():
    assert remote.parse(Path("http://127.0.0.1:8000/x.zarr")) == "http://127.0.0.1:8000/x.zarr"  # Path made it http:/
    assert remote.parse("s3://lab/a/b.zarr").name == "b.zarr"
    assert remote.parse("hf://datasets/org/name/x.zarr").scheme == "hf"
    assert remote.parse("features/ego.zarr") is None and remote.parse("C:/x.zarr") is None
    with pytest.raises(Exception, match="unsupported URL scheme"):
        remote.parse("ftp://host/x.zarr")


# ---------------------------------------------------------------- plain HTTP
def test_store_info_and_validate_by_http_url_match_the_local_copy(served, cli):
    d, base = served
    for name in ("ego.zarr", "exo.zarr"):
        local, url = _info(cli, d / name), _info(cli, f"{base}/{name}")
        assert url["path"] == f"{base}/{name}"
        for key in ("id", "fingerprint", "rows", "frames", "dim", "dtype", "status", "views", "labels", "damage"):
            assert url[key] == local[key], key
        assert url["size_bytes"] == local["size_bytes"]  # http.server lists folders: fsspec's du adds them up
        r = cli("store", "validate", f"{base}/{name}")
        assert r.code == 0 and "valid" in r.out, r


def test_hdf5_by_url_opens_read_only(served, cli):
    d, base = served
    if not (d / "ego.h5").exists():
        assert cli("store", "convert", d / "ego.zarr", d / "ego.h5").code == 0
    _assert_same(_arrays(d / "ego.zarr"), _arrays(f"{base}/ego.h5"))
    with pytest.raises(Exception, match="read-only"):
        Store.open(f"{base}/ego.h5", mode="r+")


def test_bench_and_mine_by_http_url_give_the_local_numbers(served, cli, tmp_path, monkeypatch):
    d, base = served
    monkeypatch.setenv("ROSETTA_CACHE", str(tmp_path / "cache"))
    runs = {}
    for where, root in (("local", d), ("url", base)):
        ego, exo = f"{root}/ego.zarr", f"{root}/exo.zarr"
        r = cli("bench", "--ego", ego, "--exo", exo, "--model", f"{root}/vi", "--out", tmp_path / f"bench-{where}",
                "--json", "--no-plots")
        assert r.code == 0, r
        bench = json.loads(r.out)
        r = cli("mine", "--ego", ego, "--exo", exo, "--out", tmp_path / f"pairs-{where}.zarr", "--strategy", "visual",
                "--topk", "3", "--json")
        assert r.code == 0, r
        with Store.open(tmp_path / f"pairs-{where}.zarr") as s:
            runs[where] = (bench, s.pairs())
    (b_local, p_local), (b_url, p_url) = runs["local"], runs["url"]
    assert _metrics(b_local) == _metrics(b_url) and _metrics(b_local)
    assert len(b_url["models"]) == 2  # frozen features and the model fetched by URL
    pd.testing.assert_frame_equal(p_local, p_url)
    cached = list((tmp_path / "cache" / "models").glob("*/*"))
    assert sorted(f.name for f in cached) == ["config.json", "model.safetensors"]  # only what loading reads


def _metrics(report: dict) -> dict:
    """Every number of a bench --json report (paths and timings dropped)."""
    out = {}

    def walk(x, key=""):
        if isinstance(x, dict):
            for k, v in x.items():
                if k not in ("seconds", "time", "timings", "created", "out", "path", "ego", "exo", "command"):
                    walk(v, f"{key}/{k}")
        elif isinstance(x, list):
            for i, v in enumerate(x):
                walk(v, f"{key}[{i}]")
        elif isinstance(x, float) and not isinstance(x, bool):
            out[key] = x

    walk(report)
    return out


@pytest.mark.slow
def test_pretrain_by_http_url_writes_the_local_runs_weights(served, cli, tmp_path):
    d, base = served
    for where, root in (("local", d), ("url", base)):
        r = cli("pretrain", "--paired", f"{root}/paired.zarr", "--out", tmp_path / where, "--steps", "3",
                "--batch-size", "8", "--device", "cpu")
        assert r.code == 0, r
    assert (tmp_path / "local" / "model.safetensors").read_bytes() == (tmp_path / "url" / "model.safetensors").read_bytes()


def test_random_rows_by_url_fetch_each_chunk_once(served):
    """Pretrain's random row reads go through the LRU of decoded chunks: one fetch per chunk touched."""
    d, base = served
    with Store.open(d / "exo.zarr") as local, Store.open(f"{base}/exo.zarr") as url:
        rows = np.random.default_rng(0).permutation(local.n_rows)[:50]
        for batch in np.array_split(rows, 5):  # five batches, as a trainer would read them
            assert np.array_equal(url.features(batch), local.features(batch))
        lru = url.b._lru["features"]
        assert lru.fetches == len(np.unique(rows // url.chunk_rows))


def test_unreachable_host_missing_store_and_missing_extra_are_one_line_exit_2(served, cli):
    _, base = served
    for url, words in ((f"http://127.0.0.1:{_free_port()}/x.zarr", "cannot reach the host"),
                       (f"{base}/nothing-here.zarr", "no such store"),
                       ("gs://lab/x.zarr", "pip install 'rosetta-cli[gcs]'")):
        if words.startswith("pip") and _installed("gcsfs"):
            continue
        r = cli("store", "info", url)
        assert r.code == 2, r
        assert words in r.err and len(r.err.strip().splitlines()) == 1, r.err


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def test_url_refused_where_only_local_paths_go(served, cli, tmp_path):
    d, base = served
    r = cli("mine", "--ego", d / "ego.zarr", "--exo", d / "exo.zarr", "--out", f"{base}/pairs.zarr")
    assert r.code == 2 and "a URL is not accepted here" in r.err, r
    for args in (("bench", "--ego", d / "ego.zarr", "--exo", d / "exo.zarr", "--out", "s3://lab/report"),
                 ("pretrain", "--paired", d / "paired.zarr", "--out", "s3://lab/model")):
        r = cli(*args)
        assert r.code == 2 and "a URL is not accepted here" in r.err, r
    r = cli("store", "push", d / "ego.zarr", f"{base}/copy.zarr")
    assert r.code == 2 and "read-only" in r.err, r


# ---------------------------------------------------------------- S3 (moto server)
def test_push_pull_round_trip_is_bit_exact_and_resumes(served, s3, cli, tmp_path):
    d, _ = served
    src = tmp_path / "ego.zarr"
    import shutil

    shutil.copytree(d / "ego.zarr", src)
    r = cli("store", "push", src, "s3://lab/ego.zarr", "--json")
    assert r.code == 0, r
    first = json.loads(r.out)
    assert first["copied"] == first["objects"] and first["problems"] == []
    _assert_same(_arrays(src), _arrays("s3://lab/ego.zarr"))       # read in place
    r = cli("store", "pull", "s3://lab/ego.zarr", tmp_path / "back.zarr", "--json")
    assert r.code == 0, r
    _assert_same(_arrays(src), _arrays(tmp_path / "back.zarr"))   # same bytes, same fingerprint
    assert _info(cli, tmp_path / "back.zarr")["fingerprint"] == _info(cli, src)["fingerprint"]

    # A change of equal size (row 0's features, an uncompressed chunk) is found by its MD5: an update
    # in place sends that chunk and the root zarr.json, and pulling it again fetches the same two.
    with Store.open(src, mode="r+") as s:
        s.write_rows(0, features=s.features(np.arange(1)) + 1, status=DONE)
    r = cli("store", "push", src, "s3://lab/ego.zarr", "--json")
    assert r.code == 0, r
    assert json.loads(r.out)["copied"] == 2, r.out
    r = cli("store", "pull", "s3://lab/ego.zarr", tmp_path / "back.zarr", "--json")
    assert r.code == 0, r
    assert json.loads(r.out)["copied"] == 2, r.out
    _assert_same(_arrays(src), _arrays(tmp_path / "back.zarr"))
    r = cli("store", "push", d / "exo.zarr", "s3://lab/ego.zarr")  # another store: refused
    assert r.code == 2 and "another store" in r.err, r


def test_pull_over_http_is_bit_exact(served, cli, tmp_path):
    d, base = served
    r = cli("store", "pull", f"{base}/exo.zarr", tmp_path / "exo.zarr", "--json")
    assert r.code == 0, r
    assert json.loads(r.out)["problems"] == []
    _assert_same(_arrays(d / "exo.zarr"), _arrays(tmp_path / "exo.zarr"))


def test_interrupted_push_resumes_and_is_refused_until_it_finishes(served, s3, cli, tmp_path):
    """A push killed mid-way (marker written, some chunks sent, no root zarr.json) is refused by every
    reader; the rerun skips what is there; a store with chunks but no zarr.json is refused too."""
    import s3fs

    d, _ = served
    src = d / "exo.zarr"
    fs = s3fs.S3FileSystem()
    remote.write_marker(remote.parse("s3://lab/half.zarr"), "`rosetta store push`")
    chunks = sorted(f.relative_to(src).as_posix() for f in (src / "features").rglob("*") if f.is_file())
    for k in chunks[:2]:
        fs.put_file(str(src / k), f"lab/half.zarr/{k}")
    r = cli("store", "info", "s3://lab/half.zarr")
    assert r.code == 2 and "incomplete store" in r.err, r
    r = cli("store", "push", src, "s3://lab/half.zarr", "--json")
    assert r.code == 0, r
    out = json.loads(r.out)
    assert out["skipped"] == 2 and out["copied"] == out["objects"] - 2
    _assert_same(_arrays(src), _arrays("s3://lab/half.zarr"))

    fs.rm("lab/half.zarr/zarr.json")  # chunks without the root metadata
    r = cli("store", "validate", "s3://lab/half.zarr")
    assert r.code == 2 and "no root zarr.json" in r.err, r


def test_missing_credentials_and_missing_bucket_are_exit_2(s3, cli, tmp_path, monkeypatch):
    import s3fs

    r = cli("store", "info", "s3://no-such-bucket/x.zarr")
    assert r.code == 2 and "no such store" in r.err and len(r.err.strip().splitlines()) == 1, r
    for k in [k for k in os.environ if k.startswith("AWS_") and k != "AWS_ENDPOINT_URL"]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    s3fs.S3FileSystem.clear_instance_cache()  # fsspec caches filesystems with the credentials they found
    try:
        r = cli("store", "info", "s3://lab/ego.zarr")
    finally:
        s3fs.S3FileSystem.clear_instance_cache()
    assert r.code == 2 and "no credentials" in r.err and "AWS_ACCESS_KEY_ID" in r.err, r


def test_create_and_write_rows_at_an_s3_url(s3, tmp_path):
    """A store made in place on S3: rows written (data, then status) read back as written; the
    incomplete marker is gone once created, and --overwrite semantics hold."""
    clips = pd.DataFrame({"clip_id": [f"c{i}" for i in range(20)], "view": "ego", "label": "a"})
    x = np.random.default_rng(0).normal(size=(20, 2, 4)).astype(np.float16)
    with Store.create("s3://lab/made.zarr", kind="features", clips=clips, frames=2, dim=4, chunk_rows=8) as s:
        s.write_rows(8, features=x[8:16], status=DONE)
    with Store.open("s3://lab/made.zarr") as s:
        assert (s.status() == DONE).tolist() == [False] * 8 + [True] * 8 + [False] * 4
        assert np.array_equal(s.features(np.arange(8, 16)), x[8:16])
    with pytest.raises(Exception, match="already holds"):
        Store.create("s3://lab/made.zarr", kind="features", clips=clips, frames=2, dim=4)


# ---------------------------------------------------------------- extract --out s3:// (SIGKILL, resume)
VIDEOS = REPO / "tests" / "data" / "videos"
COMMON = ("--chunk-rows", "2", "--batch-size", "2", "--frames", "2", "--text-encoder", "none")


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    d = tmp_path_factory.mktemp("ds")
    rows = [{"video": str(VIDEOS / v), "start": 1.0 * i, "end": 1.0 * i + 1} for i in range(4) for v in ("box.mp4", "cup.mp4")]
    pd.DataFrame(rows).to_csv(d / "manifest.csv", index=False)
    return d / "manifest.csv"


@pytest.mark.slow
def test_extract_to_s3_killed_and_resumed_is_bit_exact(manifest, s3, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    base = [sys.executable, "-m", "rosetta_cli", "extract", "--videos", str(manifest), "--workers", "0", *COMMON]
    ref = subprocess.run([*base, "--out", str(tmp_path / "ref.zarr")], env=env, capture_output=True, text=True)
    assert ref.returncode == 0, ref.stderr[-2000:]
    url = "s3://lab/killed.zarr"
    proc = subprocess.Popen([*base, "--out", url], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    killed, deadline = False, time.time() + 180
    while proc.poll() is None and time.time() < deadline:
        try:
            with Store.open(url) as s:
                done = int((s.status() != PENDING).sum())
        except Exception:
            done = 0
        if done:
            os.killpg(proc.pid, signal.SIGKILL)
            killed = True
            break
        time.sleep(0.05)
    proc.wait()
    assert killed, "the run finished before it could be killed"
    with Store.open(url) as s:
        assert (s.status() == PENDING).any()
    rerun = subprocess.run([*base, "--out", url], env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    a, b = _arrays(tmp_path / "ref.zarr"), _arrays(url)
    a.pop("fingerprint"), b.pop("fingerprint")  # two runs, two ids
    _assert_same(a, b)


def test_convert_and_merge_write_to_s3(served, s3, cli, tmp_path):
    """`store convert` and `store merge` with an s3:// output: the same arrays as the local source."""
    d, _ = served
    r = cli("store", "convert", d / "exo.zarr", "s3://lab/conv.zarr")
    assert r.code == 0, r
    _assert_same(_arrays(d / "exo.zarr"), _arrays("s3://lab/conv.zarr"))  # convert keeps the metadata: same id
    r = cli("store", "merge", d / "ego.zarr", "s3://lab/conv.zarr", "--out", "s3://lab/merged.zarr")
    assert r.code == 0, r
    with Store.open(d / "ego.zarr") as a, Store.open(d / "exo.zarr") as b, Store.open("s3://lab/merged.zarr") as m:
        assert np.array_equal(m.features(), np.concatenate([a.features(), b.features()]))
        assert [p["role"] for p in m.meta["parents"]] == ["shard0", "shard1"]


def test_lost_chunks_by_url_are_the_local_damage(served, cli):
    """A store whose objects are partly missing (a feature chunk of done rows, a status chunk) gives the
    same validate report by URL as on disk, and a read of those rows by URL refuses (never zeros)."""
    import shutil

    d, base = served
    dmg = d / "damaged.zarr"
    shutil.copytree(d / "paired.zarr", dmg)  # 8 chunks of 8 rows, all done
    (dmg / "features" / "c" / "1" / "0" / "0").unlink()
    (dmg / "status" / "c" / "2").unlink()
    local, url = cli("store", "validate", dmg), cli("store", "validate", f"{base}/damaged.zarr")
    assert local.code == url.code == 1

    def flat(text: str, store: str) -> str:  # the console wraps by line length, and the two names differ in length
        return " ".join(text.split()).replace(store, "STORE")

    assert flat(local.out, str(dmg)) == flat(url.out, f"{base}/damaged.zarr")
    assert "features: chunk 1" in flat(url.out, base) and "status: chunk 2" in flat(url.out, base)
    with Store.open(f"{base}/damaged.zarr") as s, pytest.raises(Exception, match="chunk"):
        s.features(np.arange(s.chunk_rows, 2 * s.chunk_rows))
