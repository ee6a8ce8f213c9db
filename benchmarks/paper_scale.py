"""The whole pipeline at the paper's data sizes: wall time, throughput, peak RSS and disk per stage.

    python benchmarks/paper_scale.py [--scale 1.0|0.1|0.01] [--dim D] [--out DIR] [--keep]

Paper sizes (docs/method.md), times --scale: 850k synchronized ego-exo pairs (a paired store of
2 x 850k rows), 562k unpaired ego clips and 1.25M unpaired exo clips, T=4 frames of D=1280
fp16 features (--dim to fit the disk), 384-d narration embeddings on every row. The bench
stores are the paper's benchmark size whatever the scale: 2,936 ego x 5,872 exo retrieval
clips and 18,518 exo training clips, 188 keystep classes.

Stores are written block by block through the real store API (Store.create / write_rows /
finalize), never a whole array in memory. Each stage then runs as a child process through the
real CLI (`python -m rosetta_cli ...`): train-rst (a few steps), translate (every ego row),
mine, pretrain (a fixed number of steps), embed (the exo store), bench, and index (every exo
clip, embedded by the trained model). Peak RSS is the child's own (os.wait4 rusage ru_maxrss); disk is the
size of what the stage wrote. Prints one markdown table and writes OUT/paper_scale.json.
Generated stores are deleted at the end unless --keep.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PAPER = {"paired": 850_000, "ego": 562_000, "exo": 1_250_000}
FRAMES, TEXT_DIM, CLASSES, PER_TAKE = 4, 384, 188, 50
BLOCK = 16_384  # rows generated and written per block (a multiple of the 1024-row chunk)


# ---------------------------------------------------------------------------- synthetic stores
class Synth:
    """Class-structured features: a view-specific map of a class centre + moment detail + noise,
    so mining and pretraining see learnable structure. Everything seeded; rows made per block."""

    def __init__(self, dim: int, seed: int = 0):
        r = np.random.default_rng(seed)
        self.dim = dim
        self.centres = r.standard_normal((CLASSES, 32)).astype(np.float32)
        self.maps = {v: (r.standard_normal((32, dim)) / np.sqrt(32)).astype(np.float32) for v in ("ego", "exo")}
        self.text_map = (r.standard_normal((32, TEXT_DIM)) / np.sqrt(32)).astype(np.float32)

    def latents(self, y: np.ndarray, rng) -> np.ndarray:
        return self.centres[y] + 0.6 * rng.standard_normal((len(y), 32), dtype=np.float32)

    def features(self, c: np.ndarray, view: str, rng) -> np.ndarray:
        """[n, 32] latents → [n, T, D] float16."""
        z = (c @ self.maps[view])[:, None, :]
        return (z + 0.5 * rng.standard_normal((len(c), FRAMES, self.dim), dtype=np.float32)).astype(np.float16)

    def text(self, c: np.ndarray, rng) -> np.ndarray:
        e = c @ self.text_map + 0.3 * rng.standard_normal((len(c), TEXT_DIM), dtype=np.float32)
        return (e / np.linalg.norm(e, axis=1, keepdims=True)).astype(np.float32)


def clips_table(n: int, view: str, y: np.ndarray, sync: np.ndarray | None):
    import pandas as pd

    ids = np.char.add(f"{view}-", np.arange(n).astype(str))
    return pd.DataFrame({"clip_id": ids, "video": ids, "start": 0.0, "end": 1.0, "view": view,
                         "sync_id": sync if sync is not None else "", "narration": "",
                         "label": np.char.add("step ", y.astype(str)), "split": "train"})


def write_store(path: Path, synth: Synth, views: list, y: np.ndarray, sync: np.ndarray | None, seed: int) -> None:
    """One features store: the rows of each view in `views` in turn (a paired store: ego block,
    then the exo block of the same moments). Written BLOCK rows at a time."""
    import pandas as pd

    from rosetta_cli.store import DONE, Store

    n = len(y)
    df = pd.concat([clips_table(n, v, y, sync) for v in views], ignore_index=True)
    df["clip_id"] = np.char.add(np.char.add(df["view"].to_numpy().astype(str), "-"), np.arange(len(df)).astype(str))
    s = Store.create(path, kind="features", clips=df, frames=FRAMES, dim=synth.dim, text_dim=TEXT_DIM, overwrite=True)
    del df
    for vi, view in enumerate(views):
        for a in range(0, n, BLOCK):
            b = min(a + BLOCK, n)
            # the latent of moment i is the same for both views (seeded by block, not by view)
            c = synth.latents(y[a:b], np.random.default_rng([seed, a]))
            rng = np.random.default_rng([seed, a, vi + 1])
            s.write_rows(vi * n + a, features=synth.features(c, view, rng), text=synth.text(c, rng), status=DONE)
    s.finalize()
    s.close()


def generate(out: Path, scale: float, dim: int) -> dict:
    """Writes paired.zarr, ego.zarr, exo.zarr and the bench stores under out; returns row counts."""
    from rosetta_cli.synthetic.bench_stores import make_stores

    synth, rng = Synth(dim), np.random.default_rng(0)
    n = {k: max(BLOCK // 16, int(round(v * scale))) for k, v in PAPER.items()}
    y = rng.integers(0, CLASSES, n["paired"])
    sync = np.char.add(np.char.add("t", (np.arange(n["paired"]) // PER_TAKE).astype(str)),
                       np.char.add("/", (np.arange(n["paired"]) % PER_TAKE).astype(str)))
    write_store(out / "paired.zarr", synth, ["ego", "exo"], y, sync, seed=1)
    write_store(out / "ego.zarr", synth, ["ego"], rng.integers(0, CLASSES, n["ego"]), None, seed=2)
    write_store(out / "exo.zarr", synth, ["exo"], rng.integers(0, CLASSES, n["exo"]), None, seed=3)
    (out / "bench").mkdir(exist_ok=True)
    make_stores(out / "bench", n_ego=2936, exo_per_ego=2, n_exo_train=18518, n_classes=CLASSES, dim=dim, frames=FRAMES)
    return n


# ---------------------------------------------------------------------------- stages as children
def du(*paths: Path) -> int:
    total = 0
    for p in paths:
        if p.is_file():
            total += p.stat().st_size
        for root, _, files in os.walk(p):
            total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total


def child(argv: list, log: Path) -> dict:
    """Run argv to completion; wall seconds, exit code and the child's own peak RSS (MB)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        p = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    return {"wall_s": time.perf_counter() - t0, "rc": p.returncode, "peak_rss_mb": ru.ru_maxrss / 1024}


def cli(*args) -> list:
    return [sys.executable, "-m", "rosetta_cli", *map(str, args)]


def stages(d: Path, n: dict, a) -> list:
    """(name, argv, outputs, work units, unit) per stage, in pipeline order.

    No --overwrite: every output is new (and `translate --overwrite` was refused with "--resume and
    --overwrite exclude each other" when this was written)."""
    B = d / "bench"
    rst_batch, pre_batch = 64, 128
    out = [
        ("train-rst", cli("train-rst", "--paired", d / "paired.zarr", "--out", d / "rst", "--steps", a.rst_steps,
                          "--batch-size", rst_batch, "--ckpt-every", a.rst_steps, "--device", "cpu"),
         [d / "rst"], a.rst_steps * rst_batch, "samples"),
        ("translate", cli("translate", "--rst", d / "rst", "--ego", d / "ego.zarr", "--out", d / "ego_tr.zarr",
                          "--sampling-steps", a.sampling_steps, "--batch-size", 1024, "--device", "cpu"),
         [d / "ego_tr.zarr"], n["ego"], "rows"),
        ("mine", cli("mine", "--ego", d / "ego.zarr", "--exo", d / "exo.zarr", "--translated", d / "ego_tr.zarr",
                     "--out", d / "pairs.zarr", "--device", "cpu"),
         [d / "pairs.zarr"], n["ego"], "queries"),
        ("pretrain", cli("pretrain", "--paired", d / "paired.zarr", "--ego", d / "ego.zarr", "--exo", d / "exo.zarr",
                         "--pairs", d / "pairs.zarr", "--translated", d / "ego_tr.zarr", "--out", d / "model",
                         "--steps", a.pretrain_steps, "--eval-every", a.pretrain_steps, "--batch-size", pre_batch,
                         "--init", "orthogonal", "--threads", a.threads, "--device", "cpu"),
         [d / "model"], a.pretrain_steps * pre_batch, "samples"),
        ("embed", cli("embed", "--model", d / "model", "--store", d / "exo.zarr", "--out", d / "exo_emb.zarr",
                      "--device", "cpu"),
         [d / "exo_emb.zarr"], n["exo"], "rows"),
        ("bench", cli("bench", "--ego", B / "ego.zarr", "--exo", B / "exo.zarr", "--model", d / "model",
                      "--out", d / "report", "--no-plots"),
         [d / "report"], 2936 + 5872 + 18518, "clips"),
        # the search index over every exo clip, embedded by the trained dual encoder (--index auto, as mine chooses)
        ("index", cli("index", "--store", d / "exo.zarr", "--model", d / "model", "--out", d / "search"),
         [d / "search"], n["exo"], "clips"),
    ]
    return out


def pretrain_rate(model: Path) -> float | None:
    """samples/s of the training loop itself, as the trainer logged it (metrics.jsonl epoch record)."""
    f = model / "metrics.jsonl"
    if not f.exists():
        return None
    recs = [json.loads(x) for x in f.read_text().splitlines() if x.strip()]
    rates = [r["samples_per_s"] for r in recs if r.get("type") == "epoch" and "samples_per_s" in r]
    return rates[-1] if rates else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of the paper's sizes (1.0, 0.1, 0.01)")
    ap.add_argument("--dim", type=int, default=1280, help="feature dim D (paper: 1280; lower to fit the disk)")
    ap.add_argument("--out", default="/tmp/rosetta-paper-scale")
    ap.add_argument("--rst-steps", type=int, default=20)
    ap.add_argument("--sampling-steps", type=int, default=25, help="translate's DDIM steps (its default: 25)")
    ap.add_argument("--pretrain-steps", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1, help="pretrain's torch threads")
    ap.add_argument("--keep", action="store_true", help="keep the generated stores")
    ap.add_argument("--from-stage", default=None, metavar="STAGE",
                    help="rerun from STAGE (train-rst, translate, mine, ...) over the stores a --keep run left in "
                         "--out, keeping the earlier stages' rows of its paper_scale.json")
    ap.add_argument("--generate-only", action="store_true", help=argparse.SUPPRESS)  # the generation child
    a = ap.parse_args()
    d = Path(a.out)
    if a.generate_only:
        print(json.dumps(generate(d, a.scale, a.dim)))
        return
    if a.from_stage:
        return resume(d, a)
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    logs = d / "logs"
    logs.mkdir()
    head = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": f"{os.cpu_count()} cores, "
            f"{platform.machine()}, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB RAM",
            "loadavg_start": os.getloadavg(), "scale": a.scale, "dim": a.dim, "argv": sys.argv[1:]}
    rows = []
    argv = [sys.executable, __file__, "--generate-only", "--scale", a.scale, "--dim", a.dim, "--out", d]
    r = child(list(map(str, argv)), logs / "generate.log")
    n = {k: max(BLOCK // 16, int(round(v * a.scale))) for k, v in PAPER.items()}
    total_rows = 2 * n["paired"] + n["ego"] + n["exo"]
    rows.append({"stage": "generate", **r, "units": total_rows, "unit": "rows",
                 "disk_mb": du(d / "paired.zarr", d / "ego.zarr", d / "exo.zarr", d / "bench") / 2**20})
    head["rows"] = n
    run_stages(d, n, a, head, rows, stages(d, n, a))


def run_stages(d: Path, n: dict, a, head: dict, rows: list, todo: list) -> None:
    """Run each stage as a child, recording its row (with the 1-min load average before and after)."""
    logs = d / "logs"
    for name, args, outs, units, unit in todo:
        load0 = os.getloadavg()[0]
        r = child(args, logs / f"{name}.log")
        row = {"stage": name, **r, "units": units, "unit": unit, "disk_mb": du(*outs) / 2**20,
               "load": [load0, os.getloadavg()[0]]}
        if name == "pretrain":
            row["loop_samples_per_s"] = pretrain_rate(d / "model")
        rows.append(row)
        (d / "paper_scale.json").write_text(json.dumps({"header": head, "stages": rows}, indent=1, default=str))
        print(f"{name}: rc {r['rc']}  {r['wall_s']:.1f} s  {r['peak_rss_mb']:.0f} MB", file=sys.stderr, flush=True)
        if r["rc"] != 0:
            print((logs / f"{name}.log").read_text()[-3000:], file=sys.stderr)
            break
    finish(d, a, head, rows)


def resume(d: Path, a) -> None:
    """--from-stage: keep the rows of the stages before it, delete its outputs and the later ones', rerun."""
    rec = json.loads((d / "paper_scale.json").read_text())
    head, n = rec["header"], rec["header"]["rows"]
    todo = stages(d, n, a)
    names = [t[0] for t in todo]
    if a.from_stage not in names:
        sys.exit(f"--from-stage {a.from_stage}: choose one of {', '.join(names)}")
    todo = todo[names.index(a.from_stage):]
    done = {t[0] for t in todo}
    rows = [r for r in rec["stages"] if r["stage"] not in done]
    for _, _, outs, _, _ in todo:
        for p in outs:
            shutil.rmtree(p, ignore_errors=True)
    head.setdefault("resumed", []).append({"from": a.from_stage, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                                           "loadavg_start": os.getloadavg()})
    run_stages(d, n, a, head, rows, todo)


def finish(d: Path, a, head: dict, rows: list) -> None:
    head["loadavg_end"] = os.getloadavg()
    (d / "paper_scale.json").write_text(json.dumps({"header": head, "stages": rows}, indent=1, default=str))
    print(render(head, rows))
    if not a.keep:
        for p in d.iterdir():
            if p.name not in ("paper_scale.json", "logs"):
                shutil.rmtree(p) if p.is_dir() else p.unlink()


def render(head: dict, rows: list) -> str:
    n = head["rows"]
    la = lambda x: "/".join(f"{v:.2f}" for v in x)  # noqa: E731
    lines = [f"scale {head['scale']:g} (paired {n['paired']:,} pairs = {2 * n['paired']:,} rows, ego {n['ego']:,}, "
             f"exo {n['exo']:,}; bench 2,936 x 5,872 + 18,518), T={FRAMES}, D={head['dim']} fp16, "
             f"{head['machine']}, load average {la(head['loadavg_start'])} at start, {la(head['loadavg_end'])} at end, "
             f"{head['date']}; `python benchmarks/paper_scale.py {' '.join(head['argv'])}`", "",
             "| stage | rc | wall (s) | throughput | peak RSS (MB) | disk written (MB) | load before/after |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        rate = f"{r['units'] / r['wall_s']:,.0f} {r['unit']}/s" if r["units"] else ""
        if r.get("loop_samples_per_s"):
            rate += f" (training loop: {r['loop_samples_per_s']:,.0f} samples/s)"
        load = "/".join(f"{x:.1f}" for x in r["load"]) if r.get("load") else ""
        lines.append(f"| {r['stage']} | {r['rc']} | {r['wall_s']:.1f} | {rate} | {r['peak_rss_mb']:,.0f} | "
                     f"{r['disk_mb']:,.0f} | {load} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
