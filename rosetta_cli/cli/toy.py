"""`rosetta toy`: render the synthetic ego-exo kitchen world (real MP4s + real annotation formats)."""

from __future__ import annotations

from pathlib import Path

import typer



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
    from rosetta_cli.cli.common import console, emit_json, rich_progress
    from rosetta_cli.toy.stage import ToyConfig, run

    with rich_progress() as p:
        summary = run(ToyConfig(out=str(out), scale=scale, seed=seed, overwrite=overwrite), p).summary
    if json_out:
        emit_json(summary)
    else:
        console.print(f"[green]toy world[/green] {summary['scale']} (seed {seed}) → {out}: {summary['kitchens']} kitchens, "
                      f"{summary['paired_train']} paired training takes (kitchens {_ids(summary['paired_train_kitchens'])}) + "
                      f"{summary['paired_val']} benchmark takes (kitchens {_ids(summary['benchmark_kitchens'])}), "
                      f"{summary['ego4d_videos']} Ego4D + {summary['htm_videos']} HTM-AA videos, {summary['video_files']} MP4s, "
                      f"{summary['frames']} frames in {summary['seconds']:.1f} s")
        console.print("next, the pipeline on this world (runs as printed):", highlight=False)
        for line in next_steps(out, summary["scale"]):
            console.print(f"  {line}", markup=False, highlight=False)


# The default batches (64 RST pairs, 128 pretraining items) exceed the `tiny` world's 4 RST training pairs
# and 4 paired items per source, so its steps carry batches that fit.
STEP_BATCHES = {"tiny": {"train-rst": 4, "pretrain": 8}}


def next_steps(out: Path, scale: str) -> list[str]:
    """The stage commands that take this world from videos to a benchmark report (tested as printed)."""
    b = STEP_BATCHES.get(scale, {})

    def batch(stage: str) -> str:
        return f" --batch-size {b[stage]}" if stage in b else ""

    f = "features"
    return [f"rosetta extract --videos {out}/egoexo4d --out {f}/paired.zarr",
            f"rosetta extract --videos {out}/ego4d --out {f}/ego4d.zarr",
            f"rosetta extract --videos {out}/htm-aa --out {f}/htm-aa.zarr",
            f"rosetta train-rst --paired {f}/paired.zarr --out rst{batch('train-rst')}",
            f"rosetta translate --rst rst --ego {f}/ego4d.zarr --out {f}/ego4d.translated.zarr",
            f"rosetta mine --ego {f}/ego4d.zarr --exo {f}/htm-aa.zarr --translated {f}/ego4d.translated.zarr "
            "--out pairs/rst.zarr",
            f"rosetta pretrain --paired {f}/paired.zarr --ego {f}/ego4d.zarr --exo {f}/htm-aa.zarr --pairs pairs/rst.zarr "
            f"--translated {f}/ego4d.translated.zarr --out models/ours{batch('pretrain')}",
            f"rosetta bench --ego {f}/paired.zarr --exo {f}/paired.zarr --model models/ours --out report"]


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
