"""`rosetta mine`: exactness vs numpy, strategy scores, weights, ties, shards, resume, cache, IVF recall, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rosetta_cli.errors import DimensionMismatch, Interrupted, StoreError, UsageError
from rosetta_cli.mining import MineConfig, shard_output_path
from rosetta_cli.mining.run import run as mine_run
from rosetta_cli.store import DONE, FAILED, PENDING, Store

import faiss
faiss.omp_set_num_threads(1)


# ---------------------------------------------------------------- helpers
def make_store(path, view, vis, text=None, status=None, kind="features", chunk=8, parent=None):
    """A row store with features vis [N, T, D] (fp32 so that hand computations are exact)."""
    n = len(vis)
    clips = pd.DataFrame({"clip_id": [f"{view}{i:03d}" for i in range(n)], "view": [view] * n,
                          "narration": [f"n{i}" for i in range(n)]})
    s = Store.create(path, kind=kind, clips=clips, frames=vis.shape[1], dim=vis.shape[2],
                     text_dim=None if text is None else text.shape[1], dtype="float32", chunk_rows=chunk)
    if parent is not None:
        s.add_parent("ego", parent)
    s.write_rows(0, features=vis, text=text, status=DONE if status is None else status)
    s.finalize()
    return s


@pytest.fixture
def data(tmp_path):
    """Ego (30 rows), translations of it, exo (50 rows); D=6, T=2, Dt=4. Returns paths and raw arrays."""
    rng = np.random.default_rng(0)
    ego_v = rng.standard_normal((30, 2, 6)).astype(np.float32)
    tr_v = rng.standard_normal((30, 2, 6)).astype(np.float32)
    exo_v = rng.standard_normal((50, 2, 6)).astype(np.float32)
    ego_t = rng.standard_normal((30, 4)).astype(np.float32)
    exo_t = rng.standard_normal((50, 4)).astype(np.float32)
    ego = make_store(tmp_path / "ego.zarr", "ego", ego_v, ego_t)
    exo = make_store(tmp_path / "exo.zarr", "exo", exo_v, exo_t)
    tr = make_store(tmp_path / "tr.zarr", "ego", tr_v, kind="translations", parent=ego)
    for s in (ego, exo, tr):
        s.close()
    return {"dir": tmp_path, "ego": tmp_path / "ego.zarr", "exo": tmp_path / "exo.zarr", "tr": tmp_path / "tr.zarr",
            "ego_v": ego_v.mean(1), "tr_v": tr_v.mean(1), "exo_v": exo_v.mean(1), "ego_t": ego_t, "exo_t": exo_t}


def cos(a, b):
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return a @ b.T


def brute_topk(S, k):
    """Reference top-k with the tie rule: score desc, then candidate row asc."""
    order = np.lexsort((np.broadcast_to(np.arange(S.shape[1]), S.shape), -S), axis=1)[:, :k]
    return order, np.take_along_axis(S, order, 1)


def run(data, out="pairs.zarr", **kw):
    kw.setdefault("translated", data["tr"])
    cfg = MineConfig(ego=data["ego"], exo=data["exo"], out=data["dir"] / out, **kw)
    res = mine_run(cfg)
    with Store.open(res.out) as s:
        return res, s.pairs(), dict(s.meta)


def as_matrix(df, col, k):
    return df.sort_values(["query_row", "rank"])[col].to_numpy().reshape(-1, k)


# ---------------------------------------------------------------- exactness and ties
def test_flat_search_matches_brute_force_with_ties():
    from rosetta_cli.mining.search import search_topk

    rng = np.random.default_rng(1)
    xb = rng.integers(-2, 3, size=(200, 8)).astype(np.float32)  # small integers: exact scores, many ties
    xb[150:] = xb[:50]                                           # exact duplicates at higher rows
    xq = rng.integers(-2, 3, size=(40, 8)).astype(np.float32)
    index = faiss.IndexFlatIP(8)
    index.add(xb)
    for k in (1, 3, 10):
        D, I = search_topk(index, xq, k, len(xb))
        ref_I, ref_D = brute_topk(xq @ xb.T, k)
        np.testing.assert_array_equal(I, ref_I)
        np.testing.assert_array_equal(D, ref_D)


def test_tie_rule_prefers_lower_row_even_past_k_plus_one():
    from rosetta_cli.mining.search import search_topk

    xb = np.ones((64, 4), np.float32)   # every candidate ties
    index = faiss.IndexFlatIP(4)
    index.add(xb)
    D, I = search_topk(index, np.ones((3, 4), np.float32), 5, 64)
    np.testing.assert_array_equal(I, np.tile(np.arange(5), (3, 1)))


@pytest.mark.parametrize("w", [0.5, 0.0, 0.25])
def test_rst_scores_are_weighted_cosines(data, w):
    k = 3
    res, df, meta = run(data, strategy="rst", topk=k, text_weight=w, index="flat")
    S = (1 - w) * cos(data["tr_v"], data["exo_v"]) + w * cos(data["ego_t"], data["exo_t"])
    ref_I, ref_D = brute_topk(S, k)
    np.testing.assert_array_equal(as_matrix(df, "candidate_row", k), ref_I)
    np.testing.assert_allclose(as_matrix(df, "score", k), ref_D, atol=1e-5)
    np.testing.assert_array_equal(as_matrix(df, "rank", k), np.tile(np.arange(k), (30, 1)))
    W = np.take_along_axis(np.clip(cos(data["ego_t"], data["exo_t"]), 0, 1), ref_I, 1)
    np.testing.assert_allclose(as_matrix(df, "weight", k), W, atol=1e-5)
    assert meta["strategy"] == "rst"
    assert meta["topk"] == k
    assert meta["text_weight"] == w
    assert meta["rank_base"] == 0
    assert {p["role"] for p in meta["parents"]} == {"ego", "exo", "translated"}
    assert df["query_clip_id"].iloc[0] == "ego000"
    assert df["candidate_clip_id"].iloc[0] == f"exo{ref_I[0, 0]:03d}"


def test_visual_and_text_strategies(data):
    res, df, _ = run(data, strategy="visual", topk=2, index="flat")   # default W = 0 → vision only
    ref_I, ref_D = brute_topk(cos(data["ego_v"], data["exo_v"]), 2)
    np.testing.assert_array_equal(as_matrix(df, "candidate_row", 2), ref_I)
    np.testing.assert_allclose(as_matrix(df, "score", 2), ref_D, atol=1e-5)
    res, df, _ = run(data, "p2.zarr", strategy="visual", topk=2, text_weight=0.5, index="flat")
    ref_I, _ = brute_topk(0.5 * cos(data["ego_v"], data["exo_v"]) + 0.5 * cos(data["ego_t"], data["exo_t"]), 2)
    np.testing.assert_array_equal(as_matrix(df, "candidate_row", 2), ref_I)
    res, df, _ = run(data, "p3.zarr", strategy="text", topk=2)
    ref_I, ref_D = brute_topk(cos(data["ego_t"], data["exo_t"]), 2)
    np.testing.assert_array_equal(as_matrix(df, "candidate_row", 2), ref_I)
    np.testing.assert_allclose(as_matrix(df, "score", 2), ref_D, atol=1e-5)
    np.testing.assert_allclose(as_matrix(df, "weight", 2), np.clip(ref_D, 0, 1), atol=1e-5)


def test_random_strategy_is_seeded_and_distinct(data):
    _, a, meta = run(data, strategy="random", topk=4, seed=3)
    _, b, _ = run(data, "b.zarr", strategy="random", topk=4, seed=3)
    _, c, _ = run(data, "c.zarr", strategy="random", topk=4, seed=4)
    pd.testing.assert_frame_equal(a, b)
    assert not a["candidate_row"].equals(c["candidate_row"])
    assert a["score"].isna().all()
    assert "NaN" in meta["score"]
    assert (a.groupby("query_row")["candidate_row"].nunique() == 4).all()
    W = np.clip(cos(data["ego_t"], data["exo_t"]), 0, 1)[a["query_row"], a["candidate_row"]]
    np.testing.assert_allclose(a["weight"], W, atol=1e-5)


def test_not_done_rows_are_skipped_and_counted(tmp_path, data):
    rng = np.random.default_rng(2)
    st = np.full(50, DONE, np.uint8)
    st[[0, 7, 8]] = FAILED
    st[49] = PENDING
    make_store(tmp_path / "exo2.zarr", "exo", rng.standard_normal((50, 1, 6)).astype(np.float32), status=st).close()
    with Store.open(data["tr"], "r+") as tr:
        tr.write_rows(5, status=np.array([PENDING], np.uint8))
    res, df, meta = run({**data, "exo": tmp_path / "exo2.zarr"}, strategy="rst", text_weight=0.0, topk=2)
    assert res.skipped == {"ego_not_done": 0, "translated_not_done": 1, "exo_not_done": 4}
    assert meta["skipped"] == res.skipped
    assert res.queries == 29
    assert res.candidates == 46
    assert 5 not in set(df["query_row"])
    assert not set(df["candidate_row"]) & {0, 7, 8, 49}
    assert (df["weight"] == 1.0).all()   # exo2 has no text → weight 1


# ---------------------------------------------------------------- shards, resume, cache
def test_shards_concatenate_to_the_single_run(data):
    _, single, _ = run(data, strategy="rst", topk=3, block_rows=8, index="flat")
    parts = []
    for i in range(3):
        res, df, meta = run(data, strategy="rst", topk=3, block_rows=8, index="flat", shard=f"{i}/3")
        assert res.out == shard_output_path(data["dir"] / "pairs.zarr", i, 3)
        assert meta["shard"] == [i, 3]
        parts.append(df)
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), single)


def test_world_size_env_selects_the_shard(data, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    res, df, meta = run(data, strategy="text", block_rows=8)
    assert meta["shard"] == [1, 2]
    assert res.out.name == "pairs.shard-001-of-002.zarr"
    assert df["query_row"].min() >= 16


class _Interrupt:
    """A Progress that interrupts the run after `after` mined blocks."""

    def __init__(self, after):
        self.after, self.phase = after, None

    def start(self, phase, total, done=0, unit="items"):
        self.phase = phase

    def advance(self, n=1, *, completed=None, info=""):
        if self.phase == "mine":
            self.after -= 1
            if self.after == 0:
                raise KeyboardInterrupt

    def note(self, msg):
        pass


def test_interrupted_run_resumes_to_the_same_result(data):
    _, single, _ = run(data, "single.zarr", strategy="rst", topk=2, block_rows=8)
    cfg = MineConfig(ego=data["ego"], exo=data["exo"], translated=data["tr"], out=data["dir"] / "p.zarr",
                     strategy="rst", topk=2, block_rows=8)
    with pytest.raises(Interrupted, match="2 of 4 query blocks are kept"):
        mine_run(cfg, _Interrupt(after=2))
    assert len(list((data["dir"] / "p.zarr.partial").glob("block-*.npz"))) == 2
    res = mine_run(MineConfig(**{**cfg.__dict__, "shard": None}))
    assert res.resumed_blocks == 2
    assert not (data["dir"] / "p.zarr.partial").exists()
    with Store.open(res.out) as s:
        pd.testing.assert_frame_equal(s.pairs(), single)


def test_index_cache_is_reused_and_invalidated(data, tmp_path):
    cache = tmp_path / "cache" / "exo.faiss"
    r1, a, m1 = run(data, strategy="rst", index="ivf", nlist=4, nprobe=4, index_cache=cache)
    r2, b, m2 = run(data, "b.zarr", strategy="rst", index="ivf", nlist=4, nprobe=4, index_cache=cache)
    assert not m1["index"]["from_cache"]
    assert m2["index"]["from_cache"]
    assert cache.exists()
    pd.testing.assert_frame_equal(a, b)
    r3, _, m3 = run(data, "c.zarr", strategy="rst", index="ivf", nlist=5, nprobe=5, index_cache=cache)
    assert not m3["index"]["from_cache"]          # other params → rebuilt
    with Store.open(data["exo"], "r+") as exo:
        exo.finalize()                            # content changed → new fingerprint → rebuilt
    _, _, m4 = run(data, "d.zarr", strategy="rst", index="ivf", nlist=5, nprobe=5, index_cache=cache)
    assert not m4["index"]["from_cache"]


# ---------------------------------------------------------------- approximate search
def _clustered(rng, n, centers, basis, noise):
    """Cluster centres + noise inside a low-rank subspace (+ a little isotropic noise), like real features."""
    x = centers[rng.integers(0, len(centers), n)] + noise * rng.standard_normal((n, basis.shape[0])) @ basis
    return (x + 0.01 * rng.standard_normal(x.shape)).astype(np.float32)


def _ivf_world(tmp_path) -> None:
    """ego.zarr (300 clips), tr.zarr (its translations) and exo.zarr (4,000 clips) of clustered 16-d features."""
    rng = np.random.default_rng(5)
    basis = rng.standard_normal((8, 16))
    centers = rng.standard_normal((40, 8)) @ basis
    exo = _clustered(rng, 4000, centers, basis, 0.3)[:, None]
    ego = _clustered(rng, 300, centers, basis, 0.3)[:, None]
    e = make_store(tmp_path / "ego.zarr", "ego", ego, chunk=64)
    make_store(tmp_path / "tr.zarr", "ego", ego, kind="translations", parent=e, chunk=64).close()
    e.close()
    make_store(tmp_path / "exo.zarr", "exo", exo, chunk=64).close()


def test_ivf_auto_nprobe_and_recall_check(tmp_path):
    _ivf_world(tmp_path)
    cfg = MineConfig(ego=tmp_path / "ego.zarr", exo=tmp_path / "exo.zarr", translated=tmp_path / "tr.zarr",
                     out=tmp_path / "p.zarr", index="ivf", nlist=32, check_recall=200, topk=5, block_rows=128,
                     text_weight=0.0)
    res = mine_run(cfg)
    # the calibration only picks nprobe (against exact search in the index space, found while building); the
    # recall check measures the result
    assert res.index["kind"] == "ivf"
    assert res.index["calibration"]["nprobe"] == res.index["nprobe"]
    assert res.index["calibration"]["reference"] == "exact search in the index space"
    assert res.recall["check"] == "sampled"
    assert res.recall["recall@1"] >= 0.95
    assert "warning" not in res.recall
    assert 1 <= res.index["nprobe"] <= 32
    assert res.recall["queries"] == 200
    assert res.recall["recall@1"] >= 0.9
    assert 0 < res.recall["recall@5"] <= 1
    flat = mine_run(MineConfig(**{**cfg.__dict__, "out": tmp_path / "f.zarr", "index": "flat", "shard": None}))
    assert flat.recall["recall@1"] == 1.0
    assert flat.recall["recall@5"] == 1.0
    hnsw = mine_run(MineConfig(**{**cfg.__dict__, "out": tmp_path / "h.zarr", "index": "hnsw", "shard": None}))
    assert hnsw.index["kind"] == "hnsw"
    assert hnsw.recall["recall@1"] >= 0.9
    pca = mine_run(MineConfig(**{**cfg.__dict__, "out": tmp_path / "c.zarr", "index": "flat", "pca": 8, "shard": None}))
    assert pca.index["pca"]["dim"] == 8
    assert pca.index["pca"]["energy"] > 0.99
    assert pca.recall["recall@1"] > 0.9
    with Store.open(tmp_path / "c.zarr") as s:
        assert "PCA" in s.meta["score"]
        assert s.meta["index"]["pca"]["from_dim"] == 16


# ---------------------------------------------------------------- the recall check (on by default)
class _Notes:
    """A Progress that records its notes."""

    def __init__(self):
        self.notes = []

    def start(self, phase, total, done=0, unit="items"):
        pass

    def advance(self, n=1, *, completed=None, info=""):
        pass

    def note(self, msg):
        self.notes.append(msg)


def _ivf_stores(tmp_path, clustered: bool, n_exo=4000, n_ego=300):
    """ego/tr/exo stores (T=1, D=16, no text) → (MineConfig kwargs, query vectors, candidate vectors)."""
    rng = np.random.default_rng(5)
    if clustered:
        basis = rng.standard_normal((8, 16))
        centers = rng.standard_normal((40, 8)) @ basis
        exo, ego = _clustered(rng, n_exo, centers, basis, 0.3), _clustered(rng, n_ego, centers, basis, 0.3)
    else:  # isotropic: the nearest neighbour is in the query's own list only by luck
        exo, ego = (rng.standard_normal((n, 16)).astype(np.float32) for n in (n_exo, n_ego))
    e = make_store(tmp_path / "ego.zarr", "ego", ego[:, None], chunk=64)
    make_store(tmp_path / "tr.zarr", "ego", ego[:, None], kind="translations", parent=e, chunk=64).close()
    e.close()
    make_store(tmp_path / "exo.zarr", "exo", exo[:, None], chunk=64).close()
    kw = dict(ego=tmp_path / "ego.zarr", exo=tmp_path / "exo.zarr", translated=tmp_path / "tr.zarr",
              block_rows=128, text_weight=0.0)
    return kw, ego, exo


def test_recall_is_checked_by_default_for_ivf_and_recorded(tmp_path):
    kw, _, _ = _ivf_stores(tmp_path, clustered=True)
    prog = _Notes()
    res = mine_run(MineConfig(**kw, out=tmp_path / "p.zarr", index="ivf", nlist=32, topk=5), prog)  # no check_recall
    rec = res.recall
    assert rec["check"] == "sampled"
    assert rec["queries"] == 256
    assert rec["target"] == 0.95  # 256 of 300 queries
    assert 0.95 <= rec["recall@1"] <= 1
    assert 0 <= rec["recall@5"] <= 1
    assert rec["space"].startswith("full")
    assert any("recall@1" in n and "256 sampled" in n for n in prog.notes)
    assert "warning" not in rec
    with Store.open(res.out) as s:
        assert s.meta["recall"] == rec
    assert res.to_dict()["recall"] == rec
    assert res.to_dict()["out"] == str(res.out)
    off = mine_run(MineConfig(**kw, out=tmp_path / "off.zarr", index="ivf", nlist=32, topk=5, check_recall=0))
    assert off.recall is None
    assert off.seconds["recall"] == 0.0
    with Store.open(off.out) as s:
        assert s.meta["recall"] is None
    flat = mine_run(MineConfig(**kw, out=tmp_path / "flat.zarr", index="flat", topk=5))
    assert flat.recall["check"] == "exact"
    assert flat.recall["queries"] == 0
    assert flat.recall["recall@1"] == 1.0
    assert flat.recall["recall@5"] == 1.0


def test_low_recall_warns_and_equals_the_hand_computed_value(tmp_path):
    """nprobe=1 of 64 lists on isotropic data: the recall check (on all 300 queries) equals brute force numpy."""
    kw, ego, exo = _ivf_stores(tmp_path, clustered=False)
    k, prog = 3, _Notes()
    cfg = MineConfig(**kw, out=tmp_path / "p.zarr", index="ivf", nlist=64, nprobe=1, topk=k, check_recall=1000)
    res = mine_run(cfg, prog)
    with Store.open(res.out) as s:
        mined, meta = as_matrix(s.pairs(), "candidate_row", k), dict(s.meta)
    ref, _ = brute_topk(cos(ego, exo), k)
    want1 = float(np.mean(mined[:, 0] == ref[:, 0]))
    want_k = float(np.mean([len(np.intersect1d(a, b)) for a, b in zip(mined, ref)]) / k)
    rec = res.recall
    assert rec["queries"] == 300
    assert rec["recall@1"] == pytest.approx(want1)
    assert rec["recall@3"] == pytest.approx(want_k)
    assert rec["recall@1"] < 0.95
    assert meta["recall"] == rec
    assert rec["warning"] in res.notes
    assert rec["warning"] in prog.notes
    assert "below 0.95" in rec["warning"]
    assert res.index["nprobe"] == 1
    assert res.index["calibration"] is None  # --nprobe given: no calibration


def test_fully_resumed_run_checks_recall_without_an_index(tmp_path):
    kw, _, _ = _ivf_stores(tmp_path, clustered=True)
    cfg = MineConfig(**kw, out=tmp_path / "p.zarr", index="ivf", nlist=32, topk=2)
    single = mine_run(MineConfig(**{**cfg.__dict__, "out": tmp_path / "single.zarr"}))
    with pytest.raises(Interrupted, match="query blocks are kept"):
        mine_run(cfg, _Interrupt(after=3))          # after the last of the 3 blocks is saved, before the write
    res = mine_run(cfg)
    assert res.resumed_blocks == 3
    assert res.seconds["search"] == 0.0
    assert "prepare" not in res.seconds
    drop = lambda d: {k: v for k, v in d.items() if k != "seconds"}  # noqa: E731
    assert drop(res.index) == drop(single.index)
    assert drop(res.recall) == drop(single.recall)
    with Store.open(res.out) as a, Store.open(single.out) as b:
        pd.testing.assert_frame_equal(a.pairs(), b.pairs())


def test_no_resume_discards_the_partial_run(data):
    cfg = MineConfig(ego=data["ego"], exo=data["exo"], translated=data["tr"], out=data["dir"] / "p.zarr",
                     strategy="rst", topk=2, block_rows=8)
    with pytest.raises(Interrupted, match="query blocks are kept"):
        mine_run(cfg, _Interrupt(after=2))
    prog = _Notes()
    res = mine_run(MineConfig(**{**cfg.__dict__, "resume": False}), prog)
    assert res.resumed_blocks == 0
    assert any("discarded (--no-resume)" in n for n in prog.notes)
    assert cfg.shard is None
    assert cfg.resume is True  # run() never changes the caller's config


def test_overwrite_replaces_a_finished_store(data):
    _, a, _ = run(data, strategy="text", topk=1)
    with pytest.raises(UsageError, match="already holds a pairs store") as e:
        run(data, strategy="text", topk=2)
    assert "--overwrite" in e.value.hint
    _, b, meta = run(data, strategy="text", topk=2, overwrite=True)
    assert len(b) == 2 * len(a)
    assert meta["topk"] == 2
    assert not list(data["dir"].glob(".pairs*"))      # no temporary store left beside OUT


def test_search_params_reach_a_gpu_style_index():
    """faiss-gpu IVF indexes are no IndexIVF: nprobe is set on the object itself."""
    from rosetta_cli.mining.index import IndexPlan, set_search_params

    class FakeGpuIvf:
        nprobe = 1

    idx = FakeGpuIvf()
    set_search_params(idx, IndexPlan("ivf", nlist=64, nprobe=12))
    assert idx.nprobe == 12


def test_calibration_reference_found_while_building_is_exact_search():
    """build_index's probe gives each probe's exact top-1 (independent reference: faiss IndexFlatIP over the
    same vectors), and calibrating against it picks the nprobe that the old all-lists reference picked
    (IVF-Flat over every list is exact search too)."""
    from rosetta_cli.mining.index import IndexPlan, build_index, calibrate_nprobe

    rng = np.random.default_rng(11)
    basis = rng.standard_normal((8, 16))
    centers = rng.standard_normal((40, 8)) @ basis
    x = _clustered(rng, 3000, centers, basis, 0.3)
    xq = _clustered(rng, 200, centers, basis, 0.3)

    class Src:  # a VectorSource over an array: blocks of 500 rows
        dim, span = 16, 500

        def vectors(self, rows):
            return x[rows]

    plan = IndexPlan("ivf", nlist=32, calibrate=True)
    index, (De, Ie) = build_index(plan, Src(), np.arange(len(x)), seed=0, probe=xq)
    flat = faiss.IndexFlatIP(16)
    flat.add(x)
    Dr, Ir = flat.search(xq, 1)
    assert index.ntotal == len(x)
    assert np.array_equal(Ie, Ir)
    np.testing.assert_allclose(De, Dr, rtol=1e-5, atol=1e-5)
    new = calibrate_nprobe(index, IndexPlan("ivf", nlist=32, calibrate=True), xq, reference=(De, Ie))
    old = calibrate_nprobe(index, IndexPlan("ivf", nlist=32, calibrate=True), xq)
    assert new["reference"] == "exact search in the index space"
    assert old["reference"] == "all lists of the same index"
    assert new["nprobe"] == old["nprobe"]
    assert 1 < new["nprobe"] < 32   # the data make a real choice, not the first or last value


def test_auto_index_rule():
    from rosetta_cli.mining.index import plan_index

    cfg = MineConfig(ego="e", exo="x", out="o")
    assert plan_index(cfg, 1000, 10_000, 1664).kind == "flat"
    assert plan_index(cfg, 562_000, 1_250_000, 256).kind == "ivf"
    p = plan_index(cfg, 562_000, 1_250_000, 256)
    assert p.nlist == round(4 * 1_250_000 ** 0.5)
    assert p.calibrate
    assert p.storage == "fp32"                                      # 1.2 GB in float32
    big = plan_index(cfg, 562_000, 1_250_000, 1664)                 # the paper's size without PCA: 7.7 GiB
    assert big.kind == "ivf"
    assert big.storage == "fp16"
    assert "fp16" in big.reason


def test_fp16_ivf_storage_mines_what_exact_search_mines(tmp_path, monkeypatch):
    """Above IVF_FP32_MAX_BYTES the IVF index stores float16 vectors (half the memory); the run's own recall
    check against exact full-space search still passes, and the index metadata says how it stored them."""
    from rosetta_cli.mining import config

    monkeypatch.setattr(config, "IVF_FP32_MAX_BYTES", 0)
    _ivf_world(tmp_path)
    res = mine_run(MineConfig(ego=tmp_path / "ego.zarr", exo=tmp_path / "exo.zarr", translated=tmp_path / "tr.zarr",
                              out=tmp_path / "p.zarr", index="ivf", nlist=32, check_recall=300, topk=1,
                              block_rows=128, text_weight=0.0))
    assert res.index["storage"] == "fp16"
    assert res.recall["queries"] == 300
    assert res.recall["recall@1"] >= 0.95


# ---------------------------------------------------------------- bad input
def test_bad_inputs(tmp_path, data):
    rng = np.random.default_rng(3)
    with pytest.raises(UsageError, match="needs --translated"):
        run(data, translated=None, strategy="rst")
    other = make_store(tmp_path / "other.zarr", "ego", rng.standard_normal((30, 1, 6)).astype(np.float32))
    make_store(tmp_path / "tr_other.zarr", "ego", rng.standard_normal((30, 1, 6)).astype(np.float32),
               kind="translations", parent=other).close()
    other.close()
    with pytest.raises(StoreError, match="not translated from"):
        run(data, translated=tmp_path / "tr_other.zarr")
    with Store.open(data["ego"]) as ego:
        make_store(tmp_path / "tr8.zarr", "ego", rng.standard_normal((30, 1, 8)).astype(np.float32),
                   kind="translations", parent=ego).close()
    with pytest.raises(DimensionMismatch, match="feature dim 8"):
        run(data, translated=tmp_path / "tr8.zarr")
    with pytest.raises(UsageError, match="--topk 51"):
        run(data, topk=51)
    make_store(tmp_path / "none.zarr", "exo", rng.standard_normal((5, 1, 6)).astype(np.float32),
               text=rng.standard_normal((5, 4)).astype(np.float32), status=np.full(5, PENDING, np.uint8)).close()
    with pytest.raises(UsageError, match="no candidates"):
        run({**data, "exo": tmp_path / "none.zarr"})
    make_store(tmp_path / "notext.zarr", "exo", rng.standard_normal((5, 1, 6)).astype(np.float32)).close()
    with pytest.raises(StoreError, match="no narration embeddings"):
        run({**data, "exo": tmp_path / "notext.zarr"}, strategy="text")
    with pytest.raises(StoreError, match="--text-weight 0"):
        run({**data, "exo": tmp_path / "notext.zarr"}, strategy="rst")
    with pytest.raises(UsageError, match="--text-weight applies"):
        run(data, strategy="text", text_weight=0.3)
    with pytest.raises(StoreError, match="'translations'"):
        run(data, translated=data["ego"])
    with pytest.raises(UsageError, match="must end in .zarr"):
        run(data, out="pairs.csv")
    with pytest.raises(UsageError, match="--check-recall -1"):
        run(data, check_recall=-1)
    with pytest.raises(UsageError, match="--shard"):
        run(data, shard="3/2")
    with pytest.raises(UsageError, match="--index 'ivfpq'"):
        run(data, index="ivfpq")


def test_cli_end_to_end_and_errors(cli, data):
    out = data["dir"] / "cli.zarr"
    r = cli("mine", "--ego", data["ego"], "--exo", data["exo"], "--translated", data["tr"], "--out", out,
            "--topk", "2", "--check-recall", "10", "--json")
    assert r.code == 0, r
    import json

    summary = json.loads(r.out)
    assert summary["pairs"] == 60
    assert summary["recall"]["recall@1"] == 1.0
    with Store.open(out) as s:
        assert list(s.pairs().columns) == ["query_row", "query_clip_id", "candidate_row", "candidate_clip_id",
                                           "rank", "score", "weight"]
    r = cli("mine", "--ego", data["ego"], "--exo", data["exo"], "--translated", data["tr"], "--out", out)
    assert r.code == 2
    assert "--overwrite" in r.err
    base = ("mine", "--ego", data["ego"], "--exo", data["exo"], "--translated", data["tr"], "--index", "ivf",
            "--nlist", "4", "--nprobe", "1", "--topk", "2", "--json")
    r = cli(*base, "--out", data["dir"] / "ivf.zarr")                     # no --check-recall: checked by default
    rec = json.loads(r.out)["recall"]
    assert r.code == 0
    assert rec["check"] == "sampled"
    assert rec["queries"] == 30
    assert 0 <= rec["recall@1"] <= 1
    r = cli(*base, "--out", data["dir"] / "ivf0.zarr", "--check-recall", "0")
    assert r.code == 0
    assert json.loads(r.out)["recall"] is None
    r = cli("mine", "--ego", data["ego"], "--exo", data["exo"], "--out", data["dir"] / "x.zarr")
    assert r.code == 2
    assert "--translated" in r.err
    r = cli("mine", "--ego", data["ego"], "--exo", data["exo"], "--out", data["dir"] / "x.zarr",
            "--strategy", "text", "--device", "cuda")
    if faiss.get_num_gpus() == 0:
        assert r.code == 2
        assert "GPU" in r.err


@pytest.mark.parametrize("storage", ["fp32", "fp16"])
def test_add_blocks_builds_the_index_plain_add_builds(storage):
    """IVF built by add_blocks (assign, size the lists, add preassigned) holds exactly what faiss's own
    index.add puts there (independent reference): the same ids in the same order and the same codes in
    every list, so searches agree; the blocks are yielded once each, in order."""
    from rosetta_cli.mining.index import IndexPlan, add_blocks, new_index

    rng = np.random.default_rng(5)
    x = rng.standard_normal((3000, 24)).astype(np.float32)
    plan = IndexPlan("ivf", nlist=16, storage=storage)
    ours, ref = new_index(plan, 24, seed=0), new_index(plan, 24, seed=0)
    for ix in (ours, ref):
        ix.train(x[:1600])
    ticks = []
    seen = list(add_blocks(ours, lambda: (x[a:a + 700] for a in range(0, 3000, 700)), ticks.append))
    for a in range(0, 3000, 700):
        ref.add(x[a:a + 700])
    assert np.array_equal(np.vstack(seen), x)
    assert ticks == [700, 700, 700, 700, 200] * 2 and plan.passes == 2
    assert ours.ntotal == ref.ntotal == 3000
    for l in range(16):
        n = ref.invlists.list_size(l)
        assert ours.invlists.list_size(l) == n
        ids = [faiss.rev_swig_ptr(ix.invlists.get_ids(l), n).copy() for ix in (ours, ref)]
        codes = [faiss.rev_swig_ptr(ix.invlists.get_codes(l), n * ix.code_size).copy() for ix in (ours, ref)]
        assert np.array_equal(*ids) and np.array_equal(*codes)
    ours.nprobe = ref.nprobe = 4
    assert np.array_equal(ours.search(x[:50], 5)[1], ref.search(x[:50], 5)[1])


def test_add_blocks_onto_a_non_empty_ivf_keeps_its_entries():
    """Sizing the lists keeps what they hold: two add_blocks calls give the ids index.add gives."""
    from rosetta_cli.mining.index import IndexPlan, add_blocks, new_index

    x = np.random.default_rng(6).standard_normal((2000, 8)).astype(np.float32)
    plan = IndexPlan("ivf", nlist=8)
    ours, ref = new_index(plan, 8, seed=0), new_index(plan, 8, seed=0)
    ours.train(x)
    ref.train(x)
    for part in (x[:900], x[900:]):
        list(add_blocks(ours, lambda part=part: iter([part])))
        ref.add(part)
    for l in range(8):
        n = ref.invlists.list_size(l)
        assert ours.invlists.list_size(l) == n
        assert np.array_equal(faiss.rev_swig_ptr(ours.invlists.get_ids(l), n), faiss.rev_swig_ptr(ref.invlists.get_ids(l), n))


def test_cache_lock_waits_for_the_builder_and_outlives_a_killed_one(tmp_path):
    """CacheLock (filelock): a second builder waits until the index is ready instead of building it again,
    and a builder killed with -9 leaves no lock behind (the OS drops it with the process)."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    import rosetta_cli
    from rosetta_cli.mining.index import CacheLock

    path = tmp_path / "cache" / "index.faiss"
    first = CacheLock(path, poll_s=0.05)
    assert first.acquire(lambda: False) and first.held
    polls = []
    second = CacheLock(path, poll_s=0.05)
    assert second.acquire(lambda: polls.append(1) or len(polls) >= 3) is False  # ready on the 3rd poll
    assert not second.held and len(polls) == 3
    first.release()
    assert not first.held
    # a holder killed mid-build
    code = ("import sys, time; sys.path.insert(0, sys.argv[2]); from rosetta_cli.mining.index import CacheLock; "
            "lock = CacheLock(sys.argv[1]); lock.acquire(lambda: False); print('held', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(path), str(Path(rosetta_cli.__file__).parents[1])],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        blocked = CacheLock(path, poll_s=0.05)
        assert blocked.acquire(lambda: len(polls) >= 4 or polls.append(1)) is False  # held: gives up once ready
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        taker = CacheLock(path, poll_s=0.05)
        assert taker.acquire(lambda: False) is True
        taker.release()
    finally:
        proc.kill()
        proc.wait()


# ---------------------------------------------------------------- GPU plans (pure) and their CPU-testable parts
GIB = 1 << 30


def test_choose_plan_uses_the_gpu_it_is_given():
    from rosetta_cli.mining.index import choose_plan

    # the paper's size: 562k queries over 1.25M candidates of 1,664 dims (4.2 GB in fp16) on one 80 GB card
    p = choose_plan(562_000, 1_250_000, 1664, "cuda", 1, 80 * GIB, True)
    assert (p.kind, p.device, p.storage, p.gpus, p.calibrate) == ("flat", "cuda", "fp16", 1, False)
    assert p.block_rows * 1664 * 2 <= 8 * GIB                       # a block holds at most 8 GiB
    assert -(-1_250_000 // p.block_rows) == 1
    assert choose_plan(562_000, 1_250_000, 1664, "auto", 1, 80 * GIB, True).device == "cuda"  # auto takes it
    # 4 GPUs: the candidates are spread over all of them, every block still <= 8 GiB
    p4 = choose_plan(562_000, 1_250_000, 1664, "cuda", 4, 80 * GIB, True)
    assert p4.gpus == 4 and p4.block_rows == 312_500
    # 3M candidates of 1,664 dims on one 12 GiB card: 9.3 GiB in fp16 > 0.6 x 12 GiB: IVF on the GPU
    big = choose_plan(100_000, 3_000_000, 1664, "auto", 1, 12 * GIB, True)
    assert (big.kind, big.device, big.gpus) == ("ivf", "cuda", 1)
    assert "k-means on the GPU" in big.reason
    # on 2 x 80 GB: flat, two blocks of 1.5M rows (4.6 GiB each), one per GPU
    two = choose_plan(100_000, 3_000_000, 1664, "auto", 2, 80 * GIB, True)
    assert (two.kind, two.gpus, two.block_rows) == ("flat", 2, 1_500_000)
    # with small GPU blocks: 3M x 1664 x 2 B = 9.3 GiB on one 80 GB card -> two blocks of <= 8 GiB
    one = choose_plan(100_000, 3_000_000, 1664, "cuda", 1, 80 * GIB, True)
    assert one.block_rows == (8 * GIB) // (1664 * 2) and -(-3_000_000 // one.block_rows) == 2
    ivf = choose_plan(100_000, 3_000_000, 256, "cuda", 2, 80 * GIB, True, index="ivf")
    assert (ivf.kind, ivf.device, ivf.gpus, ivf.nlist) == ("ivf", "cuda", 2, round(4 * 3_000_000 ** 0.5))


def test_choose_plan_refuses_what_it_cannot_do():
    from rosetta_cli.mining.index import choose_plan

    with pytest.raises(UsageError, match="faiss-cpu") as e:
        choose_plan(10, 100, 8, "cuda", 0, 0, False)
    assert "install.sh --cuda" in e.value.hint
    with pytest.raises(UsageError, match="sees no CUDA GPU"):
        choose_plan(10, 100, 8, "cuda", 0, 0, True)
    with pytest.raises(UsageError, match="no GPU HNSW"):
        choose_plan(10, 100, 8, "cuda", 1, 80 * GIB, True, index="hnsw")
    with pytest.raises(UsageError, match="exceed"):
        choose_plan(10, 3_000_000, 1664, "cuda", 1, 8 * GIB, True, index="flat")
    # auto without faiss-gpu, or hnsw under auto: the CPU rules, unchanged
    assert choose_plan(1000, 10_000, 1664, "auto", 0, 0, False).device == "cpu"
    assert choose_plan(1000, 10_000, 64, "auto", 1, 80 * GIB, True, index="hnsw").device == "cpu"
    cpu = choose_plan(562_000, 1_250_000, 1664, "cpu", 4, 80 * GIB, True)
    assert (cpu.kind, cpu.device, cpu.storage) == ("ivf", "cpu", "fp16")


@pytest.mark.parametrize("block", [1, 7, 64, 500])
def test_sharded_flat_is_one_exact_search(block):
    """ShardedFlat (IndexFlatIP blocks, the GPU path's block/merge logic) finds what one IndexFlatIP finds."""
    from rosetta_cli.mining.search import ShardedFlat, search_topk

    rng = np.random.default_rng(block)
    xb = rng.standard_normal((300, 16)).astype(np.float32)
    xq = rng.standard_normal((40, 16)).astype(np.float32)
    sharded = ShardedFlat(16, block)
    for a in range(0, 300, 45):                       # added in pieces that cut across blocks
        sharded.add(xb[a:a + 45])
    assert sharded.ntotal == 300 and len(sharded.blocks) == -(-300 // block)
    one = faiss.IndexFlatIP(16)
    one.add(xb)
    for k in (1, 5, 20):
        D, I = search_topk(sharded, xq, k, 300)
        Dr, Ir = one.search(xq, k)
        np.testing.assert_array_equal(I, Ir)
        np.testing.assert_allclose(D, Dr, rtol=1e-5, atol=1e-5)


def test_sharded_flat_keeps_the_tie_rule():
    from rosetta_cli.mining.search import ShardedFlat, search_topk

    rng = np.random.default_rng(1)
    xb = rng.integers(-2, 3, size=(200, 8)).astype(np.float32)
    xb[150:] = xb[:50]
    xq = rng.integers(-2, 3, size=(40, 8)).astype(np.float32)
    sharded = ShardedFlat(8, 33)
    sharded.add(xb)
    for k in (1, 3, 10):
        D, I = search_topk(sharded, xq, k, len(xb))
        ref_I, ref_D = brute_topk(xq @ xb.T, k)
        np.testing.assert_array_equal(I, ref_I)
        np.testing.assert_array_equal(D, ref_D)


def _sharded_cpu_plan(monkeypatch, block):
    """plan_for → a flat plan in blocks of `block` rows on the CPU: the cuda plan's code path, minus the GPU."""
    from rosetta_cli.mining import index as mi

    monkeypatch.setattr(mi, "plan_for", lambda cfg, n_q, n_c, dim: mi.IndexPlan("flat", reason="test", block_rows=block))


def test_mine_through_sharded_flat_equals_flat(data, monkeypatch):
    _, ref, _ = run(data, "flat.zarr", topk=4, index="flat")
    _sharded_cpu_plan(monkeypatch, 9)
    res, df, meta = run(data, "sharded.zarr", topk=4, index="flat", index_cache=data["dir"] / "cache.faiss")
    assert meta["index"]["block_rows"] == 9
    assert res.recall["check"] == "exact"
    assert not (data["dir"] / "cache.faiss").exists()    # exact GPU-style search caches nothing
    pd.testing.assert_frame_equal(df, ref)


def _count_feature_reads(monkeypatch) -> dict:
    """{store path name: [rows read, ...]} counted at Store.features (every pooled read goes through it)."""
    reads: dict = {}
    orig = Store.features

    def counted(self, rows=slice(None)):
        x = orig(self, rows)
        idx = np.arange(self.n_rows)[rows] if isinstance(rows, slice) else np.asarray(rows)
        reads.setdefault(self.path.name, []).extend(np.atleast_1d(idx).tolist())
        return x
    monkeypatch.setattr(Store, "features", counted)
    return reads


@pytest.mark.parametrize("kw", [{"index": "flat"}, {"index": "ivf", "nlist": 4, "nprobe": 2, "check_recall": 0},
                                {"index": "flat", "block": 9}])
def test_each_store_is_read_and_pooled_once(data, monkeypatch, kw):
    kw = dict(kw)
    if "block" in kw:
        _sharded_cpu_plan(monkeypatch, kw.pop("block"))
    reads = _count_feature_reads(monkeypatch)
    run(data, "once.zarr", topk=2, text_weight=0.5, **kw)
    assert sorted(reads["exo.zarr"]) == list(range(50))      # every candidate row once
    assert sorted(reads["tr.zarr"]) == list(range(30))       # every (translated) query row once
    assert "ego.zarr" not in reads                            # rst ranks T(z_ego): ego features are not needed


def test_ivf_kmeans_through_a_clustering_index_is_the_same_kmeans():
    """The GPU IVF trains with clustering_index = a GPU flat index; faiss's clustering through an explicit
    flat index (here IndexFlatIP on the CPU) gives the centroids of the default training."""
    from rosetta_cli.mining.index import IndexPlan, new_index

    rng = np.random.default_rng(5)
    x = rng.standard_normal((2000, 16)).astype(np.float32)
    a, b = new_index(IndexPlan("ivf", nlist=16), 16, 0), new_index(IndexPlan("ivf", nlist=16), 16, 0)
    ci = faiss.IndexFlatIP(16)
    b.clustering_index = ci
    a.train(x)
    b.train(x)
    ca, cb = (i.quantizer.reconstruct_n(0, 16) for i in (a, b))
    np.testing.assert_allclose(ca, cb, rtol=1e-5, atol=1e-6)


def test_device_cuda_without_faiss_gpu_is_a_one_line_error(cli, data):
    if hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0:
        pytest.skip("this machine has faiss-gpu and a GPU")
    r = cli("mine", "--ego", data["ego"], "--exo", data["exo"], "--translated", data["tr"],
            "--out", data["dir"] / "x.zarr", "--device", "cuda")
    assert r.code == 2
    lines = [l for l in r.err.strip().splitlines() if l.strip()]
    assert lines and ("faiss-cpu" in lines[0] or "no CUDA GPU" in lines[0])
    assert not (data["dir"] / "x.zarr").exists()
