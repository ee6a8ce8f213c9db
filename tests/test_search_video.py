"""Video queries on real MP4s of the tiny toy world: the frame sampling comes from provenance, bad videos exit 2,
and the HTML page loads in headless Chromium with every image shown."""

from __future__ import annotations

import json
import shutil

import pytest

from rosetta_cli.search import index
from rosetta_cli.search.retrieve import Query, RetrieveConfig, Searcher, run as retrieve
from rosetta_cli.store import Store


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Tiny toy world, its 4 HTM-AA clips extracted with the bundled efficientnet-lite0 (3 frames), a frozen index."""
    from rosetta_cli.cli.app import main
    from rosetta_cli.toy import render_world

    d = tmp_path_factory.mktemp("sv")
    render_world(d / "world", scale="tiny", seed=0)
    try:
        main(["extract", "--videos", str(d / "world" / "htm-aa"), "--out", str(d / "exo.zarr"), "--workers", "0",
              "--limit", "12", "--frames", "3", "--text-encoder", "none", "--decoder", "pyav"])
    except SystemExit as e:
        assert not e.code
    index.run(index.IndexConfig(stores=[str(d / "exo.zarr")], out=str(d / "idx")))
    return d


@pytest.mark.slow
def test_video_query_reproduces_the_stored_clip(world, one_torch_thread):
    """Decoding a stored clip's window again, with the recorded frames (3) and decoder (pyav), finds that clip at cosine ~1."""
    s = Store.open(world / "exo.zarr")
    c = s.clips().iloc[3]
    srch = Searcher.open(world / "idx")
    assert srch.store0["frames"] == 3
    assert srch.store0["decoder"] == "pyav"
    res = retrieve(RetrieveConfig(index=str(world / "idx"), queries=[Query(video=c["video"], start=c["start"], end=c["end"])],
                                  topk=3), searcher=srch)
    top = res.queries[0]["hits"][0]
    assert top["clip_id"] == c["clip_id"]
    assert top["score"] > 0.999
    # the same query with another frame count would not reproduce it: frames really come from provenance
    srch.store0 = {**srch.store0, "frames": 1}
    other = srch.search(srch.query_video(c["video"], c["start"], c["end"]), 1)[0][0]
    assert other["score"] < top["score"] - 1e-4


@pytest.mark.slow
def test_bad_videos_exit_2(world, cli, tmp_path):
    (tmp_path / "junk.mp4").write_bytes(b"not a video at all" * 100)
    r = cli("retrieve", "--index", world / "idx", "--video", tmp_path / "junk.mp4")
    errs = [ln for ln in r.err.splitlines() if ln.startswith("rosetta: error")]
    assert r.code == 2
    assert len(errs) == 1
    assert "junk.mp4" in errs[0]
    assert "Traceback" not in r.err
    c = Store.open(world / "exo.zarr").clips().iloc[0]
    r = cli("retrieve", "--index", world / "idx", "--video", c["video"], "--start", "1.0", "--end", "1.2")
    assert r.code == 2
    assert "fewer than the 3 frames" in r.err


@pytest.mark.slow
def test_html_page_images_load_in_chromium(world, cli, tmp_path, page_images):
    c = Store.open(world / "exo.zarr").clips().iloc[2]
    r = cli("retrieve", "--index", world / "idx", "--video", c["video"], "--start", c["start"], "--end", c["end"],
            "--topk", "4", "--out", tmp_path / "page", "--label", "Cut pepper")
    assert r.code == 0, r
    copy = tmp_path / "moved"
    shutil.copytree(tmp_path / "page", copy)   # relative image paths: a moved page still works
    html = (copy / "index.html").read_text()
    assert html.count("<img") == 3 + 4          # 3 query frames + 4 hits
    assert page_images(copy / "index.html") == ("7", "7")
    next((copy / "frames").glob("*hit1.png")).unlink()   # the check notices a missing image
    assert page_images(copy / "index.html") == ("6", "7")




@pytest.mark.slow
def test_demo_layout_index_with_a_pretrained_model(tmp_path, cli, one_torch_thread):
    """The demo's layout in small: toy → extract (paired + HTM-AA) → a few pretrain steps → index the exo store
    with the model → a held-out ego clip as a video query returns exo clips; a text query uses g_psi."""
    from rosetta_cli.demo import paths
    from rosetta_cli.toy import render_world

    p = paths(tmp_path)
    render_world(p["world"], scale="tiny", seed=0)
    for name, store in (("egoexo4d", p["paired"]), ("htm-aa", p["exo"])):
        assert cli("extract", "--videos", p["world"] / name, "--out", store, "--workers", "0", "--frames", "2").code == 0
    model = p["models"] / "ours"
    r = cli("pretrain", "--paired", p["paired"], "--out", model, "--steps", "3", "--batch-size", "4", "--threads", "1")
    assert r.code == 0, r
    r = cli("index", "--store", p["exo"], "--model", model, "--out", tmp_path / "idx", "--json")
    assert r.code == 0, r
    meta = json.loads((tmp_path / "idx" / "index.json").read_text())
    assert meta["space"] == "model"
    assert meta["stores"][0]["frames"] == 2
    assert meta["model"]["path"] == str(model.absolute())
    ego = Store.open(p["paired"]).clips()
    c = ego[(ego["view"] == "ego") & (ego["split"] == "test")].iloc[0]
    r = cli("retrieve", "--index", tmp_path / "idx", "--video", c["video"], "--start", c["start"], "--end", c["end"],
            "--topk", "3", "--json")
    assert r.code == 0, r
    hits = json.loads(r.out)["queries"][0]["hits"]
    assert len(hits) == 3
    assert all(h["view"] == "exo" for h in hits)
    assert hits[0]["score"] >= hits[-1]["score"]
    r = cli("retrieve", "--index", tmp_path / "idx", "--text", "cut the pepper", "--topk", "2", "--json")
    assert r.code == 0
    assert len(json.loads(r.out)["queries"][0]["hits"]) == 2
