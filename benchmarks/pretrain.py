"""Pretraining throughput: streaming batches from stores vs the same loop on in-memory arrays.

    python benchmarks/pretrain.py [--quick] [--dir /tmp/pretrain-bench] [--threads 1] [--steps N] [--repeats R] [--clips N]
    python benchmarks/pretrain.py --stores /tmp/ps1 --steps 64 --repeats 5   # paper-scale stores

Builds a synthetic world (paired + unpaired ego/exo + pairs + translations stores, D=1280,
T=4, fp16, zarr), then times `Trainer.train_step` for whole epochs with the batch rows read
(a) through the chunk-cached store readers (what `rosetta pretrain` does) and (b) from
arrays loaded in memory beforehand. Each repeat builds a fresh Trainer, so the store runs
include cold chunk reads. Prints a markdown table of medians and the overhead.

With --stores DIR (the stores `benchmarks/paper_scale.py --keep` leaves: 850k paired, 562k ego,
1.25M exo rows) no whole store fits in memory, so the baseline is the same loop fed from the
rows of its steps gathered into memory beforehand (untimed). One Trainer is built; each repeat
takes a fresh range of steps, restores the same model/optimizer state, and times that range
once fed from memory and once streamed from the stores with a cold page cache (the stores' files
are evicted with posix_fadvise first), the order alternating per repeat.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def build(root: Path, n: int, dim: int) -> None:
    from rosetta_cli.synthetic.pretrain_world import World, make_paired, make_unpaired

    w = World(dim=dim, frames=4, text_dim=384, classes=20, seed=0)
    root.mkdir(parents=True, exist_ok=True)
    make_paired(w, root / "paired.zarr", takes=n // 20, per_take=10, seed=1, chunk_rows=1024)
    make_unpaired(w, root, n, n, seed=2, pair_noise=0.3, chunk_rows=1024)


def time_epoch(root: Path, in_memory: bool, epochs: int, batch: int, cache_chunks: int = 64,
               steps: int | None = None) -> float:
    """samples/s over `epochs` epochs of train steps, or over the first `steps` steps (setup excluded)."""
    from rosetta_cli.contrastive.config import PretrainConfig
    from rosetta_cli.contrastive.train import Trainer

    cfg = PretrainConfig(out=str(root / "model"), paired=str(root / "paired.zarr"), ego=str(root / "ego.zarr"),
                         exo=str(root / "exo.zarr"), pairs=str(root / "pairs.zarr"),
                         translated=str(root / "translated.zarr"), epochs=epochs, batch_size=batch, init="orthogonal",
                         cache_chunks=cache_chunks, overwrite=True)
    tr = Trainer(cfg, in_memory=in_memory)
    steps = steps or epochs * tr.plan.steps_per_epoch
    try:
        t0 = time.perf_counter()
        for _ in range(steps):
            tr.train_step()
        return steps * batch / (time.perf_counter() - t0)
    finally:
        tr.close()


def evict(paths: list[Path]) -> None:
    """Drop the files under `paths` from the OS page cache, so the next reads come from disk."""
    import os

    for root in paths:
        for f in (x for x in Path(root).rglob("*") if x.is_file()):
            fd = os.open(f, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


class Fixed:
    """A feed of steps [start, start + len(items)) already in memory (the baseline's reads cost nothing)."""

    def __init__(self, start: int, items: list):
        self.start, self.items = start, items

    def get(self, step: int) -> list:
        return self.items[step - self.start]

    def close(self) -> None:
        self.items = []


def paper_stores(d: Path, steps: int, repeats: int, batch: int = 128) -> dict:
    """{mode: [samples/s per repeat]} for the loop fed from memory vs streamed from the stores in `d`."""
    import copy

    from rosetta_cli.contrastive.config import PretrainConfig
    from rosetta_cli.contrastive.batches import make_feed, step_reads
    from rosetta_cli.contrastive.train import Trainer
    from rosetta_cli.store.stream import gather_window

    stores = {"paired": d / "paired.zarr", "ego": d / "ego.zarr", "exo": d / "exo.zarr",
              "pairs": d / "pairs.zarr", "translated": d / "ego_tr.zarr"}
    cfg = PretrainConfig(out=str(d / "bench_pretrain_model"), **{k: str(v) for k, v in stores.items()},
                         steps=steps * repeats, batch_size=batch, init="orthogonal", overwrite=True)
    t0 = time.perf_counter()
    tr = Trainer(cfg)
    print(f"trainer built in {time.perf_counter() - t0:.0f} s; {tr.plan.steps_per_epoch} steps/epoch", flush=True)
    tr.feed.close()
    state = copy.deepcopy((tr.model.state_dict(), tr.opt.state_dict(), tr.sched.state_dict()))
    res = {"memory": [], "store (cold page cache)": []}
    try:
        for r in range(repeats):
            start = r * steps
            for mode in (list(res) if r % 2 == 0 else list(res)[::-1]):
                tr.model.load_state_dict(state[0])
                tr.opt.load_state_dict(state[1])
                tr.sched.load_state_dict(state[2])
                tr.step = start
                if mode == "memory":
                    tr.feed = Fixed(start, gather_window(
                        [step_reads(tr.plan, tr.readers, s, 0, 1) for s in range(start, start + steps)], tr.readers))
                else:
                    evict(list(stores.values()))
                    tr.feed = make_feed(tr.plan, tr.readers, 0, 1, stop=start + steps)
                t0 = time.perf_counter()
                for _ in range(steps):
                    tr.train_step()
                res[mode].append(steps * batch / (time.perf_counter() - t0))
                tr.feed.close()
                print(f"repeat {r} {mode}: {res[mode][-1]:.0f} samples/s", flush=True)
    finally:
        tr.feed.close()
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller world, fewer repeats")
    ap.add_argument("--dir", default="/tmp/rosetta-pretrain-bench")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--steps", type=int, default=None, help="time this many steps per repeat instead of an epoch")
    ap.add_argument("--clips", type=int, default=None,
                    help="ego and exo clips each (default 8192; 65536 gives an exo store of 64 chunks, so the "
                         "cache-2 row reads sparse rows from many chunks, as at the paper's 1,221)")
    ap.add_argument("--stores", default=None,
                    help="a paper_scale.py --keep folder: time the loop on those stores vs the same rows in memory")
    a = ap.parse_args()
    import os

    import torch

    torch.set_num_threads(a.threads)
    if a.stores:
        steps, repeats = a.steps or 64, a.repeats or 5
        res = paper_stores(Path(a.stores), steps, repeats)
        med = {k: statistics.median(v) for k, v in res.items()}
        mem, store = res.values()
        paired = statistics.median(s / m for s, m in zip(store, mem))
        print(f"\npretrain throughput on {a.stores}, batch 128, {a.threads} thread(s), {repeats} repeats of "
              f"{steps} steps, load average at the end {os.getloadavg()[0]:.2f}\n")
        print("| data source | samples/s (median) | runs | median / memory median |\n|---|---|---|---|")
        for k, v in res.items():
            print(f"| {k} | {med[k]:.0f} | {', '.join(f'{x:.0f}' for x in v)} | {med[k] / med['memory']:.3f} |")
        print(f"\nmedian of same-repeat ratios store / memory: {paired:.3f} (target >= 0.9)")
        return
    n, repeats, epochs = (2048, 3, 1) if a.quick else (8192, 5, 1)
    n = a.clips or n
    repeats = a.repeats or repeats
    root = Path(a.dir) / f"n{n}"
    if not (root / "translated.zarr").exists():
        build(root, n, 1280)
    # "store, small cache": fewer cached chunks than the exo store has, so the random
    # candidate rows of pseudo-pairs force re-reads (what paper-scale stores would see)
    modes = {"memory": (True, 64), "store": (False, 64), "store, cache 2 chunks": (False, 2)}
    res = {k: [] for k in modes}
    names = list(modes)
    for r in range(repeats):  # interleaved, the order rotated each repeat, so load drifts hit all alike
        for mode in names[r % len(names):] + names[:r % len(names)]:
            mem, cache = modes[mode]
            res[mode].append(time_epoch(root, mem, epochs, 128, cache, a.steps))
    med = {k: statistics.median(v) for k, v in res.items()}
    # the same-repeat ratio: each run against the in-memory run next to it (robust to slow drifts)
    paired = {k: statistics.median(x / m for x, m in zip(res[k], res["memory"])) for k in modes}
    print(f"pretrain throughput: {n} ego + {n} exo + {n // 2} paired clips, D=1280, T=4 fp16 zarr, batch 128, "
          f"{a.threads} thread(s), {repeats} repeats of {f'{a.steps} steps' if a.steps else f'{epochs} epoch(s)'}\n")
    print("| data source | samples/s (median) | runs | median / memory median | median of same-repeat ratios |")
    print("|---|---|---|---|---|")
    for k in modes:
        print(f"| {k} | {med[k]:.0f} | {', '.join(f'{x:.0f}' for x in res[k])} | {med[k] / med['memory']:.3f} "
              f"| {paired[k]:.3f} |")
    print(f"\nstreaming overhead (default cache): {100 * (1 - med['store'] / med['memory']):.1f}% (target <= 10%)")


if __name__ == "__main__":
    main()
