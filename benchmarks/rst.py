"""RST benchmark: training throughput streamed from a Zarr store vs in-memory tensors, translation speed,
the demo-default training time, and whether classifier-free guidance / multi-sample averaging help.

    python benchmarks/rst.py [--quick] [--threads 2] [--device cpu]

Data: a synthetic paired store shaped like the demo's toy features (D=1280 fp16, T=4 frames, one ego and
one exo row per moment; both are noisy ReLU projections of a 16-d moment latent, exo through tanh). Prints markdown tables with
medians over repeats; the in-memory run is the baseline measured in the same process.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def make_store(path: Path, moments: int, dim: int = 1280, frames: int = 4, takes: int = 20, seed: int = 0) -> Path:
    from rosetta_cli.store import schema
    from rosetta_cli.store.core import Store

    rng = np.random.default_rng(seed)
    # moments live on a 16-d latent manifold (like real clip features, low intrinsic dimension); ego and
    # exo see it through different projections, exo through a nonlinearity: raw ego is a poor exo query
    p_ego, p_exo = rng.normal(size=(2, 16, dim)) / 2
    u = rng.normal(size=(moments, 16))
    ego = np.maximum(u[:, None] @ p_ego + 0.5 * rng.normal(size=(moments, frames, dim)), 0)       # [m, T, D]
    exo = np.maximum(np.tanh(2 * u)[:, None] @ p_exo + 0.5 * rng.normal(size=(moments, frames, dim)), 0)
    feats = np.stack([ego, exo], 1).reshape(2 * moments, frames, dim)                         # ego, exo interleaved
    rows = [dict(clip_id=f"{v}{m}", view=v, sync_id=f"take{m % takes:02d}/{m}", video=f"v{m % takes}")
            for m in range(moments) for v in ("ego", "exo")]
    st = Store.create(path, kind="features", clips=pd.DataFrame(rows), frames=frames, dim=dim, overwrite=True)
    st.write_rows(0, features=feats, status=schema.DONE)
    st.finalize()
    st.close()
    return path


class InMemoryStream:
    """The same batches as PairStream, read from fully loaded arrays (the no-I/O baseline)."""

    def __init__(self, stream):
        self.s = stream
        self.feats = [st.features().astype(np.float32) for st in stream.stores]

    def batch(self, step):
        idx = self.s.epoch_batches(step // self.s.steps_per_epoch)[step % self.s.steps_per_epoch]
        p = self.s.pairs
        f = self.feats[0]  # one store here
        return f[p.ego[idx]], f[p.exo[idx]]


def train_throughput(store: Path, size: str, steps: int, repeats: int, batch: int, device: str) -> dict:
    """samples/s of the real training step (rosetta_cli.rst.train) fed by the Zarr stream vs in memory."""
    import torch

    from rosetta_cli.rst import train as rst_train  # `train` is the training split below
    from rosetta_cli.rst.data import PairStream, build_pairs, check_dims, norm_stats
    from rosetta_cli.rst.config import RSTModelConfig, RSTTrainConfig
    from rosetta_cli.rst.models import build_model
    from rosetta_cli.store.core import Store
    from rosetta_cli.runtime.dist import DistInfo

    st = Store.open(store)
    dims = check_dims([st])
    pairs, _ = build_pairs([st], 0.1, 0)
    train = pairs.subset(~pairs.val)
    cfg = RSTTrainConfig(steps=10**6, batch_size=batch, device=device)
    mc = RSTModelConfig(size=size, **{k: dims[k] for k in ("ego_frames", "ego_dim", "exo_frames", "exo_dim")})
    meta = {"model": mc.to_dict(), "norm": norm_stats([st], train)}
    info = DistInfo(device=device)
    sched = rst_train._noise_schedule(rst_train.Run(None, None, None, None, None, {}, meta), cfg)
    out = {"zarr stream": [], "in-memory": []}
    for r in range(repeats):
        for name in ("in-memory", "zarr stream"):
            torch.manual_seed(0)
            run = rst_train._make_run(build_model(mc), meta, cfg, info)
            stream = PairStream([st], train, batch, seed=r)  # fresh caches: cold reads included
            src = InMemoryStream(stream) if name == "in-memory" else stream
            out[name].append(_timed_steps(run, src, sched, cfg, info, steps))
    return {k: statistics.median(v) for k, v in out.items()}


def _timed_steps(run, src, sched, cfg, info, steps: int) -> float:
    import torch

    from rosetta_cli.rst import train

    def one(step):
        run.step = step
        ego, exo = src.batch(step)
        loss = train._forward(run, (torch.from_numpy(ego), torch.from_numpy(exo)), sched, cfg, info)
        train._update(run, loss, cfg)

    one(0)  # warm-up (allocator, first chunk reads are counted below on new steps)
    if info.device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for s in range(1, steps + 1):
        one(s)
    if info.device.startswith("cuda"):
        torch.cuda.synchronize()
    return steps * cfg.batch_size / (time.perf_counter() - t0)


def demo_train(store: Path, out: Path, device: str) -> tuple[float, dict]:
    """`rosetta train-rst` with its defaults (CLI: --size tiny --steps 300 --batch-size 64): wall seconds, metrics."""
    from rosetta_cli.rst import train
    from rosetta_cli.rst.config import RSTTrainConfig

    t0 = time.perf_counter()
    m = train.run(RSTTrainConfig(paired=[store], out=out, device=device, overwrite=True)).metrics
    return time.perf_counter() - t0, m


def translate_speed(rst: Path, ego: Path, tmp: Path, steps_list, repeats: int, device: str) -> dict:
    """rows/s of `rosetta translate` end to end (read, DDIM, write), per sampling-step count."""
    from rosetta_cli.rst import translate
    from rosetta_cli.rst.config import TranslateConfig

    res = {}
    for steps in steps_list:
        rates = []
        for r in range(repeats):
            cfg = TranslateConfig(rst=rst, ego=ego, out=tmp / f"t{steps}_{r}.zarr", overwrite=True, sampler="ddim",
                                  sampling_steps=steps, device=device)
            s = translate.run(cfg)
            rates.append(s.translated_now / s.seconds)
        res[steps] = statistics.median(rates)
    return res


def guidance_study(rst: Path, store: Path, device: str, settings) -> list[tuple]:
    """Held-out R@1 / cosine of T(z_ego) for (guidance, samples) settings, DDIM 25 steps."""
    from rosetta_cli.rst.ckpt import Translator
    from rosetta_cli.rst.data import build_pairs
    from rosetta_cli.eval.translation import evaluate, held_out_sets
    from rosetta_cli.rst.train import read_keys
    from rosetta_cli.store.core import Store

    st = Store.open(store)
    pairs, _ = build_pairs([st], 0.1, 0)
    ego_k, exo_k, pos, pq, pg = held_out_sets(pairs.subset(pairs.val))
    ego, exo = read_keys([st], ego_k), read_keys([st], exo_k).mean(1)
    tr = Translator(rst, device=device)
    rows = []
    for g, k in settings:
        y = tr.translate(ego, np.arange(len(ego)), steps=25, samples=k, guidance=g, seed=0).mean(1)
        m = evaluate(ego.mean(1), {"rst": y}, exo, pos, pq, pg)
        rows.append((g, k, m["rst"]["R@1"], m["rst"]["R@5"], m["rst"]["cosine"], m["raw_ego"]["R@1"]))
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller data and fewer repeats")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--sizes", default="tiny", help="comma-separated model sizes for the throughput table")
    a = ap.parse_args(argv)
    import torch

    torch.set_num_threads(a.threads)
    moments, steps, reps = (300, 20, 3) if a.quick else (1000, 40, 3)
    tmp = Path(tempfile.mkdtemp(prefix="rst-bench-"))
    store = make_store(tmp / "paired.zarr", moments)
    print(f"# RST benchmark ({a.device}, torch threads {a.threads}, {moments} moments → {moments} pairs, D=1280 T=4 fp16)\n")
    print("| size | batch | zarr stream samples/s | in-memory samples/s | data overhead |\n|---|---|---|---|---|")
    for size in a.sizes.split(","):
        r = train_throughput(store, size, steps, reps, 64, a.device)
        over = 1 - r["zarr stream"] / r["in-memory"]
        print(f"| {size} | 64 | {r['zarr stream']:.0f} | {r['in-memory']:.0f} | {over:+.1%} |")
    secs, m = demo_train(store, tmp / "rst", a.device)
    print(f"\ndemo defaults (`rosetta train-rst --paired STORE --out DIR`: tiny, 300 steps, batch 64): {secs:.1f} s "
          f"wall incl. validation; held-out R@1 raw ego {m['raw_ego']['R@1']:.3f} → T(ego) {m['rst']['R@1']:.3f}, "
          f"cosine {m['raw_ego']['cosine']:.3f} → {m['rst']['cosine']:.3f} ({m['val_pairs']} held-out pairs)\n")
    ego = tmp / "paired.zarr"  # translate every row (ego and exo) of the store: 2 × moments rows
    tr = translate_speed(tmp / "rst", ego, tmp, (25, 50), 1 if a.quick else 3, a.device)
    print("| sampler | steps | rows | rows/s (end to end) |\n|---|---|---|---|")
    for s, v in tr.items():
        print(f"| DDIM | {s} | {2 * moments} | {v:.0f} |")
    print("\n| guidance | samples K | R@1 | R@5 | cosine | raw-ego R@1 |\n|---|---|---|---|---|---|")
    for row in guidance_study(tmp / "rst", store, a.device, [(1.0, 1), (1.5, 1), (3.0, 1), (1.0, 4), (1.5, 4)]):
        print("| " + " | ".join(f"{x:.3f}" if isinstance(x, float) else str(x) for x in row) + " |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
