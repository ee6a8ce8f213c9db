"""Neither trainer reads the device between two log points: a probe counts the tensor → host reads
(`.item()`, `float()`, `int()`, `bool()`, `.cpu()`, `.tolist()`, `.numpy()`) made by rosetta (and diffusers'
EMA) code on the training thread, step by step, and finds them only at --log-every steps and checkpoints."""

import sys
import threading

import pytest
import torch

from rosetta_cli.contrastive import train as pretrain_train
from rosetta_cli.contrastive.config import PretrainConfig
from rosetta_cli.rst import train as rst_train
from rosetta_cli.rst.config import RSTModelConfig, RSTTrainConfig
from rosetta_cli.synthetic.pretrain_world import World, make_paired as make_world_paired, make_unpaired

from test_rst import make_paired

READS = ("item", "tolist", "numpy", "cpu", "__float__", "__int__", "__bool__", "__array__")


class SyncProbe:
    """Patches torch.Tensor's host reads; `mark()` ends a step. → per step, the reads made after it ended
    and before the next one did (its log point, checkpoint, the next batch)."""

    def __init__(self, monkeypatch):
        self.segments = [[]]            # segments[k]: reads after step k ended (k = 0: set-up)
        main = threading.main_thread()
        for name in READS:
            real = getattr(torch.Tensor, name)
            monkeypatch.setattr(torch.Tensor, name, self._wrap(name, real, main))

    def _wrap(self, name, real, main):
        def probe(t, *a, **k):
            caller = sys._getframe(1).f_code.co_filename
            if threading.current_thread() is main and any(m in caller for m in ("rosetta_cli", "diffusers", "test_trainer_syncs")):
                self.segments[-1].append(f"{name} in {caller.rsplit('/', 2)[-2:]}")
            return real(t, *a, **k)
        return probe

    def mark(self) -> None:
        self.segments.append([])

    def steps_with_reads(self, last: int) -> set:
        """The steps k (1..last-1) after which some read happened (the last step's tail is the run's end)."""
        return {k for k, seg in enumerate(self.segments) if 1 <= k < last and seg}


def test_train_rst_reads_the_device_only_at_log_points_and_checkpoints(tmp_path, monkeypatch):
    p = make_paired(tmp_path / "p.zarr", n_moments=80, takes=8)
    probe = SyncProbe(monkeypatch)
    real = rst_train._update

    def update(*a, **k):
        real(*a, **k)
        probe.mark()

    monkeypatch.setattr(rst_train, "_update", update)
    cfg = RSTTrainConfig(paired=[p], out=tmp_path / "rst", model=RSTModelConfig(size="tiny"), steps=14, batch_size=16,
                         log_every=4, ckpt_every=6, device="cpu", val_frac=0.2, eval_steps=2, eval_max_queries=16)
    rst_train.run(cfg)
    assert len(probe.segments) == 15
    # reads at the log points (4, 8, 12) and the checkpoints (6, 12), and nowhere else
    assert probe.steps_with_reads(14) == {4, 6, 8, 12}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    w = World(dim=16, frames=2, classes=16, seed=0)
    make_unpaired(w, root, 200, 200, seed=10, pair_noise=0.2, chunk_rows=64)
    make_world_paired(w, root / "paired.zarr", takes=20, per_take=8, seed=20, chunk_rows=64)
    return root


def test_pretrain_reads_the_device_only_at_log_points_and_checkpoints(world, tmp_path, monkeypatch):
    probe = SyncProbe(monkeypatch)
    real = pretrain_train.Trainer.train_step

    def step(self):
        out = real(self)
        probe.mark()
        return out

    monkeypatch.setattr(pretrain_train.Trainer, "train_step", step)
    cfg = PretrainConfig(out=str(tmp_path / "m"), paired=str(world / "paired.zarr"), ego=str(world / "ego.zarr"),
                         exo=str(world / "exo.zarr"), pairs=str(world / "pairs.zarr"),
                         translated=str(world / "translated.zarr"), batch_size=32, steps=14, eval_every=6,
                         log_every=4, threads=1, device="cpu", dim=32)
    pretrain_train.run(cfg)
    assert len(probe.segments) == 15
    # log points 4, 8, 12; evaluation + checkpoint points 6, 12 (each reads the segment's loss)
    assert probe.steps_with_reads(14) == {4, 6, 8, 12}
    # the probe sees reads where they are made: the window's one host copy at each log point
    assert any("tolist" in r for r in probe.segments[4])


def test_probe_counts_a_per_step_read(tmp_path, monkeypatch):
    """The probe is not blind: a float() per step in the loop (what the loops did before) is seen every step."""
    p = make_paired(tmp_path / "p.zarr", n_moments=60, takes=6)
    probe = SyncProbe(monkeypatch)
    real = rst_train._update

    def update(run, loss, cfg):
        real(run, loss, cfg)
        float(loss.detach())
        probe.mark()

    monkeypatch.setattr(rst_train, "_update", update)
    cfg = RSTTrainConfig(paired=[p], out=tmp_path / "rst", model=RSTModelConfig(size="tiny"), steps=5, batch_size=16,
                         log_every=100, ckpt_every=100, device="cpu", val_frac=0.2, eval_steps=2,
                         eval_max_queries=16)
    rst_train.run(cfg)
    # the float() falls before the mark, in the step's own segment: every step 1..4 has a read before it
    assert all(probe.segments[k - 1] for k in range(2, 5))
