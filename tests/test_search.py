"""rosetta index / retrieve on synthetic stores: exact ranking vs numpy, resume, shards, partial and bad input."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest

from rosetta_cli.errors import UsageError
from rosetta_cli.search import index
from rosetta_cli.search.retrieve import Query, RetrieveConfig, Searcher, read_queries, run as retrieve
from rosetta_cli.store import DONE, FAILED, Store

T, D = 2, 16
ENC = {"name": "synthetic", "kind": "visual", "dim": D, "weights_sha256": "ab" * 32}


def make_store(path, n: int, seed: int, view="exo", enc=ENC, failed=()):
    rng = np.random.default_rng(seed)
    clips = pd.DataFrame({"clip_id": [f"{view}{seed}-{i}" for i in range(n)], "video": [f"v{i % 3}.mp4" for i in range(n)],
                          "start": np.arange(n, dtype=float), "end": np.arange(n, dtype=float) + 2,
                          "view": [view if i % 5 else ("ego" if view == "exo" else "exo") for i in range(n)],
                          "label": [f"step {i % 4}" for i in range(n)], "narration": "n"})
    s = Store.create(path, kind="features", clips=clips, frames=T, dim=D, dtype="float32", chunk_rows=16,
                     attrs={"encoder": enc, "text_encoder": None})
    feats = rng.normal(size=(n, T, D)).astype(np.float32)
    status = np.full(n, DONE, np.uint8)
    status[list(failed)] = FAILED
    s.write_rows(0, features=feats, status=status)
    s.finalize()
    s.close()
    return feats, status


def ref_scores(q: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Independent reference: cosine of pooled features."""
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    gn = g / np.linalg.norm(g, axis=1, keepdims=True)
    return qn @ gn.T


@pytest.fixture
def two_stores(tmp_path):
    fa, sa = make_store(tmp_path / "a.zarr", 40, 0, failed=(3, 17))
    fb, sb = make_store(tmp_path / "b.zarr", 25, 1)
    return tmp_path, (fa, sa), (fb, sb)


def test_index_then_row_query_matches_exact_cosine(two_stores):
    d, (fa, sa), (fb, sb) = two_stores
    r = index.run(index.IndexConfig(stores=[str(d / "a.zarr"), str(d / "b.zarr")], out=str(d / "idx")))
    assert r.built
    assert r.rows == 63
    assert r.plan["kind"] == "flat"
    assert r.space == "frozen"
    meta = json.loads((d / "idx" / "index.json").read_text())
    assert meta["status"] == "complete"
    assert [s["rows"] for s in meta["stores"]] == [40, 25]
    assert meta["model"] is None
    assert meta["config"]["stores"] == [str(d / "a.zarr"), str(d / "b.zarr")]
    gallery = np.concatenate([fa[sa == DONE].mean(1), fb.mean(1)])
    ids = [("a", i) for i in np.flatnonzero(sa == DONE)] + [("b", i) for i in range(25)]
    res = retrieve(RetrieveConfig(index=str(d / "idx"), queries=[Query(store=str(d / "b.zarr"), row=7)], topk=5))
    hits = res.queries[0]["hits"]
    s = ref_scores(fb[7:8].mean(1), gallery)[0]
    s[ids.index(("b", 7))] = -np.inf                         # exclude_self drops the query's own clip
    want = np.argsort(-s, kind="stable")[:5]
    assert [(h["store"].endswith("b.zarr") and "b" or "a", h["row"]) for h in hits] == [ids[j] for j in want]
    assert np.allclose([h["score"] for h in hits], s[want], atol=1e-3)
    assert res.queries[0]["label"] == "step 3"
    assert all(h["match"] == (h["label"] == "step 3") for h in hits)
    # failed rows are never indexed
    assert not any(h["row"] in (3, 17) and h["store"].endswith("a.zarr") for h in hits)


def test_view_filter_and_include_self(two_stores):
    d, (fa, _), _ = two_stores
    index.run(index.IndexConfig(stores=[str(d / "a.zarr")], out=str(d / "idx")))
    q = [Query(store=str(d / "a.zarr"), row=1)]
    hits = retrieve(RetrieveConfig(index=str(d / "idx"), queries=q, topk=6, view="ego")).queries[0]["hits"]
    assert len(hits) == 6
    assert all(h["view"] == "ego" for h in hits)  # every 5th clip is ego: 8 of 38
    top = retrieve(RetrieveConfig(index=str(d / "idx"), queries=q, topk=1, exclude_self=False)).queries[0]["hits"][0]
    assert top["row"] == 1
    assert top["score"] == pytest.approx(1.0, abs=1e-4)


def test_partial_index_is_refused_and_resume_finishes_it(two_stores, cli):
    d, _, _ = two_stores
    cfg = index.IndexConfig(stores=[str(d / "a.zarr"), str(d / "b.zarr")], out=str(d / "idx"), shard="0/2", batch_rows=16)
    r = index.run(cfg)
    assert not r.built
    assert 0 < r.embedded < 63
    assert not (d / "idx" / "index.json").exists()
    res = cli("retrieve", "--index", d / "idx", "--store", d / "a.zarr", "--rows", "0")
    assert res.code == 2
    assert "not a complete search index" in res.err
    assert "--resume" in res.err
    res = cli("index", "--store", d / "a.zarr", "--store", d / "b.zarr", "--out", d / "idx")
    assert res.code == 2
    assert "--resume" in res.err  # refuses without --resume/--overwrite
    r2 = index.run(index.IndexConfig(stores=cfg.stores, out=cfg.out, resume=True, batch_rows=16))
    assert r2.built
    assert r2.embedded == 63 - r.embedded  # only the other shard's rows
    whole = index.run(index.IndexConfig(stores=cfg.stores, out=str(d / "whole")))
    a = Store.open(d / "idx" / "embeddings.zarr").features()
    b = Store.open(d / "whole" / "embeddings.zarr").features()
    assert np.array_equal(a, b)
    assert whole.rows == r2.rows


def test_a_shard_run_on_a_complete_index_keeps_it_served(two_stores):
    """Every row is embedded, so a --shard run writes nothing and the index stays complete; a shard run
    that does write rows (a fresh INDEX_DIR) leaves no index.json until the final build."""
    d, _, _ = two_stores
    index.run(index.IndexConfig(stores=[str(d / "a.zarr")], out=str(d / "idx")))
    before = (d / "idx" / "index.json").read_text()
    r = index.run(index.IndexConfig(stores=[str(d / "a.zarr")], out=str(d / "idx"), shard="1/2"))
    assert (r.built, r.embedded) == (False, 0)
    assert (d / "idx" / "index.json").read_text() == before
    index.run(index.IndexConfig(stores=[str(d / "a.zarr")], out=str(d / "fresh"), shard="1/2"))
    assert not (d / "fresh" / "index.json").exists()


def test_resume_with_other_stores_is_refused(two_stores):
    d, _, _ = two_stores
    index.run(index.IndexConfig(stores=[str(d / "a.zarr")], out=str(d / "idx"), shard="0/2"))
    with pytest.raises(UsageError, match="other stores or another model"):
        index.run(index.IndexConfig(stores=[str(d / "b.zarr")], out=str(d / "idx"), resume=True))


def test_a_damaged_index_json_is_not_served(two_stores, cli):
    d, _, _ = two_stores
    index.run(index.IndexConfig(stores=[str(d / "a.zarr")], out=str(d / "idx")))
    m = json.loads((d / "idx" / "index.json").read_text())
    (d / "idx" / "index.json").write_text(json.dumps({**m, "status": "building"}))
    res = cli("retrieve", "--index", d / "idx", "--store", d / "a.zarr", "--rows", "0")
    assert res.code == 2
    assert "not a complete" in res.err


def test_query_store_of_another_encoder_exits_2(two_stores, cli):
    d, _, _ = two_stores
    make_store(d / "other.zarr", 10, 5, enc={**ENC, "weights_sha256": "cd" * 32})
    index.run(index.IndexConfig(stores=[str(d / "a.zarr")], out=str(d / "idx")))
    res = cli("retrieve", "--index", d / "idx", "--store", d / "other.zarr", "--rows", "0")
    assert res.code == 2
    assert "encoder" in res.err
    assert "other.zarr" in res.err
    res = cli("retrieve", "--index", d / "idx", "--text", "cut the pepper")
    assert res.code == 2
    assert "frozen-feature index" in res.err


def tiny_model(path, input_dim=D, text_dim=None, dim=8):
    """A real (untrained) dual-encoder checkpoint directory."""
    import torch

    from rosetta_cli.contrastive.config import ModelConfig
    from rosetta_cli.contrastive.model import build_model
    from rosetta_cli.runtime.checkpoint import save_checkpoint

    torch.manual_seed(0)
    cfg = ModelConfig(input_dim=input_dim, frames=T, text_dim=text_dim, dim=dim, heads=2)
    save_checkpoint(path, kind="dual-encoder", config={"model": asdict(cfg), "name": "tiny"},
                    model_state=build_model(cfg).state_dict())
    return path


def test_model_index_scores_are_the_models_cosines(two_stores, cli):
    d, (fa, sa), _ = two_stores
    from rosetta_cli.contrastive.api import load_dual_encoder

    m = tiny_model(d / "m")
    r = index.run(index.IndexConfig(stores=[str(d / "a.zarr")], out=str(d / "idx"), model=str(m)))
    assert r.space == "model"
    assert r.dim == 8
    meta = json.loads((d / "idx" / "index.json").read_text())
    enc = load_dual_encoder(m)
    assert meta["model"]["fingerprint"] == enc.fingerprint()
    assert len(enc.fingerprint()) == 16
    g = enc.encode_video(fa[sa == DONE])
    q = enc.encode_video(fa[5:6])
    hits = retrieve(RetrieveConfig(index=str(d / "idx"), queries=[Query(store=str(d / "a.zarr"), row=5)], topk=3,
                                   exclude_self=False)).queries[0]["hits"]
    want = np.sort(q @ g.T)[0, ::-1][:3]
    assert np.allclose([h["score"] for h in hits], want, atol=1e-4)
    assert hits[0]["row"] == 5
    # a model whose input dim differs from the store's features
    bad = tiny_model(d / "bad", input_dim=D + 1)
    res = cli("index", "--store", d / "a.zarr", "--model", bad, "--out", d / "idx2")
    assert res.code == 2
    assert "expects 17-d" in res.err
    # the model was replaced by one of another output dim since the index was built
    import shutil

    shutil.rmtree(m)
    tiny_model(m, dim=12)
    res = cli("retrieve", "--index", d / "idx", "--store", d / "a.zarr", "--rows", "0")
    assert res.code == 2
    assert "changed since the index was built" in res.err


def test_ivf_calibration_reaches_recall_against_exact(tmp_path):
    """IVF with calibrated nprobe: recall@10 of row queries vs an exact numpy scan meets the target."""
    n, rng = 6000, np.random.default_rng(3)
    centers = rng.normal(size=(30, D))
    feats = (centers[rng.integers(0, 30, n)][:, None, :] + 0.5 * rng.normal(size=(n, T, D))).astype(np.float32)
    clips = pd.DataFrame({"clip_id": [f"c{i}" for i in range(n)], "video": "v.mp4", "start": 0.0, "end": 1.0, "view": "exo"})
    s = Store.create(tmp_path / "s.zarr", kind="features", clips=clips, frames=T, dim=D, dtype="float32",
                     attrs={"encoder": ENC})
    s.write_rows(0, features=feats, status=DONE)
    s.finalize()
    r = index.run(index.IndexConfig(stores=[str(tmp_path / "s.zarr")], out=str(tmp_path / "idx"), index="ivf", nlist=64))
    assert r.plan["kind"] == "ivf"
    assert r.calibration["recall@10"] >= 0.95
    assert 1 <= r.calibration["nprobe"] <= 64
    srch = Searcher.open(tmp_path / "idx")
    rows = list(range(0, n, 97))
    vec, st = srch.query_rows(str(tmp_path / "s.zarr"), rows)
    found = np.array([[h["id"] for h in hs] for hs in srch.search(vec, 10)])
    g = feats.mean(1)
    exact = np.argsort(-ref_scores(g[rows], g), axis=1, kind="stable")[:, :10]
    assert index.recall_at_k(found, exact) >= 0.9   # other queries than calibration's: a little slack


def test_queries_file_csv_and_jsonl(tmp_path):
    (tmp_path / "q.jsonl").write_text('{"text": "cut"}\n\n{"store": "s.zarr", "row": 3, "label": "x"}\n')
    qs = read_queries(tmp_path / "q.jsonl")
    assert [q.kind for q in qs] == ["text", "store"]
    assert qs[1].row == 3
    assert qs[1].label == "x"
    (tmp_path / "q.csv").write_text("video,start,end,text\na.mp4,1.5,3,\n,,,chop onion\n")
    qs = read_queries(tmp_path / "q.csv")
    assert (qs[0].video, qs[0].start, qs[0].end) == ("a.mp4", 1.5, 3.0)
    assert qs[1].text == "chop onion"
    (tmp_path / "bad.jsonl").write_text('{"video": "a.mp4", "text": "both"}\n')
    with pytest.raises(UsageError, match="query 1"):
        read_queries(tmp_path / "bad.jsonl")
