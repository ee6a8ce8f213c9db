"""`rosetta bench --gallery other-takes`: each query's own take is removed from its retrieval gallery.

References are brute force: per query, build its gallery explicitly, rank by cosine with a stable sort
(ties → lower gallery index, the metrics' rule), and look for a same-label item in the top k.
"""

import json

import numpy as np
import pandas as pd
import pytest

from rosetta_cli.bench import FROZEN, GALLERIES, BenchConfig, run_bench
from rosetta_cli.bench import data as bench_data
from rosetta_cli.eval import metrics
from rosetta_cli.bench.run import top_retrieved
from rosetta_cli.store import DONE, Store

DIM = 12


def ref_hr(q, ql, qt, g, gl, gt, k, exclude_own=True, unmatched="miss"):
    """Brute-force HR@k (%): loop over queries, build each query's gallery, rank, check the top k."""
    hits, counted = 0, 0
    for i in range(len(q)):
        keep = [j for j in range(len(g)) if not (exclude_own and qt[i] >= 0 and gt[j] == qt[i])]
        sims = [float(np.float32(q[i] / max(np.linalg.norm(q[i]), 1e-12)).astype(np.float32)
                      @ (g[j] / max(np.linalg.norm(g[j]), 1e-12)).astype(np.float32)) for j in keep]
        order = sorted(range(len(keep)), key=lambda a: -sims[a])  # Python's sort is stable: ties keep index order
        has_pos = ql[i] >= 0 and any(gl[j] == ql[i] for j in keep)
        if unmatched == "exclude" and not has_pos:
            continue
        counted += 1
        hits += ql[i] >= 0 and any(gl[keep[a]] == ql[i] for a in order[:k])
    return 100.0 * hits / max(counted, 1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_other_takes_hit_rate_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    nq, ng, n_takes = 45, 70, 7
    q, g = rng.normal(size=(nq, 6)).astype(np.float32), rng.normal(size=(ng, 6)).astype(np.float32)
    ql, gl = rng.integers(0, 5, nq), rng.integers(0, 5, ng)
    ql[:3] = -1                                              # unlabelled queries never hit
    qt, gt = rng.integers(-1, n_takes, nq), rng.integers(-1, n_takes, ng)  # -1: no take, never excluded
    ks = [1, 2, 5, 10, ng]
    for unmatched in ("miss", "exclude"):
        r = metrics.hit_rate_at_k(q, ql, g, gl, ks, unmatched=unmatched, query_groups=qt, gallery_groups=gt, block_rows=8)
        for k in ks:
            assert r["hr"][k] == pytest.approx(ref_hr(q, ql, qt, g, gl, gt, k, unmatched=unmatched), abs=1e-9)
    full = metrics.hit_rate_at_k(q, ql, g, gl, ks)
    for k in ks:  # no groups: the whole gallery, as before
        assert full["hr"][k] == pytest.approx(ref_hr(q, ql, qt, g, gl, gt, k, exclude_own=False), abs=1e-9)
    sizes = [sum(1 for j in range(ng) if not (qt[i] >= 0 and gt[j] == qt[i])) for i in range(nq)]
    assert r["gallery_min"] == min(sizes) < ng
    assert full["gallery_min"] == ng


def test_other_takes_with_exact_ties_matches_brute_force():
    """Lattice embeddings give exactly tied cosines: excluded items must not shift the tie order."""
    rng = np.random.default_rng(5)
    q = rng.integers(-1, 2, size=(60, 3)).astype(np.float32)
    g = rng.integers(-1, 2, size=(50, 3)).astype(np.float32)
    ql, gl = rng.integers(0, 3, 60), rng.integers(0, 3, 50)
    qt, gt = rng.integers(0, 4, 60), rng.integers(0, 4, 50)
    for k in (1, 3, 7):
        got = metrics.hit_rate_at_k(q, ql, g, gl, [k], query_groups=qt, gallery_groups=gt)["hr"][k]
        assert got == pytest.approx(ref_hr(q, ql, qt, g, gl, gt, k), abs=1e-9)


def test_only_same_label_items_in_own_take_is_a_miss_under_other_takes():
    # query 0 (take 0, label 0): its only label-0 gallery item (index 0) is in its own take and is the
    # closest; query 1 (take 1, label 1) has its label-1 item in take 0.
    q = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    g = np.array([[1.0, 0.1], [0.9, 0.5], [0.1, 1.0]], np.float32)
    ql, gl = np.array([0, 1]), np.array([0, 2, 1])
    qt, gt = np.array([0, 1]), np.array([0, 1, 0])
    default = metrics.hit_rate_at_k(q, ql, g, gl, [1, 3])
    other = metrics.hit_rate_at_k(q, ql, g, gl, [1, 3], query_groups=qt, gallery_groups=gt)
    assert default["hr"] == {1: 100.0, 3: 100.0}
    assert default["no_positive"] == 0
    assert other["hr"] == {1: 50.0, 3: 50.0}
    assert other["no_positive"] == 1  # query 0 misses, query 1 hits
    excl = metrics.hit_rate_at_k(q, ql, g, gl, [1], unmatched="exclude", query_groups=qt, gallery_groups=gt)
    assert excl["hr"] == {1: 100.0}
    assert excl["queries"] == 1
    with pytest.raises(ValueError, match="both"):
        metrics.hit_rate_at_k(q, ql, g, gl, [1], query_groups=qt)


def test_take_of_and_codes():
    assert list(bench_data.take_of(["t1/m0", "t1/m1/x", "solo", ""])) == ["t1", "t1", "solo", ""]
    ego = bench_data.View(None, "ego", np.arange(3), pd.DataFrame({"sync_id": ["b/1", "a/2", ""]}))
    exo = bench_data.View(None, "exo", np.arange(3), pd.DataFrame({"sync_id": ["a/9", "c", "b/7"]}))
    te, tx = bench_data.take_codes(ego, exo)
    assert te.tolist() == [1, 0, -1]
    assert tx.tolist() == [0, 2, 1]  # vocabulary a, b, c; '' → -1


# ---------------------------------------------------------------------------------------------- end to end
def make_take_stores(d, n_takes=6, moments=8, exo_per=2, n_train=60, n_classes=4, seed=0):
    """ego/exo stores whose test clips share sync_id 'takeK/mM'; a per-take offset makes a query's own
    take look similar (so excluding it changes HR@k). Exo train rows (no sync_id) feed the classifiers."""
    rng = np.random.default_rng(seed)
    cent = rng.normal(size=(n_classes, DIM))
    take_off = 1.5 * rng.normal(size=(n_takes, DIM))
    rows = {"ego": [], "exo": []}
    for t in range(n_takes):
        for m in range(moments):
            y, k = int(rng.integers(n_classes)), int(rng.integers(2))
            rows["ego"].append((f"take{t}/m{m}", y, k, "test", t))
            rows["exo"] += [(f"take{t}/m{m}", y, k, "test", t)] * exo_per
    rows["exo"] += [("", int(rng.integers(n_classes)), int(rng.integers(2)), "train", -1) for _ in range(n_train)]
    paths = []
    for view, rs in rows.items():
        n = len(rs)
        clips = pd.DataFrame({"clip_id": [f"{view}{i}" for i in range(n)], "video": [""] * n, "start": np.zeros(n),
                              "end": np.ones(n), "view": [view] * n, "sync_id": [r[0] for r in rs],
                              "narration": [""] * n, "label": [f"step {r[1]}" for r in rs],
                              "skill": ["good" if r[2] else "bad" for r in rs], "split": [r[3] for r in rs]})
        base = np.stack([cent[r[1]] + (take_off[r[4]] if r[4] >= 0 else 0) + 0.3 * (2 * r[2] - 1) for r in rs])
        feats = base[:, None, :] + 0.8 * rng.normal(size=(n, 2, DIM))
        s = Store.create(d / f"{view}.zarr", kind="features", clips=clips, frames=2, dim=DIM, dtype="float32",
                         chunk_rows=16, overwrite=True)
        s.write_rows(0, features=feats.astype(np.float32), status=DONE)
        s.finalize()
        s.close()
        paths.append(d / f"{view}.zarr")
    return paths


@pytest.fixture(scope="module")
def take_stores(tmp_path_factory):
    return make_take_stores(tmp_path_factory.mktemp("takes"))


def _pooled(path):
    st = Store.open(path)
    c = st.clips()
    return st.features().astype(np.float32).mean(1), c


def test_run_bench_other_takes_matches_brute_force_and_leaves_other_tasks(take_stores, tmp_path):
    ego_p, exo_p = take_stores
    ks = (1, 5, 10)
    res = {g: run_bench(ego_p, exo_p, tmp_path / g, BenchConfig(ks=ks, plots=False, gallery=g)) for g in GALLERIES}
    fe, ce = _pooled(ego_p)
    fx, cx = _pooled(exo_p)
    test_x = np.flatnonzero(cx["split"] == "test")                     # retrieval rows: split test
    vocab = {v: i for i, v in enumerate(sorted(set(ce["label"]) | set(cx["label"])))}
    le, lx = ce["label"].map(vocab).to_numpy(), cx["label"].map(vocab).to_numpy()
    take = {"ego": [s.split("/")[0] for s in ce["sync_id"]], "exo": [s.split("/")[0] for s in cx["sync_id"]]}
    codes = {t: i for i, t in enumerate(sorted(set(take["ego"])))}
    te = np.array([codes[t] for t in take["ego"]])
    tx = np.array([codes.get(t, -1) for t in take["exo"]])[test_x]
    for g, excl in (("all", False), ("other-takes", True)):
        m = res[g]["models"][0]["metrics"]
        for k in ks:
            assert m[f"hr@{k}/ego->exo"] == pytest.approx(ref_hr(fe, le, te, fx[test_x], lx[test_x], tx, k, excl), abs=1e-3)
            assert m[f"hr@{k}/exo->ego"] == pytest.approx(ref_hr(fx[test_x], lx[test_x], tx, fe, le, te, k, excl), abs=1e-3)
    a, o = res["all"]["models"][0]["metrics"], res["other-takes"]["models"][0]["metrics"]
    assert o["hr@1/ego->exo"] < a["hr@1/ego->exo"]  # the per-take offset made the own take the easy hit
    for key in ("recognition/top1", "recognition/top5", "skill/accuracy", "skill/balanced_accuracy"):
        assert a[key] is not None
        assert o[key] == a[key]  # classifiers do not use the gallery
    assert res["all"]["counts"]["recognition"] == res["other-takes"]["counts"]["recognition"]
    assert res["all"]["counts"]["skill"] == res["other-takes"]["counts"]["skill"]
    # the protocol is recorded: top level, config, counts, results.md, index.html
    for g in GALLERIES:
        on_disk = json.loads((tmp_path / g / "results.json").read_text())
        assert on_disk["gallery"] == g
        assert on_disk["config"]["gallery"] == g
        assert on_disk["counts"]["retrieval"]["protocol"] == g
        assert f"`--gallery {g}`" in (tmp_path / g / "results.md").read_text()
        assert f"--gallery {g}" in (tmp_path / g / "index.html").read_text()
    c = res["other-takes"]["counts"]["retrieval"]["ego->exo"]
    assert c["gallery"] == len(test_x)
    assert c["gallery_min"] == len(test_x) - 8 * 2  # own take: 8 moments × 2 exo


def test_gallery_plot_skips_the_own_take(take_stores):
    ego_p, exo_p = take_stores
    ego, exo = bench_data.open_view(ego_p, "ego", "--ego"), bench_data.open_view(exo_p, "exo", "--exo")
    bench_data.assign_labels(ego, exo, need_labels=True)
    from rosetta_cli.bench.splits import make_plan
    plan = make_plan(ego, exo, 0)
    e_ego, e_exo = bench_data.embed(ego), bench_data.embed(exo)
    te, tx = bench_data.take_codes(ego, exo)
    for g in GALLERIES:
        top = top_retrieved(e_ego, e_exo, plan, ego, BenchConfig(gallery=g, gallery_queries=12), n_top=3, exo=exo)
        own = [sum(tx[j] == te[q] for j in js) for q, js in top.items()]
        assert len(top) == 12
        assert all(len(js) == 3 for js in top.values())
        assert (sum(own) == 0) if g == "other-takes" else (sum(own) > 0)


def test_cli_gallery_option(take_stores, tmp_path, cli):
    ego_p, exo_p = take_stores
    r = cli("bench", "--ego", ego_p, "--exo", exo_p, "--out", tmp_path / "r", "--gallery", "other-takes",
            "--tasks", "retrieval", "--no-plots")
    assert r.code == 0, r
    assert json.loads((tmp_path / "r/results.json").read_text())["gallery"] == "other-takes"
    assert "protocol `--gallery other-takes`" in " ".join((r.err + r.out).split())  # the console wraps lines
    bad = cli("bench", "--ego", ego_p, "--exo", exo_p, "--out", tmp_path / "b", "--gallery", "nope")
    assert bad.code == 2
    assert "other-takes" in bad.err + bad.out
    assert FROZEN == "frozen features"
