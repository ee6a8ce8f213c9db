"""`rosetta toy`: render the synthetic ego-exo kitchen world (real MP4s + real annotation formats)."""

from __future__ import annotations

import shutil
from pathlib import Path

import typer

from rosetta_cli.errors import UsageError


def _prepare_out(out: Path, overwrite: bool) -> None:
    """Refuse a non-empty directory unless --overwrite; then remove only what a toy world contains."""
    from rosetta_cli.toy import OUTPUTS

    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file", hint="pass a directory path")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise UsageError(f"--out {out} exists and is not empty",
                             hint="choose a new directory or pass --overwrite to replace the toy world there")
        for name in OUTPUTS:
            p = out / name
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
    out.mkdir(parents=True, exist_ok=True)


def toy(
    out: Path = typer.Option(..., "--out", "-o", help="Directory to write the world into (must be new or empty)."),
    scale: str = typer.Option("small", "--scale",
                              help="tiny (unit tests, 2 kitchens, ~1 s) | small (the demo, 12 kitchens, ~40 s) | medium (24 kitchens)."),
    seed: int = typer.Option(0, "--seed", help="Random seed; the same seed renders the same world."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a toy world already in --out."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
):
    """Render a synthetic ego-exo kitchen world as real H.264 MP4s with annotations in the
    Ego-Exo4D, Ego4D and HTM-AA formats (plus world.json ground truth), ready for
    `rosetta extract --dataset auto`. As in the paper's data, paired takes come from a few
    kitchens, unpaired Ego4D/HTM videos (several times as many clips) from all of them, and
    the benchmark takes from kitchens no paired training take shows.

    Example:

        rosetta toy --out toy-world --scale small --seed 0
    """
    from rosetta_cli.cli.common import console, emit_json, progress
    from rosetta_cli.toy import SCALES, render_world

    if scale not in SCALES:
        raise UsageError(f"--scale {scale!r} is not a toy scale", hint=f"use one of {', '.join(SCALES)}")
    _prepare_out(out, overwrite)
    with progress() as bar:
        task = bar.add_task("render", total=None, rate="", info="")

        def step(done: int, total: int, what: str) -> None:
            el = bar.tasks[task].elapsed or 1e-9
            bar.update(task, completed=done, total=total, rate=f"{done / el:.1f} videos/s", info=what)

        summary = render_world(out, scale=scale, seed=seed, progress=step)
    if json_out:
        emit_json(summary)
    else:
        console.print(f"[green]toy world[/green] {summary['scale']} (seed {seed}) → {out}: {summary['kitchens']} kitchens, "
                      f"{summary['paired_train']} paired training takes (kitchens {_ids(summary['paired_train_kitchens'])}) + "
                      f"{summary['paired_val']} benchmark takes (kitchens {_ids(summary['benchmark_kitchens'])}), "
                      f"{summary['ego4d_videos']} Ego4D + {summary['htm_videos']} HTM-AA videos, {summary['video_files']} MP4s, "
                      f"{summary['frames']} frames in {summary['seconds']:.1f} s")
        console.print(f"next: rosetta extract --videos {out}/egoexo4d --out features/paired.zarr  (also {out}/ego4d, {out}/htm-aa)")


def _ids(ids: list[int]) -> str:
    """[3, 4, 5, 8] -> '3-5, 8'."""
    runs: list[list[int]] = []
    for i in ids:
        if runs and i == runs[-1][-1] + 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else f"{r[0]}" for r in runs)


def register(app: typer.Typer) -> None:
    app.command("toy", no_args_is_help=True)(toy)
