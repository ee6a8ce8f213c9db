"""`rosetta translate`: batches that span store chunks, batch-invariant output, the reader/sampler/writer
threads (errors, kills and resume), and --precision.

The store has chunks of 32 rows and 200 rows (row 10 failed, row 70 pending in the ego store), so the
198 rows to translate cover 7 chunks; a batch of 100 spans four of them.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from rosetta_cli.errors import StoreError, UsageError
from rosetta_cli.rst import translate
from rosetta_cli.rst.ckpt import Translator
from rosetta_cli.rst.config import TranslateConfig
from rosetta_cli.store import schema as S
from rosetta_cli.store.core import Store
from tests.test_rst import make_paired, train

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TODO = 198  # done ego rows


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    import torch

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("translate")
    status = np.full(200, S.DONE, np.uint8)
    status[10], status[70] = S.FAILED, S.PENDING
    p = make_paired(root / "p.zarr", n_moments=100, takes=10, chunk_rows=32, status=status)
    train(p, root / "rst", steps=20)
    return root, p


def _run(root, ego, out, precision="auto", **kw):
    cfg = TranslateConfig(**{"rst": root / "rst", "ego": ego, "out": out, "device": "cpu", "sampling_steps": 4, **kw})
    return translate.run(cfg, precision=precision).to_dict()


@pytest.fixture
def calls(monkeypatch):
    """Every Translator.translate call's rows [b] (the real method still runs)."""
    seen = []
    real = Translator.translate

    def probe(self, ego, rows, **kw):
        seen.append(np.asarray(rows).copy())
        assert len(ego) == len(rows)
        return real(self, ego, rows, **kw)

    monkeypatch.setattr(Translator, "translate", probe)
    return seen


def test_batch_size_above_the_chunk_size_is_honoured(trained, tmp_path, calls):
    root, p = trained
    r = _run(root, p, tmp_path / "big.zarr", batch_size=100)
    assert [len(c) for c in calls] == [100, 98]       # not [32, 32, ...]: batches span chunks
    rows = np.concatenate(calls)
    want = np.flatnonzero(Store.open(p).status() == S.DONE)
    assert np.array_equal(rows, want)                 # every done row once, in row order
    assert r["translated_now"] == TODO and r["pending"] == 1 and r["failed"] == 1
    calls.clear()
    _run(root, p, tmp_path / "small.zarr", batch_size=7)
    assert max(len(c) for c in calls) == 7 and len(calls) == 29   # 198 = 28 × 7 + 2
    big = Store.open(tmp_path / "big.zarr", kind="translations")
    small = Store.open(tmp_path / "small.zarr", kind="translations")
    assert np.array_equal(big.status(), small.status())
    # the same noise per row: equal up to GEMM rounding across batch shapes (a row given another
    # row's noise differs by O(1)); a batch of one size is bit-identical run to run (next test)
    np.testing.assert_allclose(big.features(), small.features(), rtol=0, atol=2e-4)


def test_a_rows_output_does_not_depend_on_its_batch(trained):
    """Noise is seeded by (seed, row, draw): a row sampled alone, in a batch, or in a shuffled batch
    gets the same draw; fp32 on the CPU is bit-reproducible for the same batch."""
    root, p = trained
    tr = Translator(root / "rst")
    x, rows = Store.open(p).features(slice(0, 40)), np.arange(40)
    kw = dict(sampler="ddpm", steps=4, seed=5, samples=2)
    full = tr.translate(x, rows, **kw)
    assert np.array_equal(full, tr.translate(x, rows, **kw))
    perm = np.random.default_rng(0).permutation(40)
    np.testing.assert_allclose(tr.translate(x[perm], rows[perm], **kw), full[perm], rtol=0, atol=2e-4)
    alone = np.concatenate([tr.translate(x[i:i + 1], rows[i:i + 1], **kw) for i in (3, 17, 39)])
    np.testing.assert_allclose(alone, full[[3, 17, 39]], rtol=0, atol=2e-4)
    other = tr.translate(x[:1], rows[1:2], **kw)  # row 0's input with row 1's noise
    assert np.abs(other - full[:1]).max() > 1e-2


def test_killed_run_leaves_whole_chunks_and_resumes(trained, tmp_path, monkeypatch):
    """A failure in the 2nd batch: chunks finished by the 1st are written (data, then status), the
    chunk the 1st batch only started stays pending; the rerun completes to the uninterrupted output."""
    root, p = trained
    _run(root, p, tmp_path / "full.zarr", batch_size=40)
    real, n = Translator.translate, []

    def dies(self, ego, rows, **kw):
        n.append(1)
        if len(n) == 2:
            raise KeyboardInterrupt
        return real(self, ego, rows, **kw)

    monkeypatch.setattr(Translator, "translate", dies)
    with pytest.raises(KeyboardInterrupt):
        _run(root, p, tmp_path / "part.zarr", batch_size=40)
    monkeypatch.setattr(Translator, "translate", real)
    part = Store.open(tmp_path / "part.zarr", kind="translations")
    st = part.status()
    # batch 1 = rows 0..40 minus failed row 10: chunk 0 (rows 0-31) finished, chunk 1 started only
    assert (st[:32] != S.PENDING).all() and (st[32:] == S.PENDING).all()
    full = Store.open(tmp_path / "full.zarr", kind="translations").features()
    assert np.array_equal(part.features(slice(0, 32)), full[:32])    # same batch: bit-identical
    s = _run(root, p, tmp_path / "part.zarr", batch_size=40)
    assert s["translated_now"] == TODO - 31
    done = Store.open(tmp_path / "part.zarr", kind="translations")
    np.testing.assert_allclose(done.features(), full, rtol=0, atol=2e-4)
    assert done.meta.get("finalized")


def test_a_read_error_in_the_reader_thread_surfaces(trained, tmp_path):
    """A damaged ego chunk (done rows, file gone) fails the command with the store's error, no hang;
    the chunks sampled before it are kept."""
    root, p = trained
    ego = tmp_path / "ego.zarr"
    shutil.copytree(p, ego)
    (ego / "features" / "c" / "3" / "0" / "0").unlink()   # rows 96-127
    with pytest.raises(StoreError, match="chunk file missing"):
        _run(root, ego, tmp_path / "t.zarr", batch_size=20)
    st = Store.open(tmp_path / "t.zarr", kind="translations").status()
    assert (st[:64] != S.PENDING).all() and (st[96:] == S.PENDING).all()


def test_precision(trained, tmp_path):
    root, p = trained
    assert translate.resolve_precision("auto", "cpu") == "fp32"
    assert translate.resolve_precision("auto", "cuda:0") == "bf16"
    with pytest.raises(UsageError, match="--precision 'fp8'"):
        translate.resolve_precision("fp8", "cpu")
    _run(root, p, tmp_path / "a.zarr", batch_size=64)
    _run(root, p, tmp_path / "b.zarr", batch_size=64, precision="fp32")
    _run(root, p, tmp_path / "h.zarr", batch_size=64, precision="bf16")   # CPU autocast
    a, b, h = (Store.open(tmp_path / f"{n}.zarr", kind="translations") for n in "abh")
    assert np.array_equal(a.features(), b.features())            # auto on the CPU is fp32, bit for bit
    assert "precision" not in a.meta["translate"] and h.meta["translate"]["precision"] == "bf16"
    done = a.status() == S.DONE
    fa, fh = a.features()[done].ravel(), h.features()[done].ravel()
    # bf16 rounding: not equal, but close (a few rows near the sampler's x0 clamp move more; 4 steps)
    assert np.abs(fh - fa).max() > 0 and np.median(np.abs(fh - fa)) < 0.01 and np.corrcoef(fa, fh)[0, 1] > 0.99
    with pytest.raises(UsageError, match="differs: precision"):    # no fp32 rows added to a bf16 store
        _run(root, p, tmp_path / "h.zarr", batch_size=64, precision="fp32")


def test_cli_precision_option(trained, tmp_path, capsys):
    from rosetta_cli.cli.app import main

    root, p = trained

    def run(*args):
        with pytest.raises(SystemExit) as e:
            main(["translate", "--rst", str(root / "rst"), "--ego", str(p), "--device", "cpu",
                  "--sampling-steps", "2", *args])
        return e.value.code

    assert run("--out", str(tmp_path / "x.zarr"), "--precision", "fp16") == 2
    assert "--precision 'fp16'" in capsys.readouterr().err
    assert run("--out", str(tmp_path / "y.zarr"), "--precision", "bf16", "--batch-size", "1000") == 0
    assert Store.open(tmp_path / "y.zarr").meta["translate"]["precision"] == "bf16"
