"""`rosetta toy` as a stage: `run(ToyConfig) -> ToyResult` (render_world plus the output guard)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from rosetta_cli.errors import UsageError
from rosetta_cli.runtime.guard import Action, output_action
from rosetta_cli.runtime.progress import SILENT, Progress
from rosetta_cli.toy.spec import SCALES
from rosetta_cli.toy.world import OUTPUTS, render_world


@dataclass
class ToyConfig:
    out: str = ""
    scale: str = "small"       # tiny (tests) | small (the demo) | medium
    seed: int = 0
    overwrite: bool = False    # replace a toy world in `out` (only the files a toy world contains)
    held_out_kitchens: int = 0  # > 0: benchmark takes in that many Ego-Exo4D kitchens no paired take shows

    def check(self) -> None:
        if self.scale not in SCALES:
            raise UsageError(f"--scale {self.scale!r} is not a toy scale", hint=f"use one of {', '.join(SCALES)}")
        if not self.out:
            raise UsageError("no --out directory given")


@dataclass
class ToyResult:
    out: str
    summary: dict              # counts and timings of render_world

    def to_dict(self) -> dict:
        return self.summary


def run(cfg: ToyConfig, progress: Progress = SILENT) -> ToyResult:
    """Render the world into cfg.out (a new or empty directory, or with overwrite one holding a world)."""
    cfg.check()
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file", hint="pass a directory path")
    holds = out.is_dir() and any(out.iterdir())
    if output_action(out, holds, what="files", overwrite=cfg.overwrite, resumable=False) is Action.REPLACE:
        for name in OUTPUTS:  # only what a toy world contains: never a user's other files
            p = out / name
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
    out.mkdir(parents=True, exist_ok=True)
    state = {"started": False}

    def step(done: int, total: int, what: str) -> None:
        if not state["started"]:
            progress.start("render", total, unit="videos")
            state["started"] = True
        progress.advance(1, info=what)

    return ToyResult(str(out), render_world(out, scale=cfg.scale, seed=cfg.seed, progress=step,
                                          bench_new_kitchens=cfg.held_out_kitchens))
