"""The whole training runs of train-rst and pretrain (set-up, data feed, steps, logging, checkpoints,
evaluation), as a user runs them: steps × batch / wall time of `run()`, in samples/s.

    python benchmarks/trainer_loops.py [--repeats 3] [--steps 120]

Run it with PYTHONPATH pointing at two checkouts in turn (e.g. main, then this branch) on the same stores
to compare a change; each invocation prints the median over repeats. Stores: the small synthetic worlds of
the tests (pretrain: D=32, T=4; train-rst: D=1280, T=1, size tiny), so the loop's per-step overheads
(host syncs, checkpoint writes) weigh as they do at paper size on a fast device.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def paired_store(path: Path, moments: int = 400, dim: int = 1280, takes: int = 20) -> Path:
    from rosetta_cli.store import schema as S
    from rosetta_cli.store.core import Store

    rng = np.random.default_rng(0)
    feats = rng.normal(size=(2 * moments, 1, dim)).astype(np.float32)
    rows = [dict(clip_id=f"{v}{m}", view=v, sync_id=f"take{m % takes:02d}/{m}", video=f"v{m % takes}")
            for m in range(moments) for v in ("ego", "exo")]
    st = Store.create(path, kind="features", clips=pd.DataFrame(rows), frames=1, dim=dim, overwrite=True)
    st.write_rows(0, features=feats, status=S.DONE)
    st.finalize()
    return path


def rst_loop(store: Path, out: Path, steps: int) -> float:
    from rosetta_cli.rst import train
    from rosetta_cli.rst.config import RSTModelConfig, RSTTrainConfig

    t0 = time.perf_counter()
    train.run(RSTTrainConfig(paired=[store], out=out, model=RSTModelConfig(size="tiny"), steps=steps, batch_size=64,
                             ckpt_every=20, log_every=10, device="cpu", overwrite=True, eval_steps=2,
                             eval_max_queries=16))
    return round(steps * 64 / (time.perf_counter() - t0), 1)


def pretrain_loop(root: Path, out: Path, steps: int) -> float:
    from rosetta_cli.contrastive.config import PretrainConfig
    from rosetta_cli.contrastive.train import run

    t0 = time.perf_counter()
    run(PretrainConfig(out=str(out), paired=str(root / "paired.zarr"), ego=str(root / "ego.zarr"),
                       exo=str(root / "exo.zarr"), pairs=str(root / "pairs.zarr"),
                       translated=str(root / "translated.zarr"), steps=steps, eval_every=steps // 3, batch_size=64,
                       log_every=10, threads=1, device="cpu", overwrite=True, init="orthogonal"))
    return round(steps * 64 / (time.perf_counter() - t0), 1)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=120)
    ap.add_argument("--dir", default=None, help="where the stores are made (and reused)")
    a = ap.parse_args(argv)
    import torch

    from rosetta_cli.synthetic.pretrain_world import World, make_paired, make_unpaired

    torch.set_num_threads(1)
    d = Path(a.dir or tempfile.mkdtemp())
    if not (d / "rst_paired.zarr").exists():
        paired_store(d / "rst_paired.zarr")
        w = World(dim=32, frames=4, classes=32, seed=0)
        make_unpaired(w, d, 400, 400, seed=10, pair_noise=0.2, chunk_rows=128)
        make_paired(w, d / "paired.zarr", takes=30, per_take=10, seed=20, chunk_rows=128)
    import rosetta_cli

    tag = Path(rosetta_cli.__file__).parent.parent.name  # outputs per checkout: their layouts may differ
    rst = [rst_loop(d / "rst_paired.zarr", d / f"rst_out_{tag}", a.steps) for _ in range(a.repeats)]
    pre = [pretrain_loop(d, d / f"model_out_{tag}", a.steps) for _ in range(a.repeats)]

    print(f"code: {Path(rosetta_cli.__file__).parent.parent}", file=sys.stderr)
    print(json.dumps({"train-rst samples/s": statistics.median(rst), "pretrain samples/s": statistics.median(pre),
                      "rst runs": rst, "pretrain runs": pre}))


if __name__ == "__main__":
    main()
