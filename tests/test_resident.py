"""Features-resident training data (`resident` auto | ram | gpu | off): the same batches as streaming,
gathered from memory, and auto falls back to streaming when the stores do not fit (injected budgets).

"gpu" residency is a torch tensor on the device; here the same code runs with a CPU tensor
(store.resident.load(..., device="cpu")), which is what a CUDA device changes nothing of but the place.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rosetta_cli.contrastive import batches as B
from rosetta_cli.contrastive import data as D
from rosetta_cli.contrastive.config import PretrainConfig
from rosetta_cli.errors import UsageError
from rosetta_cli.rst.data import PairStream, build_pairs, resident_mode
from rosetta_cli.store import resident as res
from rosetta_cli.store.core import Store
from rosetta_cli.synthetic.pretrain_world import World, make_paired, make_unpaired

BIG = {"ram": 2**40, "gpu": 2**40}
NONE = {"ram": 0, "gpu": 0}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("resident")
    w = World(dim=16, frames=4, classes=8, seed=0)
    make_unpaired(w, root, 150, 120, seed=1, chunk_rows=32)
    make_paired(w, root / "paired.zarr", takes=10, per_take=8, seed=2, chunk_rows=32)
    return root


def _no_reads(monkeypatch):
    """After loading, a resident source must not read its stores again."""
    def boom(self, *a, **k):
        raise AssertionError("a resident source read its store")
    monkeypatch.setattr(Store, "features", boom)
    monkeypatch.setattr(Store, "text", boom)


# ------------------------------------------------------------------------------------------------ rst
def test_rst_pair_stream_resident_equals_streaming(world, monkeypatch):
    stores = [Store.open(world / "ego.zarr"), Store.open(world / "paired.zarr")]  # pairs in store 1: rows offset
    pairs, _ = build_pairs(stores, 0.2, 0)
    assert set(pairs.store) == {1}
    train = pairs.subset(~pairs.val)
    off = PairStream(stores, train, 16, seed=4)
    want = [off.batch(s) for s in range(12)]                     # crosses an epoch (steps_per_epoch < 12)
    assert off.steps_per_epoch < 12 and off.resident == "off"
    ram = PairStream(stores, train, 16, seed=4, resident="ram", budget=BIG)
    gpu_like = PairStream(stores, train, 16, seed=4, resident="ram", budget=BIG)
    gpu_like.memory, gpu_like.offsets = res.load(stores, "features", device="cpu")  # a torch tensor
    _no_reads(monkeypatch)
    for s, (e, x) in enumerate(want):
        ge, gx = ram.batch(s)
        assert ge.dtype == e.dtype and np.array_equal(ge, e) and np.array_equal(gx, x)   # bit-identical
        te, tx = gpu_like.batch(s)
        assert isinstance(te, torch.Tensor) and np.array_equal(te.numpy(), e) and np.array_equal(tx.numpy(), x)


def test_rst_auto_falls_back_to_streaming_when_it_does_not_fit(world):
    stores = [Store.open(world / "paired.zarr")]
    need = res.nbytes(stores[0])
    assert stores[0].dtype == "float16" and need == stores[0].n_rows * 4 * 16 * 2   # [N, T=4, D=16] fp16
    assert resident_mode(stores, "auto", "cpu", {"ram": 2 * need, "gpu": 0}) == "ram"
    assert resident_mode(stores, "auto", "cpu", {"ram": 2 * need - 1, "gpu": 0}) == "off"  # AUTO_SHARE = 1/2
    assert resident_mode(stores, "auto", "cuda:0", {"ram": BIG["ram"], "gpu": 2 * need}) == "gpu"
    assert resident_mode(stores, "auto", "cuda:0", {"ram": BIG["ram"], "gpu": need}) == "ram"
    assert resident_mode(stores, "auto", "cuda:0", NONE) == "off"
    assert resident_mode(stores, "off", "cuda:0", BIG) == "off"
    pairs, _ = build_pairs(stores, 0.2, 0)
    s = PairStream(stores, pairs.subset(~pairs.val), 16, seed=0, resident="auto", budget=NONE)
    assert s.resident == "off" and s.memory is None and s.caches


def test_named_modes_that_cannot_work_are_one_line_errors(world):
    stores = [Store.open(world / "paired.zarr")]
    with pytest.raises(UsageError, match="--resident ram: the paired stores' features need .* GiB") as e:
        resident_mode(stores, "ram", "cpu", NONE)
    assert "--resident auto" in e.value.hint
    with pytest.raises(UsageError, match="--resident gpu needs a CUDA device"):
        resident_mode(stores, "gpu", "cpu", BIG)
    with pytest.raises(UsageError, match="--resident 'disk'"):
        resident_mode(stores, "disk", "cpu", BIG)
    assert resident_mode(stores, "ram", "cpu", BIG) == "ram"


# ------------------------------------------------------------------------------------- contrastive
def _plan(world):
    cfg = PretrainConfig(out="x", paired=str(world / "paired.zarr"), ego=str(world / "ego.zarr"),
                         exo=str(world / "exo.zarr"), pairs=str(world / "pairs.zarr"),
                         translated=str(world / "translated.zarr"), batch_size=32, dim=16)
    src = D.open_sources(cfg)
    return src, B.build_plan(cfg, src, world=1)


def _parts_equal(a, b) -> None:
    for pa, pb in zip(a, b, strict=True):
        for f in pa.__dataclass_fields__:
            va, vb = getattr(pa, f), getattr(pb, f)
            if isinstance(va, torch.Tensor) or isinstance(vb, torch.Tensor):
                assert torch.equal(va, vb), f
            else:  # None, or host-side flags such as Part.text_any
                assert va == vb, f


def test_pretrain_resident_readers_give_the_streaming_batches(world, monkeypatch):
    src, plan = _plan(world)
    streaming, mode = D.open_readers(src, "off")
    assert mode == "off"
    feed = B.make_feed(plan, streaming, 0, 1, stop=10, window=4)                   # the prefetched path
    want = [B.assemble(plan, streaming, s, 0, 1, feed.get(s), "cpu") for s in range(10)]
    feed.close()
    resident, mode = D.open_readers(src, "auto", "cpu", budget=BIG)
    assert mode == "ram" and set(resident) == set(streaming)
    assert {"paired_feat", "paired_text", "ego_feat", "ego_text", "exo_feat", "translated_feat"} <= set(resident)
    direct = {name: streaming[name].get(np.array([5, 0, 5, src.stores()[name.rsplit("_", 1)[0]].n_rows - 1]))
              for name in resident}
    _no_reads(monkeypatch)
    for s in range(10):
        _parts_equal(B.local_batch(plan, resident, s, 0, 1, "cpu"), want[s])
    for name, r in resident.items():                                          # any order, repeats
        rows = np.array([5, 0, 5, src.stores()[name.rsplit("_", 1)[0]].n_rows - 1])
        assert np.array_equal(r.get(rows), direct[name]), name


def test_pretrain_gpu_residency_keeps_text_in_ram_and_auto_falls_back(world):
    src, _ = _plan(world)
    feats = sum(res.nbytes(s) for s in (src.paired, src.ego, src.exo, src.translated))
    text = res.nbytes(src.paired, "text") + res.nbytes(src.ego, "text")
    assert text == (src.paired.n_rows + src.ego.n_rows) * 16 * 4
    assert D.resident_mode(src, "auto", "cuda:0", {"ram": 2 * text, "gpu": 2 * feats}) == "gpu"
    assert D.resident_mode(src, "auto", "cuda:0", {"ram": 2 * (feats + text), "gpu": 2 * feats - 2}) == "ram"
    assert D.resident_mode(src, "auto", "cpu", {"ram": 2 * (feats + text) - 2, "gpu": 0}) == "off"
    readers, mode = D.open_readers(src, "auto", "cpu", budget={"ram": 0, "gpu": 0})
    assert mode == "off" and not any(isinstance(r, res.ResidentRows) for r in readers.values())
    with pytest.raises(UsageError, match="--resident ram: the training stores need"):
        D.open_readers(src, "ram", "cpu", budget=NONE)
