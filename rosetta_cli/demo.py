"""`rosetta demo`: the whole method on a synthetic world, as the same commands a user would type.

Each stage is a plain `rosetta ...` command (examples/reproduce.sh lists the same ones). A
stage whose output is already complete is skipped, so a second run resumes; `fresh` wipes DIR.

`rosetta claims` runs the same plan with a few more stages per seed (the scaling points under
equal steps and equal epochs, the visual-only mining baseline and the second retrieval
protocol): see rosetta_cli/claims.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from rosetta_cli.errors import PartialFailure, UsageError


@dataclass(frozen=True)
class Variant:
    """One pretraining variant: its display name, output folder, pairs and extra flags."""

    name: str
    slug: str                         # MODEL_DIR name under models/, and the variant's key
    pairs: str | None                 # mining strategy of its pseudo-pairs; None = synchronized pairs only
    translated: bool = False          # give --translated (the video-synthetic loss L_vs)
    flags: tuple[str, ...] = ()
    unpaired_fraction: float = 1.0    # share of the unpaired ego clips it may use (claim 2)
    epochs: int | None = None         # train --epochs passes over its data instead of the run's --steps


def _keyed(*variants: Variant) -> dict[str, Variant]:
    return {v.slug: v for v in variants}


# The paper's Table 1 comparison and Fig. 7's ablations, keyed by slug. Every variant trains the
# same number of steps with the same batch (DemoConfig.steps / batch_size), so only the data and
# losses differ. Random-align aligns at random: its pairs keep no soft weights (w = 1).
VARIANTS: dict[str, Variant] = _keyed(
    Variant("ViewpointRosetta", "ours", "rst", translated=True),
    Variant("w/o soft alignment", "no-soft", "rst", translated=True, flags=("--no-soft",)),
    Variant("w/o RST (text-align, SUM-L-like)", "no-rst", "text", flags=("--no-synthetic",)),
    Variant("Random-align", "random", "random", flags=("--no-synthetic", "--no-soft")),
    Variant("VI-encoder (paired only)", "paired-only", None),
)
# Fig. 5: the three curves over the share of unpaired data. 0% is the paired-only encoder and 100%
# the variant itself. The paper trains the same epochs at every size (its compute grows with the
# data); the claims also train the same steps.
SCALING_CURVES = ("ours", "no-rst", "random")
SCALING_FRACTIONS = (0.25, 0.5)


def _pct(f: float) -> str:
    return f"{round(f * 100)}%"


def scaling_variants(epochs: int | None) -> dict[str, Variant]:
    """The extra runs of Fig. 5 under one budget: equal steps (epochs None) or `epochs` passes."""
    tag = "" if epochs is None else "-ep"
    fractions = SCALING_FRACTIONS if epochs is None else (0.0, *SCALING_FRACTIONS, 1.0)
    out = []
    for base in SCALING_CURVES:
        for f in fractions:
            if f == 0.0:
                continue
            v = VARIANTS[base]
            out.append(replace(v, name=f"{v.name}, {_pct(f)} unpaired" + (f", {epochs} epochs" if epochs else ""),
                                           slug=f"{base}-{round(f * 100)}{tag}", unpaired_fraction=f, epochs=epochs))
    if epochs is not None:
        v = VARIANTS["paired-only"]
        out.append(replace(v, name=f"{v.name}, {epochs} epochs", slug=f"paired-only{tag}", epochs=epochs))
    return _keyed(*out)


def scaling_slug(base: str, fraction: float, epochs: int | None) -> str:
    """The variant at one point of a Fig. 5 curve (0% is the paired-only encoder under that budget)."""
    tag = "" if epochs is None else "-ep"
    if fraction == 0.0:
        return f"paired-only{tag}"
    if fraction == 1.0 and epochs is None:
        return base
    return f"{base}-{round(fraction * 100)}{tag}"


DEMO_MINING = ("rst", "text", "random")
CLAIMS_MINING = ("rst", "text", "visual", "random")
GALLERIES = {"report": None, "report-other-takes": "other-takes"}  # report folder → bench --gallery


@dataclass
class DemoConfig:
    out: Path
    scale: str = "small"
    seed: int = 0
    workers: int = 2
    steps: int = 500                  # pretraining steps of every variant (the equal budget; fits the demo's 10 min)
    batch_size: int = 64              # global batch of every variant; fits the small world's paired-only set
    rst_steps: int = 1000
    rst_batch_size: int | None = None  # train-rst's default unless set (the tiny world has a handful of pairs)
    rst_val_frac: float | None = None  # train-rst's held-out share of takes (its default unless set)
    held_out_kitchens: int = 0        # toy --held-out-kitchens: 0 = the benchmark holds out takes (the paper's regime)
    variants: dict[str, Variant] = field(default_factory=lambda: dict(VARIANTS))
    mining: tuple[str, ...] = DEMO_MINING
    galleries: dict = field(default_factory=lambda: {"report": None})


def claims_config(out: Path, scale: str, seed: int, workers: int, steps: int, batch_size: int, epochs: int,
                  rst_steps: int = 1000, rst_batch_size: int | None = None, rst_val_frac: float | None = None,
                  held_out_kitchens: int = 0, scaling: bool = True) -> DemoConfig:
    """The demo plan extended by the stages `rosetta claims` needs for one seed (without Fig. 5's runs
    when `scaling` is off)."""
    variants = VARIANTS | (scaling_variants(None) | scaling_variants(epochs) if scaling else {})
    return DemoConfig(out=out, scale=scale, seed=seed, workers=workers, steps=steps, batch_size=batch_size, rst_steps=rst_steps,
                      rst_batch_size=rst_batch_size, rst_val_frac=rst_val_frac, held_out_kitchens=held_out_kitchens,
                      variants=variants, mining=CLAIMS_MINING, galleries=dict(GALLERIES))


@dataclass
class Stage:
    title: str
    argv: list[str]
    output: Path
    expect: dict = field(default_factory=dict)  # config.json values a reusable checkpoint must have
    inputs: tuple[Path, ...] = ()               # files the output must be newer than (e.g. the models a report scores)
    strict: bool = False                        # a finished output that does not match `expect` is an error, not a redo

    def done(self) -> bool:
        if not output_complete(self.output):
            return False
        if not _config_matches(self.output, self.expect):
            if self.strict:  # everything downstream was made from it: redoing only this stage would mix them
                raise UsageError(f"{self.output} was made with other settings than {self.expect}",
                                 hint="give a new --out (or delete this one) to run with these settings")
            return False
        return self._newer_than_inputs()

    def _newer_than_inputs(self) -> bool:
        """A report older than a model it scores (the model was retrained since) is rerun."""
        t = self.output.stat().st_mtime
        return all(not f.exists() or f.stat().st_mtime <= t for f in self.inputs)


def _config_matches(path: Path, expect: dict) -> bool:
    """A finished model trained with another budget (e.g. an earlier --steps) is not reused.

    Keys may be dotted ("train.epochs") to reach into config.json's nested records; a JSON file output
    (the toy world's world.json) is compared itself."""
    if not expect:
        return True
    meta = json.loads((path if path.suffix == ".json" else path / "config.json").read_text())

    def get(key: str):
        node = meta
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        return node

    return all(get(k) == v for k, v in expect.items())


def paths(d: Path) -> dict:
    """Conventional outputs of a demo / claims seed folder."""
    feats = d / "features"
    return {"world": d / "world", "paired": feats / "paired.zarr", "ego": feats / "ego4d.zarr",
            "exo": feats / "htm-aa.zarr", "translated": feats / "ego4d.translated.zarr", "rst": d / "rst",
            "pairs": d / "pairs", "models": d / "models"}


def plan(cfg: DemoConfig) -> list[Stage]:
    s, p = str(cfg.seed), paths(cfg.out)
    world = p["world"]
    toy = ["toy", "--out", str(world), "--scale", cfg.scale, "--seed", s]
    toy += ["--held-out-kitchens", str(cfg.held_out_kitchens)] if cfg.held_out_kitchens else []
    stages = [Stage("toy world: render videos + annotations", toy, world / "world.json", strict=True,
                    expect={"scale": cfg.scale, "seed": cfg.seed, "bench_new_kitchens": cfg.held_out_kitchens})]
    for name, store in (("egoexo4d", p["paired"]), ("ego4d", p["ego"]), ("htm-aa", p["exo"])):
        stages.append(Stage(f"extract {name}: efficientnet-lite0 + minilm", ["extract", "--videos", str(world / name),
                            "--out", str(store), "--workers", str(cfg.workers)], store))
    stages.append(Stage("train-rst: diffusion translator on synchronized pairs",
                        ["train-rst", "--paired", str(p["paired"]), "--out", str(p["rst"]), "--seed", s,
                         "--steps", str(cfg.rst_steps)]
                        + (["--batch-size", str(cfg.rst_batch_size)] if cfg.rst_batch_size else [])
                        + (["--val-frac", str(cfg.rst_val_frac)] if cfg.rst_val_frac is not None else []), p["rst"]))
    stages.append(Stage("translate: ego → hallucinated exo", ["translate", "--rst", str(p["rst"]), "--ego", str(p["ego"]),
                                                              "--out", str(p["translated"]), "--seed", s], p["translated"]))
    for strat in cfg.mining:
        out = p["pairs"] / f"{strat}-top1.zarr"
        extra = ["--translated", str(p["translated"])] if strat == "rst" else []
        stages.append(Stage(f"mine ({strat})", ["mine", "--ego", str(p["ego"]), "--exo", str(p["exo"]), "--strategy", strat,
                            "--topk", "1", "--seed", s, "--out", str(out), *extra], out))
    stages += [Stage(f"pretrain: {v.name}", pretrain_argv(cfg, v), p["models"] / v.slug,
                     expect={"train.batch_size": cfg.batch_size,
                             **({"train.epochs": v.epochs, "train.steps": None} if v.epochs else {"total_steps": cfg.steps})})
               for v in cfg.variants.values()]
    for folder, gallery in cfg.galleries.items():
        stages.append(bench_stage(cfg, folder, gallery))
    return _numbered(stages)


def pretrain_argv(cfg: DemoConfig, v: Variant) -> list[str]:
    p = paths(cfg.out)
    budget = ["--epochs", str(v.epochs)] if v.epochs else ["--steps", str(cfg.steps)]
    argv = ["pretrain", "--paired", str(p["paired"]), "--out", str(p["models"] / v.slug), "--seed", str(cfg.seed),
            "--name", v.name, "--threads", "1", *budget, "--batch-size", str(cfg.batch_size),
            # a few held-out evaluations per run: an epoch of the toy world is only a few steps
            "--eval-every", str(max(1, cfg.steps // 5)), *v.flags]
    if v.pairs:
        argv += ["--ego", str(p["ego"]), "--exo", str(p["exo"]), "--pairs", str(p["pairs"] / f"{v.pairs}-top1.zarr")]
    if v.translated:
        argv += ["--translated", str(p["translated"])]
    if v.unpaired_fraction != 1.0:
        argv += ["--unpaired-fraction", str(v.unpaired_fraction)]
    return argv


def bench_stage(cfg: DemoConfig, folder: str, gallery: str | None) -> Stage:
    p, out = paths(cfg.out), cfg.out / folder
    argv = ["bench", "--ego", str(p["paired"]), "--exo", str(p["paired"]), "--out", str(out), "--seed", str(cfg.seed)]
    if gallery:
        argv += ["--gallery", gallery, "--no-plots"]
    for v in cfg.variants.values():
        argv += ["--model", str(p["models"] / v.slug), "--name", v.name]
    label = "paper protocol" if gallery is None else f"gallery {gallery}"
    return Stage(f"bench ({label}): cross-view retrieval, recognition, skill", argv, out / "results.json",
                 inputs=tuple(p["models"] / v.slug / "config.json" for v in cfg.variants.values()))


def _numbered(stages: list[Stage]) -> list[Stage]:
    """Prefix titles with the pipeline step (1/7 toy ... 7/7 bench), as the demo prints them."""
    order = ("toy", "extract", "train-rst", "translate", "mine", "pretrain", "bench")
    for st in stages:
        st.title = f"{order.index(st.argv[0]) + 1}/7 {st.title}"
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
    """train-rst writes metrics.json after its final validation; pretrain records step/total_steps."""
    if (path / "metrics.json").exists():
        return True
    cfg = path / "config.json"
    if not cfg.exists():
        return False
    meta = json.loads(cfg.read_text())
    if "total_steps" in meta:
        return meta.get("step", 0) >= meta["total_steps"]
    return meta.get("epoch", 0) >= (meta.get("train") or {}).get("epochs", float("inf"))


def run(cfg: DemoConfig, fresh: bool, call, log, stages: list[Stage] | None = None) -> dict:
    """Run every stage through `call(argv)`; `log(title, skipped, seconds)` reports progress."""
    if fresh and cfg.out.exists():
        shutil.rmtree(cfg.out)
    cfg.out.mkdir(parents=True, exist_ok=True)
    timings = {}
    for stage in stages if stages is not None else plan(cfg):
        timings[stage.title] = run_stage(stage, call, log)
    (cfg.out / "demo-timings.json").write_text(json.dumps(timings, indent=2))
    return timings


def run_stage(stage: Stage, call, log) -> float:
    """Run one stage unless its output is complete; returns its seconds (0 when reused)."""
    if stage.done():
        log(stage.title, True, 0.0)
        return 0.0
    log(stage.title, None, 0.0)
    t = time.perf_counter()
    # a half-rendered world or half-written report cannot be resumed: replace it
    overwrite = (stage.argv[0] in ("toy", "bench") and stage.output.parent.exists()) or \
        (stage.argv[0] == "pretrain" and stage.output.exists())  # a model of another budget is replaced
    try:
        call(stage.argv + (["--overwrite"] if overwrite else []))
    except PartialFailure:
        pass  # a few unreadable clips are listed by extract; the demo goes on
    secs = time.perf_counter() - t
    log(stage.title, False, secs)
    return secs
