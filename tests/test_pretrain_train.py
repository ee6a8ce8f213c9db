"""`rosetta pretrain` / `rosetta embed` on a synthetic ego-exo world with a hidden shared cause."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from rosetta_cli.eval.metrics import hit_rate_at_k
from rosetta_cli.contrastive.api import load_dual_encoder
from rosetta_cli.contrastive.config import PretrainConfig
from rosetta_cli.synthetic.pretrain_world import World, make_paired, make_unpaired
from rosetta_cli.contrastive.train import run as pretrain
from rosetta_cli.errors import CheckpointError, DimensionMismatch, StoreError, UsageError
from rosetta_cli.store import Store
from rosetta_cli.runtime.checkpoint import load_weights

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    w = World(dim=32, frames=4, classes=32, seed=0)
    stores = make_unpaired(w, root, 400, 400, seed=10, pair_noise=0.2, chunk_rows=128)
    make_paired(w, root / "paired.zarr", takes=30, per_take=10, seed=20, chunk_rows=128)
    return w, root


def cfg_for(root, out, **kw):
    base = dict(out=str(out), paired=str(root / "paired.zarr"), ego=str(root / "ego.zarr"), exo=str(root / "exo.zarr"),
                pairs=str(root / "pairs.zarr"), translated=str(root / "translated.zarr"), batch_size=64, epochs=2,
                log_every=2, threads=1)
    base.update(kw)
    return PretrainConfig(**base)


def test_pseudo_pairs_improve_heldout_cross_view_hr5(world, tmp_path):
    """Pseudo-pairs only (no paired store). Held-out: fresh moments of the same world, label-based HR@5,
    32 classes, ego→exo. Measured (4 epochs, seeds 0/1/2 of the world): frozen 11.3 / 9.7 / 14.0 %,
    trained 61.3 / 43.0 / 58.7 % → we assert a 20-point gain, well inside the smallest seen (33)."""
    w, root = world
    cfg = cfg_for(root, tmp_path / "m", paired=None, epochs=4)
    summary = pretrain(cfg)
    assert summary.items == {"paired": 0, "pseudo": 400}
    enc = load_dual_encoder(tmp_path / "m")
    rng = np.random.default_rng(99)
    c, y = w.moments(300, rng)
    qe, qx = w.view(c, "ego", rng), w.view(c, "exo", rng)
    frozen = hit_rate_at_k(qe.mean(1), y, qx.mean(1), y, (5,))["hr"][5]
    trained = hit_rate_at_k(enc.encode_video(qe), y, enc.encode_video(qx), y, (5,))["hr"][5]
    assert trained >= frozen + 20, (frozen, trained)


def test_full_run_records_metrics_monitor_and_provenance(world, tmp_path):
    _, root = world
    summary = pretrain(cfg_for(root, tmp_path / "m", epochs=2))
    recs = [json.loads(x) for x in (tmp_path / "m" / "metrics.jsonl").read_text().splitlines()]
    kinds = [r["type"] for r in recs]
    assert kinds[0] == "frozen"
    assert kinds.count("epoch") == 3  # epoch 0 (untrained) + 2
    epochs = [r for r in recs if r["type"] == "epoch"]
    # untrained head = projection of the pooled features: it starts at frozen quality
    assert epochs[0]["heldout"]["hr5"] == pytest.approx(recs[0]["heldout"]["hr5"], abs=10)
    assert set(epochs[-1]["heldout"]) >= {"hr1", "hr5", "label_hr5"}
    assert epochs[-1]["heldout"]["hr5"] > recs[0]["heldout"]["hr5"]
    steps = [r for r in recs if r["type"] == "step"]
    assert all(np.isfinite(r["loss"]) and r["l_vs"] is not None and r["l_vt"] is not None for r in steps)
    assert (tmp_path / "m" / "loss.png").read_bytes()[:4] == b"\x89PNG"
    meta = json.loads((tmp_path / "m" / "config.json").read_text())
    assert {p["role"] for p in meta["parents"]} == {"paired", "ego", "exo", "pairs", "translated"}
    assert meta["model"]["input_dim"] == 32
    assert meta["train"]["lambda1"] == 0.5
    assert summary.items["paired"] > 0
    assert summary.items["pseudo"] == 400


def test_resume_is_exact(world, tmp_path):
    _, root = world
    kw = dict(epochs=3, paired_ratio=0.25, learn_tau=True)
    pretrain(cfg_for(root, tmp_path / "full", **kw))
    pretrain(cfg_for(root, tmp_path / "part", **kw), stop_after_epochs=1)
    assert json.loads((tmp_path / "part" / "config.json").read_text())["epoch"] == 1
    pretrain(replace(cfg_for(root, tmp_path / "part", **kw), resume=True))
    a, b = load_weights(tmp_path / "full"), load_weights(tmp_path / "part")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    la = [r for r in map(json.loads, (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()) if r["type"] == "step"]
    lb = [r for r in map(json.loads, (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()) if r["type"] == "step"]
    assert [r["loss"] for r in la] == [r["loss"] for r in lb]
    with pytest.raises(CheckpointError, match="lambda1"):
        pretrain(replace(cfg_for(root, tmp_path / "part", lambda1=0.3, **kw), resume=True))


def test_bad_inputs(world, tmp_path):
    w, root = world
    with pytest.raises(UsageError, match="lambda1"):
        pretrain(cfg_for(root, tmp_path / "m", lambda1=1.5))
    with pytest.raises(UsageError, match="nothing to train on"):
        pretrain(cfg_for(root, tmp_path / "m", paired=None, pairs=None))
    with pytest.raises(UsageError, match="--pairs needs"):
        pretrain(cfg_for(root, tmp_path / "m", exo=None))
    # pairs mined from other stores
    other = make_unpaired(w, tmp_path / "other", 50, 50, seed=3, translate=False)
    with pytest.raises(StoreError, match="was mined from ego store"):
        pretrain(cfg_for(root, tmp_path / "m", ego=str(other["ego"].path), translated=None))
    # feature dims differ between views
    w2 = World(dim=24, frames=4, seed=0)
    make_paired(w2, tmp_path / "p24.zarr", takes=5, per_take=4, seed=1)
    with pytest.raises(DimensionMismatch, match="feature dims differ"):
        pretrain(cfg_for(root, tmp_path / "m", paired=str(tmp_path / "p24.zarr")))
    # empty training set: every row failed
    p = Store.open(root / "paired.zarr")
    empty = make_paired(w, tmp_path / "failed.zarr", takes=3, per_take=2, seed=1)
    empty.write_rows(0, status=np.full(empty.n_rows, 2, np.uint8))
    with pytest.raises(UsageError, match="empty training set"):
        pretrain(cfg_for(root, tmp_path / "m", paired=str(empty.path), pairs=None, translated=None))
    assert p.n_rows == 600
    # an existing model is neither overwritten nor resumed silently
    pretrain(cfg_for(root, tmp_path / "m", pairs=None, translated=None, epochs=1))
    with pytest.raises(UsageError, match="already holds a model"):
        pretrain(cfg_for(root, tmp_path / "m", pairs=None, translated=None, epochs=1))


def test_no_translated_store_drops_synthetic_loss_and_says_so(world, tmp_path):
    _, root = world
    s = pretrain(cfg_for(root, tmp_path / "m", translated=None, epochs=1))
    assert any("L_vs" in n for n in s.notes)
    steps = [json.loads(x) for x in (tmp_path / "m" / "metrics.jsonl").read_text().splitlines()]
    assert all(r.get("l_vs") is None for r in steps if r["type"] == "step")


def run_cli(argv):
    from rosetta_cli.cli.app import main

    with pytest.raises(SystemExit) as e:
        main(argv)
    return e.value.code


def test_cli_pretrain_then_embed(world, tmp_path, capsys):
    _, root = world
    m = tmp_path / "vi"
    assert run_cli(["pretrain", "--paired", str(root / "paired.zarr"), "--out", str(m), "--epochs", "1",
                    "--batch-size", "32", "--threads", "1", "--name", "VI encoder"]) == 0
    assert run_cli(["pretrain", "--paired", str(root / "paired.zarr"), "--out", str(m), "--lambda2", "-1"]) == 2
    src = Store.open(root / "ego.zarr")
    src_status = src.status()
    emb = tmp_path / "ego.emb.zarr"
    assert run_cli(["embed", "--model", str(m), "--store", str(root / "ego.zarr"), "--out", str(emb), "--text"]) == 0
    e = Store.open(emb, kind="embeddings")
    assert e.features().shape == (400, 1, 256)
    assert e.text().shape == (400, 256)
    assert e.labels == src.labels
    assert (e.status() == src_status).all()
    assert (e.column("label") == src.column("label")).all()
    enc = load_dual_encoder(m)
    assert enc.name == "VI encoder"
    np.testing.assert_allclose(e.features()[:5, 0], enc.encode_video(src.features(slice(0, 5))), atol=1e-5)
    assert {p["role"] for p in e.meta["parents"]} == {"store", "model"}
    assert run_cli(["embed", "--model", str(m), "--store", str(root / "ego.zarr"), "--out", str(emb)]) == 2  # exists


@pytest.mark.parametrize("cache_chunks", [64, 1])
def test_prefetched_batches_equal_in_memory_batches(world, tmp_path, cache_chunks):
    """The store feed (row reads, chunk cache, window prefetch thread) gives every step exactly the
    tensors the in-memory loop gives it, from step 0 and after a jump (a resume)."""
    from rosetta_cli.contrastive.train import Trainer

    _, root = world
    cfg = cfg_for(root, tmp_path / "m", overwrite=True, cache_chunks=cache_chunks, init="orthogonal")
    mem, fed = Trainer(cfg, in_memory=True), Trainer(cfg)
    try:
        assert fed.feed is not None
        assert mem.feed is None
        for step in [*range(0, 70), 7, 66, 3]:   # windows of 64, the thread's next window, jumps back
            a, b = mem.batch(step), fed.batch(step)
            assert len(a) == len(b) == 2
            for pa, pb in zip(a, b):
                for f in ("ego", "exo", "weight", "text", "syn", "key", "has_text"):
                    x, y = getattr(pa, f), getattr(pb, f)
                    assert (x is None) == (y is None), f
                    if x is not None:
                        assert torch.equal(x, y), (step, f)
    finally:
        fed.close()


def test_nan_loss_stops_and_checkpoints_the_last_good_step(world, tmp_path, monkeypatch):
    """The NaN policy of runtime.trainer, shared with train-rst: the loss is read every --log-every steps (no
    per-step host sync) and before each checkpoint (every 2 steps here): the NaN of step 4 is seen at the read
    of steps 3-4, so step 4 is not checkpointed (a checkpoint follows a finite read only) and step 2's, all
    finite, is the last good state."""
    from rosetta_cli.contrastive import objective
    from rosetta_cli.errors import PipelineFailure

    _, root = world
    real, calls = objective.compute_losses, {"n": 0}

    def flaky(*a, **k):
        calls["n"] += 1
        out = real(*a, **k)
        return {**out, "loss": out["loss"] * float("nan")} if calls["n"] == 4 else out

    monkeypatch.setattr(objective, "compute_losses", flaky)
    with pytest.raises(PipelineFailure, match=r"loss became nan within steps 3-4; .*checkpoint \(step 2\) is kept"):
        pretrain(cfg_for(root, tmp_path / "m", eval_every=2, log_every=5))
    assert json.loads((tmp_path / "m" / "config.json").read_text())["step"] == 2
    assert all(torch.isfinite(v).all() for v in load_weights(tmp_path / "m").values())
