"""`rosetta demo`: the whole method on a synthetic world, as the same commands a user would type.

Each stage is a plain `rosetta ...` command (examples/reproduce.sh lists the same ones). A
stage whose output is already complete is skipped, so a second run resumes; `fresh` wipes DIR.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from rosetta_cli.errors import PartialFailure

# Pretraining variants compared in the final table: (name, pairs strategy or None, extra flags)
VARIANTS = (
    ("ViewpointRosetta", "rst", []),
    ("VI-encoder (paired only)", None, []),
    ("Text-align (SUM-L-like)", "text", ["--no-synthetic"]),
    ("Random-align", "random", ["--no-synthetic"]),
)


@dataclass
class DemoConfig:
    out: Path
    scale: str = "small"
    seed: int = 0
    workers: int = 2


@dataclass
class Stage:
    title: str
    argv: list[str]
    output: Path

    def done(self) -> bool:
        return output_complete(self.output)


def slug(name: str) -> str:
    return name.split(" ")[0].lower()


def plan(cfg: DemoConfig) -> list[Stage]:
    d, s = cfg.out, str(cfg.seed)
    world, feats = d / "world", d / "features"
    paired, ego, exo, tr = feats / "paired.zarr", feats / "ego4d.zarr", feats / "htm-aa.zarr", feats / "ego4d.translated.zarr"
    stages = [Stage("1/7 toy world: render videos + annotations", ["toy", "--out", str(world), "--scale", cfg.scale, "--seed", s], world / "world.json")]
    for name, store in (("egoexo4d", paired), ("ego4d", ego), ("htm-aa", exo)):
        stages.append(Stage(f"2/7 extract {name}: efficientnet-lite0 + minilm", ["extract", "--videos", str(world / name), "--out", str(store),
                            "--workers", str(cfg.workers)], store))
    stages.append(Stage("3/7 train-rst: diffusion translator on synchronized pairs",
                        ["train-rst", "--paired", str(paired), "--out", str(d / "rst"), "--seed", s, "--steps", "1000"], d / "rst"))
    stages.append(Stage("4/7 translate: ego → hallucinated exo", ["translate", "--rst", str(d / "rst"), "--ego", str(ego), "--out", str(tr), "--seed", s], tr))
    for strat in ("rst", "text", "random"):
        extra = ["--translated", str(tr)] if strat == "rst" else []
        stages.append(Stage(f"5/7 mine ({strat})", ["mine", "--ego", str(ego), "--exo", str(exo), "--strategy", strat, "--topk", "1",
                            "--seed", s, "--out", str(d / "pairs" / f"{strat}-top1.zarr"), *extra], d / "pairs" / f"{strat}-top1.zarr"))
    for name, strat, flags in VARIANTS:
        argv = ["pretrain", "--paired", str(paired), "--out", str(d / "models" / slug(name)), "--seed", s, "--name", name,
                "--threads", "1", "--epochs", "30", *flags]
        if strat:
            argv += ["--ego", str(ego), "--exo", str(exo), "--pairs", str(d / "pairs" / f"{strat}-top1.zarr")]
        if strat == "rst":
            argv += ["--translated", str(tr)]
        stages.append(Stage(f"6/7 pretrain: {name}", argv, d / "models" / slug(name)))
    bench = ["bench", "--ego", str(paired), "--exo", str(paired), "--out", str(d / "report"), "--seed", s]
    for name, _, _ in VARIANTS:
        bench += ["--model", str(d / "models" / slug(name)), "--name", name]
    stages.append(Stage("7/7 bench: cross-view retrieval, recognition, skill", bench, d / "report" / "results.json"))
    return stages


def output_complete(path: Path) -> bool:
    """True when a stage's output exists and finished (stores finalized with nothing pending)."""
    if not path.exists():
        return False
    if path.suffix in (".zarr", ".h5"):
        from rosetta_cli.store import Store

        try:
            with Store.open(path) as st:
                return bool(st.meta.get("finalized")) and (st.kind == "pairs" or st.status_counts()["pending"] == 0)
        except Exception:
            return False
    if path.is_dir():
        return _checkpoint_complete(path)
    return True


def _checkpoint_complete(path: Path) -> bool:
    """train-rst writes metrics.json after its final validation; pretrain records epoch/epochs."""
    if (path / "metrics.json").exists():
        return True
    cfg = path / "config.json"
    if not cfg.exists():
        return False
    meta = json.loads(cfg.read_text())
    return meta.get("epoch", 0) >= (meta.get("train") or {}).get("epochs", float("inf"))


def run(cfg: DemoConfig, fresh: bool, call, log) -> dict:
    """Run every stage through `call(argv)`; `log(title, skipped, seconds)` reports progress."""
    if fresh and cfg.out.exists():
        shutil.rmtree(cfg.out)
    cfg.out.mkdir(parents=True, exist_ok=True)
    timings = {}
    for stage in plan(cfg):
        if stage.done():
            log(stage.title, True, 0.0)
            continue
        log(stage.title, None, 0.0)
        t = time.perf_counter()
        try:
            call(stage.argv + (["--overwrite"] if stage.output.exists() and stage.argv[0] in ("toy",) else []))
        except PartialFailure:
            pass  # a few unreadable clips are listed by extract; the demo goes on
        timings[stage.title] = time.perf_counter() - t
        log(stage.title, False, timings[stage.title])
    (cfg.out / "demo-timings.json").write_text(json.dumps(timings, indent=2))
    return timings
