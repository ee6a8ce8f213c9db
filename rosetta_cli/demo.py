"""`rosetta demo`: the whole method on a synthetic world, as the same commands a user would type.

Each stage is a plain `rosetta ...` command, built from the pipeline's table (rosetta_cli.pipeline:
its inputs, output path, completion rule; examples/reproduce.sh is generated from the same table).
A stage whose output is already complete is skipped, so a second run resumes; `fresh` wipes DIR.

`rosetta claims` runs the same plan with a few more stages per seed (the scaling points under
equal steps and equal epochs, the visual-only mining baseline and the second retrieval
protocol): see rosetta_cli/claims.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from rosetta_cli.errors import PartialFailure, UsageError
from rosetta_cli.pipeline import table, variants
from rosetta_cli.pipeline.variants import (CLAIMS_MINING, DEMO_MINING, GALLERIES, MINING_TOPK, VARIANTS, Variant,
                                           scaling_variants)


@dataclass
class DemoConfig:
    out: Path
    scale: str = "small"
    seed: int = 0
    workers: int = 2
    steps: int = variants.STEPS       # pretraining steps of every variant (the equal budget; fits the demo's 10 min)
    batch_size: int = variants.BATCH_SIZE  # global batch of every variant; fits the small world's paired-only set
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
    runs = VARIANTS | (scaling_variants(None) | scaling_variants(epochs) if scaling else {})
    return DemoConfig(out=out, scale=scale, seed=seed, workers=workers, steps=steps, batch_size=batch_size, rst_steps=rst_steps,
                      rst_batch_size=rst_batch_size, rst_val_frac=rst_val_frac, held_out_kitchens=held_out_kitchens,
                      variants=runs, mining=CLAIMS_MINING, galleries=dict(GALLERIES))


@dataclass
class Stage:
    title: str
    argv: list[str]
    output: Path                                # what tells the stage is done (pipeline.table.marker)
    expect: dict = field(default_factory=dict)  # config.json values a reusable checkpoint must have
    inputs: tuple[Path, ...] = ()               # files the output must be newer than (e.g. the models a report scores)
    strict: bool = False                        # a finished output that does not match `expect` is an error, not a redo

    def done(self) -> bool:
        if not table.complete(self.argv[0], self.output):
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
    meta = json.loads((path if path.suffix == ".json" else table.checkpoint_config(path)).read_text())

    def get(key: str):
        node = meta
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        return node

    return all(get(k) == v for k, v in expect.items())


def paths(d: Path) -> dict:
    """Conventional outputs of a demo / claims seed folder (pipeline.table.layout)."""
    return table.layout(d)


def _stage(title: str, argv: list[str], folder: Path, **kw) -> Stage:
    """A stage of the plan, titled "STEP/7 title" as the demo prints it; done when its table marker is."""
    step = table.stage(argv[0]).step
    return Stage(f"{step}/{len(table.STAGES)} {title}", argv, table.marker(argv[0], folder), **kw)


def plan(cfg: DemoConfig) -> list[Stage]:
    p = paths(cfg.out)
    stages = [_stage("toy world: render videos + annotations",
                     table.argv("toy", {}, p["world"], {"scale": cfg.scale, "seed": cfg.seed,
                                                         "held_out_kitchens": cfg.held_out_kitchens or None}),
                     p["world"], strict=True,
                     expect={"scale": cfg.scale, "seed": cfg.seed, "bench_new_kitchens": cfg.held_out_kitchens})]
    for dataset, role in table.SOURCES.items():
        stages.append(_stage(f"extract {dataset}: efficientnet-lite0 + minilm",
                             table.argv("extract", {}, p[role], {"videos": p["world"] / dataset, "workers": cfg.workers}),
                             p[role]))
    stages.append(_stage("train-rst: diffusion translator on synchronized pairs",
                         table.argv("train-rst", p, p["rst"], {"seed": cfg.seed, "steps": cfg.rst_steps,
                                                              "batch_size": cfg.rst_batch_size, "val_frac": cfg.rst_val_frac}),
                         p["rst"]))
    stages.append(_stage("translate: ego → hallucinated exo",
                         table.argv("translate", p, p["translated"], {"seed": cfg.seed}), p["translated"]))
    for strategy in cfg.mining:
        out = variants.pairs_file(p, strategy)
        stages.append(_stage(f"mine ({strategy})", table.argv("mine", p, out, {"strategy": strategy, "topk": MINING_TOPK,
                                                                               "seed": cfg.seed}), out))
    stages += [_stage(f"pretrain: {v.name}", pretrain_argv(cfg, v), p["models"] / v.slug,
                      expect={"train.batch_size": cfg.batch_size,
                              **({"train.epochs": v.epochs, "train.steps": None} if v.epochs else {"total_steps": cfg.steps})})
               for v in cfg.variants.values()]
    for folder, gallery in cfg.galleries.items():
        stages.append(bench_stage(cfg, folder, gallery))
    return stages


def pretrain_argv(cfg: DemoConfig, v: Variant) -> list[str]:
    p = paths(cfg.out)
    budget = {"epochs": v.epochs} if v.epochs else {"steps": cfg.steps}
    # a few held-out evaluations per run: an epoch of the toy world is only a few steps
    return table.argv("pretrain", variants.inputs(v, p), p["models"] / v.slug,
                      {"seed": cfg.seed, "name": v.name, "threads": 1, **budget, "batch_size": cfg.batch_size,
                       "eval_every": max(1, cfg.steps // 5), **variants.options(v)})


def bench_stage(cfg: DemoConfig, folder: str, gallery: str | None) -> Stage:
    p, out = paths(cfg.out), cfg.out / folder
    models = [(key, value) for v in cfg.variants.values() for key, value in (("model", p["models"] / v.slug), ("name", v.name))]
    argv = table.argv("bench", p, out, [("seed", cfg.seed), ("gallery", gallery), ("no_plots", gallery is not None), *models])
    label = "paper protocol" if gallery is None else f"gallery {gallery}"
    return _stage(f"bench ({label}): cross-view retrieval, recognition, skill", argv, out,
                  inputs=tuple(p["models"] / v.slug / "config.json" for v in cfg.variants.values()))


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
