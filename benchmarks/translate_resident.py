"""Issue 32 on the CPU: translate batches that span chunks vs the old per-chunk loop, and resident vs
streaming training batches, each pair measured in the same run.

    python benchmarks/translate_resident.py [--rows 8192] [--repeats 3] [--threads 1] [--baseline-rev 4e3538a]

1. translate, end to end (read, DDIM-25, write) on an ego store shaped like LaViLa's features
   ([N, 1, 256] fp16, chunk 256 rows): `translate.run` with --batch-size 1024 (batches span four
   chunks; reader/writer threads) vs the translate module of `--baseline-rev` (git show; blocks are
   store chunks, so --batch-size 1024 samples 256 rows at a time, read, sample and write in series).
   Both runs use the same RST (size tiny, random weights after a few steps: speed only).
2. training data paths, batches/s of the data alone (no model):
   - train-rst: `PairStream.batch(step)` streaming (ChunkCache, fresh per repeat) vs resident="ram";
   - pretrain: the trainer's prefetched streaming feed (`batches.make_feed` + `assemble`) vs resident
     readers (`data.open_readers(resident="ram")` + `batches.local_batch`), the same batches.
Repeats interleave the two variants; the tables print medians and their ratio.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def make_ego(path: Path, rows: int, dim: int = 256, seed: int = 0) -> Path:
    from rosetta_cli.store import schema as S
    from rosetta_cli.store.core import Store

    rng = np.random.default_rng(seed)
    clips = pd.DataFrame({"clip_id": [f"e{i}" for i in range(rows)], "view": "ego", "video": "v"})
    st = Store.create(path, kind="features", clips=clips, frames=1, dim=dim, chunk_rows=256, overwrite=True)
    st.write_rows(0, features=rng.normal(size=(rows, 1, dim)).astype(np.float16), status=S.DONE)
    st.finalize()
    st.close()
    return path


def make_rst(tmp: Path, dim: int = 256) -> Path:
    """A tiny RST for [*, 1, dim] features (a few steps: the weights do not matter for speed)."""
    from rosetta_cli.rst import train
    from rosetta_cli.rst.config import RSTTrainConfig
    from rosetta_cli.store import schema as S
    from rosetta_cli.store.core import Store

    rng = np.random.default_rng(1)
    n = 400
    rows = [dict(clip_id=f"{v}{m}", view=v, sync_id=f"take{m % 20:02d}/{m}", video=f"v{m % 20}")
            for m in range(n) for v in ("ego", "exo")]
    st = Store.create(tmp / "paired.zarr", kind="features", clips=pd.DataFrame(rows), frames=1, dim=dim, overwrite=True)
    st.write_rows(0, features=rng.normal(size=(2 * n, 1, dim)).astype(np.float16), status=S.DONE)
    st.finalize()
    st.close()
    train.run(RSTTrainConfig(paired=[tmp / "paired.zarr"], out=tmp / "rst", steps=5, device="cpu", overwrite=True))
    return tmp / "rst"


def old_translate(rev: str):
    """rosetta_cli/rst/translate.py as of `rev` (the per-chunk loop), imported beside the current one."""
    src = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:rosetta_cli/rst/translate.py"], check=True,
                         capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "translate_old.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("translate_old", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["translate_old"] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def translate_rates(rst: Path, ego: Path, tmp: Path, rev: str, repeats: int, batch: int) -> dict:
    from rosetta_cli.rst import translate
    from rosetta_cli.rst.config import TranslateConfig

    mods = {f"per chunk ({rev})": old_translate(rev), "across chunks (this tree)": translate}
    rates = {k: [] for k in mods}
    for r in range(repeats):
        for name, mod in mods.items():
            cfg = TranslateConfig(rst=rst, ego=ego, out=tmp / f"t{r}_{len(rates[name])}_{hash(name) & 0xff}.zarr",
                                  overwrite=True, device="cpu", batch_size=batch)
            s = mod.run(cfg)
            rates[name].append(s.translated_now / s.seconds)
    return rates


def rst_stream_rates(tmp: Path, moments: int, steps: int, repeats: int, batch: int) -> dict:
    from rosetta_cli.rst.data import PairStream, build_pairs
    from rosetta_cli.store import schema as S
    from rosetta_cli.store.core import Store

    rng = np.random.default_rng(2)
    rows = [dict(clip_id=f"{v}{m}", view=v, sync_id=f"take{m % 100:03d}/{m}", video="v")
            for m in range(moments) for v in ("ego", "exo")]
    st = Store.create(tmp / "big.zarr", kind="features", clips=pd.DataFrame(rows), frames=1, dim=256, overwrite=True)
    st.write_rows(0, features=rng.normal(size=(2 * moments, 1, 256)).astype(np.float16), status=S.DONE)
    st.finalize()
    pairs, _ = build_pairs([st], 0.1, 0)
    train = pairs.subset(~pairs.val)
    rates = {"streaming (ChunkCache)": [], "resident ram": []}
    setup = {k: [] for k in rates}
    for r in range(repeats):
        for name in rates:
            t0 = time.perf_counter()
            s = PairStream([st], train, batch, seed=r, resident="ram" if "resident" in name else "off")
            t1 = time.perf_counter()
            for k in range(steps):
                s.batch(k)
            setup[name].append(t1 - t0)
            rates[name].append(steps / (time.perf_counter() - t1))
    return rates, setup


def pretrain_rates(tmp: Path, n: int, steps: int, repeats: int, batch: int) -> dict:
    from rosetta_cli.contrastive import batches as B
    from rosetta_cli.contrastive import data as D
    from rosetta_cli.contrastive.config import PretrainConfig
    from rosetta_cli.synthetic.pretrain_world import World, make_paired, make_unpaired

    w = World(dim=256, frames=1, text_dim=384, seed=0)
    make_unpaired(w, tmp / "pt", n, n, seed=1)
    make_paired(w, tmp / "pt" / "paired.zarr", takes=100, per_take=n // 200, seed=2)
    r = tmp / "pt"
    cfg = PretrainConfig(out="x", paired=str(r / "paired.zarr"), ego=str(r / "ego.zarr"), exo=str(r / "exo.zarr"),
                         pairs=str(r / "pairs.zarr"), translated=str(r / "translated.zarr"), batch_size=batch, dim=256)
    src = D.open_sources(cfg)
    plan = B.build_plan(cfg, src, 1)
    rates = {"streaming (prefetched feed)": [], "resident ram": []}
    setup = {k: [] for k in rates}
    for _ in range(repeats):
        for name in rates:
            t0 = time.perf_counter()
            readers, _mode = D.open_readers(src, "ram" if "resident" in name else "off")
            feed = None if "resident" in name else B.make_feed(plan, readers, 0, 1, stop=steps)
            t1 = time.perf_counter()
            for k in range(steps):
                if feed is None:
                    B.local_batch(plan, readers, k, 0, 1, "cpu")
                else:
                    B.assemble(plan, readers, k, 0, 1, feed.get(k), "cpu")
            setup[name].append(t1 - t0)
            rates[name].append(steps / (time.perf_counter() - t1))
            if feed is not None:
                feed.close()
    return rates, setup


def table(title: str, unit: str, rates: dict, setup: dict | None = None) -> None:
    """Medians, every run, the ratio of medians to the first path's; setup: seconds before the first batch."""
    names = list(rates)
    base = statistics.median(rates[names[0]])
    extra = " | setup s (median) |" if setup else " |"
    print(f"\n{title}\n\n| path | {unit} (median) | runs | × {names[0]}{extra}\n|---|---|---|---|" + ("---|" if setup else ""))
    for k in names:
        m = statistics.median(rates[k])
        cell = f" | {statistics.median(setup[k]):.2f} |" if setup else " |"
        print(f"| {k} | {m:,.0f} | {', '.join(f'{v:,.0f}' for v in rates[k])} | {m / base:.2f}{cell}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=8192, help="ego rows to translate")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--baseline-rev", default="4e3538a", help="git revision of the per-chunk translate")
    ap.add_argument("--moments", type=int, default=100_000, help="train-rst stream: paired moments")
    ap.add_argument("--pretrain-rows", type=int, default=50_000, help="pretrain: ego and exo rows (each)")
    ap.add_argument("--steps", type=int, default=300, help="batches per data-path run")
    ap.add_argument("--skip-translate", action="store_true", help="only the data paths")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if not args.skip_translate:
            rst = make_rst(tmp)
            ego = make_ego(tmp / "ego.zarr", args.rows)
            table(f"translate, {args.rows} rows [N, 1, 256] fp16, chunk 256, DDIM-25, --batch-size {args.batch_size}, "
                  f"{args.threads} torch thread(s)", "rows/s",
                  translate_rates(rst, ego, tmp, args.baseline_rev, args.repeats, args.batch_size))
        table(f"train-rst data path: {args.moments:,} moments [1, 256] fp16, batch 256, {args.steps} batches "
              "(setup: opening the stream, the resident load)", "batches/s",
              *rst_stream_rates(tmp, args.moments, args.steps, args.repeats, 256))
        n = args.pretrain_rows
        table(f"pretrain data path: {n:,} ego + {n:,} exo rows (+ pairs, translations) and {n:,} paired rows, "
              f"[1, 256] fp16, batch 256, {args.steps} batches (setup: readers and feed, the resident load)",
              "batches/s", *pretrain_rates(tmp, n, args.steps, args.repeats, 256))


if __name__ == "__main__":
    main()
