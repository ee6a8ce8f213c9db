"""run_bench end to end on small synthetic stores: schema, consistency, splits, determinism, models, errors."""

import json

import numpy as np
import pandas as pd
import pytest

from rosetta_cli.bench import FROZEN, BenchConfig, metric_keys, run_bench
from rosetta_cli.eval import metrics
from rosetta_cli.synthetic.bench_stores import make_stores
from rosetta_cli.errors import DimensionMismatch, StoreError, UsageError
from rosetta_cli.store import DONE, Store

DIM = 16


class FakeEncoder:
    """Implements the dual-encoder contract: mean over T, fixed random projection, L2-normalise."""

    def __init__(self, input_dim=DIM, dim=8, seed=0, name="fake"):
        self.W = np.random.default_rng(seed).normal(size=(input_dim, dim)).astype(np.float32)
        self.input_dim, self.dim, self.name, self.calls = input_dim, dim, name, []

    def encode_video(self, x):
        assert x.dtype == np.float32
        assert x.ndim == 3
        self.calls.append(len(x))
        z = x.mean(axis=1) @ self.W
        return z / np.linalg.norm(z, axis=1, keepdims=True)


class TorchFake(FakeEncoder):
    """Same contract plus `.module` (torch [n,T,D] → [n,d]) so --finetune can train it."""

    def __init__(self, **kw):
        import torch

        super().__init__(**kw)

        class Net(torch.nn.Module):
            def __init__(self, w):
                super().__init__()
                self.lin = torch.nn.Linear(w.shape[0], w.shape[1], bias=False)
                self.lin.weight.data = torch.from_numpy(w.T.copy())

            def forward(self, x):
                return self.lin(x.mean(dim=1))

        self.module = Net(self.W)


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    d = tmp_path_factory.mktemp("stores")
    return make_stores(d, n_ego=60, n_exo_train=120, n_classes=6, dim=DIM, frames=3, seed=0)


def small_cfg(**kw):
    return BenchConfig(**{"plots": False, **kw})


def test_results_schema_and_files(stores, tmp_path):
    ego, exo = stores
    fake = FakeEncoder()
    res = run_bench(ego, exo, tmp_path / "rep", BenchConfig(seed=3), encoders=[("fake", fake)])
    on_disk = json.loads((tmp_path / "rep" / "results.json").read_text())
    assert on_disk["models"] == res["models"]
    assert on_disk["seed"] == 3
    assert [m["name"] for m in res["models"]] == [FROZEN, "fake"]
    for m in res["models"]:
        assert list(m["metrics"]) == metric_keys((1, 5, 10))
        assert all(0 <= v <= 100 for v in m["metrics"].values())
    assert set(res["stores"]) == {"ego", "exo"}
    assert res["stores"]["ego"]["fingerprint"] == Store.open(ego).fingerprint
    c = res["counts"]
    assert c["retrieval"]["ego->exo"] == {"queries": 60, "no_positive": 0, "gallery": 120, "k_clipped": []}
    assert c["recognition"]["train_exo"] == 120
    assert c["recognition"]["test_ego"] == 60
    assert max(fake.calls) <= Store.open(ego).chunk_rows      # embedded block by block
    md = (tmp_path / "rep" / "results.md").read_text()
    assert "| frozen features |" in md
    assert "**" in md
    html = (tmp_path / "rep" / "index.html").read_text()
    assert 'src="metrics.png"' in html
    assert (tmp_path / "rep" / "metrics.png").stat().st_size > 1000


def test_frozen_row_equals_direct_metrics(stores, tmp_path):
    ego, exo = stores
    res = run_bench(ego, exo, tmp_path / "r", small_cfg(ks=(1, 5)))
    e, x = Store.open(ego), Store.open(exo)
    ce, cx = e.clips(), x.clips()
    test_x = (cx["split"] == "test").to_numpy()
    ge = e.pooled()
    gx = x.pooled()[test_x]
    vocab = {v: i for i, v in enumerate(sorted(set(ce["label"]) | set(cx["label"])))}
    le, lx = ce["label"].map(vocab).to_numpy(), cx["label"][test_x].map(vocab).to_numpy()
    want = metrics.hit_rate_at_k(ge, le, gx, lx, [1, 5])["hr"]
    got = res["models"][0]["metrics"]
    assert got["hr@1/ego->exo"] == pytest.approx(want[1], abs=1e-4)
    assert got["hr@5/ego->exo"] == pytest.approx(want[5], abs=1e-4)
    # synthetic data has a recoverable label signal: far above chance (1/6 classes)
    assert got["recognition/top1"] > 100 / 6 + 10
    assert got["skill/accuracy"] > 60


def test_same_seed_same_results(stores, tmp_path):
    ego, exo = stores
    a = run_bench(ego, exo, tmp_path / "a", small_cfg(seed=5), encoders=[("fake", FakeEncoder())])
    b = run_bench(ego, exo, tmp_path / "b", small_cfg(seed=5), encoders=[("fake", FakeEncoder())])
    assert a["models"] == b["models"]
    assert a["counts"] == b["counts"]


def test_model_loader_is_injectable(stores, tmp_path):
    ego, exo = stores
    seen = []
    res = run_bench(ego, exo, tmp_path / "r", small_cfg(tasks=("retrieval",)),
                    models=[(None, "some/dir"), ("named", "other/dir")],
                    loader=lambda p: seen.append(p) or FakeEncoder(name=f"enc-{p}"))
    assert seen == ["some/dir", "other/dir"]
    assert [m["name"] for m in res["models"]] == [FROZEN, "enc-some/dir", "named"]
    assert res["models"][1]["metrics"]["recognition/top1"] is None    # task not requested


def test_finetune_row(stores, tmp_path):
    import torch

    torch.set_num_threads(1)
    ego, exo = stores
    enc = TorchFake()
    w0 = enc.module.lin.weight.detach().clone()
    res = run_bench(ego, exo, tmp_path / "r", small_cfg(finetune=True, finetune_epochs=3),
                    encoders=[("tf", enc), ("plain", FakeEncoder())])
    names = [m["name"] for m in res["models"]]
    assert names == [FROZEN, "tf", "tf (fine-tuned)", "plain", "plain (fine-tuned)"]
    ft = res["models"][2]["metrics"]
    assert ft["hr@1/ego->exo"] is None
    assert 0 <= ft["recognition/top1"] <= 100
    assert ft["skill/accuracy"] is not None
    assert all(v is None for v in res["models"][4]["metrics"].values())
    assert any("plain" in n and "no torch" in n for n in res["notes"])
    assert torch.equal(enc.module.lin.weight, w0)                   # the caller's module is untouched
    again = run_bench(ego, exo, tmp_path / "r2", small_cfg(finetune=True, finetune_epochs=3), encoders=[("tf", TorchFake())])
    assert again["models"][2]["metrics"] == ft


def _store(path, clips: pd.DataFrame, dim=DIM, frames=2, seed=0, status=DONE):
    feats = np.random.default_rng(seed).normal(size=(len(clips), frames, dim))
    s = Store.create(path, kind="features", clips=clips, frames=frames, dim=dim, overwrite=True)
    s.write_rows(0, features=feats, status=status)
    s.finalize()
    return path


def _clips(n, view, labels=None, split="", sync=None, skill=None):
    return pd.DataFrame({"clip_id": [f"{view}{i}" for i in range(n)], "view": [view] * n,
                         "label": labels if labels is not None else [f"a{i % 3}" for i in range(n)],
                         "split": [split] * n if isinstance(split, str) else split,
                         "sync_id": sync if sync is not None else [""] * n,
                         "skill": skill if skill is not None else [""] * n})


def test_split_fallback_val_and_label_only_in_one_view(tmp_path):
    sync = [f"s{i}" for i in range(40)]
    ego = _store(tmp_path / "e.zarr", _clips(40, "ego", sync=sync, labels=[f"a{i % 4}" for i in range(40)]))
    exo = _store(tmp_path / "x.zarr", _clips(40, "exo", sync=sync))          # labels a0..a2 only
    res = run_bench(ego, exo, tmp_path / "r", small_cfg(tasks=("retrieval", "recognition")))
    c = res["counts"]
    assert c["retrieval"]["ego->exo"]["no_positive"] == 10                   # the a3 ego queries: counted as misses
    assert c["retrieval"]["ego->exo"]["queries"] == 40
    assert c["recognition"]["train_exo"] + c["recognition"]["test_ego"] == 40  # 50/50 by sync_id, disjoint groups
    assert any("50/50" in n for n in res["notes"])
    assert any("all 40 ego rows" in n for n in res["notes"])
    # val counts as test; a model's train rows never appear among the ego test rows
    ego2 = _store(tmp_path / "e2.zarr", _clips(10, "ego", split="val"))
    exo2 = _store(tmp_path / "x2.zarr", _clips(12, "exo", split=["train"] * 6 + ["test"] * 6))
    r2 = run_bench(ego2, exo2, tmp_path / "r2", small_cfg(tasks=("retrieval", "recognition")))
    assert r2["counts"]["retrieval"]["ego->exo"]["gallery"] == 6
    assert r2["counts"]["recognition"]["test_ego"] == 10
    assert r2["counts"]["retrieval"]["exo->ego"]["k_clipped"] == []
    assert r2["notes"] == []


def test_skill_proficiency_levels_default_mapping(tmp_path):
    levels = ["Novice", "Early Expert", "Intermediate Expert", "Late Expert"]
    ego = _store(tmp_path / "e.zarr", _clips(8, "ego", split="test", skill=levels * 2))
    exo = _store(tmp_path / "x.zarr", _clips(8, "exo", split="train", skill=levels * 2))
    res = run_bench(ego, exo, tmp_path / "r", small_cfg(tasks=("skill",)))
    assert res["counts"]["skill"]["train_skilled"] == 4
    assert res["counts"]["skill"]["test_skilled"] == 4
    assert any("'Intermediate Expert', 'Late Expert'" in n for n in res["notes"])
    with pytest.raises(UsageError, match="not among"):
        run_bench(ego, exo, tmp_path / "r2", small_cfg(tasks=("skill",), skill_positive=("Guru",)))


def test_bad_inputs(stores, tmp_path):
    ego, exo = stores
    with pytest.raises(UsageError, match="given as --ego, but its clips are all 'exo'") as e:
        run_bench(exo, ego, tmp_path / "r1", small_cfg())
    assert "swap --ego and --exo" in e.value.one_line()
    nolab = _store(tmp_path / "n.zarr", _clips(5, "ego", labels=[""] * 5))
    with pytest.raises(StoreError, match="no clip has a label"):
        run_bench(nolab, exo, tmp_path / "r2", small_cfg())
    wide = _store(tmp_path / "w.zarr", _clips(5, "ego"), dim=DIM + 1)
    with pytest.raises(DimensionMismatch, match="D=17"):
        run_bench(wide, exo, tmp_path / "r3", small_cfg())
    with pytest.raises(DimensionMismatch, match="input_dim=32"):
        run_bench(ego, exo, tmp_path / "r4", small_cfg(), encoders=[("big", FakeEncoder(input_dim=32))])
    with pytest.raises(UsageError, match="no skill labels"):
        run_bench(ego, _store(tmp_path / "x.zarr", _clips(5, "exo")), tmp_path / "r5",
                  small_cfg(tasks=("skill",)), tasks_explicit=True)
    run_bench(ego, exo, tmp_path / "r6", small_cfg(tasks=("retrieval",)))
    with pytest.raises(UsageError, match="already holds"):
        run_bench(ego, exo, tmp_path / "r6", small_cfg(tasks=("retrieval",)))
    run_bench(ego, exo, tmp_path / "r6", small_cfg(tasks=("retrieval",)), overwrite=True)
    with pytest.raises(UsageError, match="--tasks"):
        run_bench(ego, exo, tmp_path / "r7", small_cfg(tasks=("dance",)))


def test_cli_end_to_end(stores, tmp_path, monkeypatch, capsys):
    from rosetta_cli.bench import run as run_mod
    from rosetta_cli.cli.app import main

    ego, exo = stores
    monkeypatch.setattr(run_mod, "default_loader", lambda p: FakeEncoder(name="loaded"))
    with pytest.raises(SystemExit) as e:
        main(["bench", "--ego", str(ego), "--exo", str(exo), "--out", str(tmp_path / "r"), "--model", "m1",
              "--name", "VR", "--k", "1,5", "--tasks", "retrieval,recognition", "--no-plots", "--json"])
    assert e.value.code == 0
    out = json.loads(capsys.readouterr().out)
    assert [m["name"] for m in out["models"]] == [FROZEN, "VR"]
    assert set(out["models"][1]["metrics"]) == set(metric_keys((1, 5)))
    with pytest.raises(SystemExit) as e:
        main(["bench", "--ego", str(exo), "--exo", str(ego), "--out", str(tmp_path / "r2")])
    assert e.value.code == 2
    assert "swap --ego and --exo" in capsys.readouterr().err


def test_no_labelled_training_rows_leaves_recognition_none(tmp_path):
    ego = _store(tmp_path / "e.zarr", _clips(6, "ego", split="test"))
    exo = _store(tmp_path / "x.zarr", _clips(6, "exo", split=["train"] * 3 + ["test"] * 3,
                                              labels=["", "", "", "a0", "a1", "a2"]))
    res = run_bench(ego, exo, tmp_path / "r", small_cfg(tasks=("retrieval", "recognition")))
    m = res["models"][0]["metrics"]
    assert m["recognition/top1"] is None
    assert m["hr@1/ego->exo"] is not None
    assert res["counts"]["recognition"] == {"train_exo": 0, "test_ego": 6}


def test_real_dual_encoder_module(stores, tmp_path):
    """The contrastive stage's DualEncoder (when present) plugs in, fine-tuning included."""
    import torch

    from rosetta_cli.contrastive import api
    from rosetta_cli.contrastive.config import ModelConfig
    from rosetta_cli.contrastive.model import build_model

    torch.set_num_threads(1)
    ego, exo = stores
    enc = api.DualEncoder(build_model(ModelConfig(input_dim=DIM, frames=3, dim=8, heads=2)).eval(),
                          {"name": "vr", "weights_sha256": "ab" * 32}, tmp_path / "vr")
    res = run_bench(ego, exo, tmp_path / "r", small_cfg(finetune=True, finetune_epochs=2), encoders=[("vr", enc)])
    assert [m["name"] for m in res["models"]] == [FROZEN, "vr", "vr (fine-tuned)"]
    assert res["models"][1]["fingerprint"] == "ab" * 8
    assert res["models"][1]["path"].endswith("vr")
    assert all(res["models"][i]["metrics"]["recognition/top1"] is not None for i in (1, 2))
