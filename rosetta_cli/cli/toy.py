"""`rosetta toy`: render the synthetic ego-exo kitchen world (real MP4s + real annotation formats)."""

from __future__ import annotations

from pathlib import Path

import typer

from rosetta_cli.cli import options
from rosetta_cli.toy.stage import ToyConfig


def toy(
    out: Path = typer.Option(..., "--out", "-o", help="Directory to write the world into (must be new or empty)."),
    scale: str = typer.Option(ToyConfig.scale, "--scale",
                              help="tiny (unit tests, 3 kitchens) | small (the demo, 18 kitchens, 72 benchmark queries) | "
                                   "medium (`rosetta claims`, 30 kitchens, 500 benchmark queries)."),
    held_out_kitchens: int = typer.Option(ToyConfig.held_out_kitchens, "--held-out-kitchens",
                                          help="0: the benchmark holds out takes of the paired kitchens (the paper's regime). "
                                               "K > 0: it is filmed in K Ego-Exo4D kitchens that no paired take shows."),
    seed: int = options.seed(ToyConfig.seed),
    overwrite: bool = options.overwrite(ToyConfig.overwrite),
    check: bool = typer.Option(False, "--check", help="Also extract the paired and HTM stores (into OUT/check/) and "
                                                      "measure the world's preconditions P1-P3 (about a minute for small)."),
    json_out: bool = options.as_json(),
):
    """Render a synthetic ego-exo kitchen world as real H.264 MP4s with annotations in the
    Ego-Exo4D, Ego4D and HTM-AA formats (plus world.json ground truth), ready for
    `rosetta extract --dataset auto`. As in the paper's data, paired Ego-Exo4D takes span the
    Ego-Exo4D kitchens and the benchmark holds out takes of them; unpaired Ego4D ego videos and
    HTM exo videos come from two more, disjoint sets of kitchens.

    Example:

        rosetta toy --out toy-world --scale small --seed 0
    """
    from rosetta_cli.cli.common import console, emit_json, out as stdout, rich_progress
    from rosetta_cli.toy.stage import ToyConfig, run

    with rich_progress() as p:
        summary = run(ToyConfig(out=str(out), scale=scale, seed=seed, overwrite=overwrite,
                                held_out_kitchens=held_out_kitchens), p).summary
        if check:
            from rosetta_cli.claims.summary import check_world

            summary["preconditions"] = check_world(out, progress=p)
    if json_out:
        emit_json(summary)
    else:
        stdout.print(f"[green]toy world[/green] {summary['scale']} (seed {seed}) → {out}: {summary['kitchens']} kitchens, "
                      f"{summary['paired_train']} paired training takes (kitchens {_ids(summary['paired_train_kitchens'])}) + "
                      f"{summary['paired_val']} benchmark takes ({summary['benchmark_protocol']}, kitchens {_ids(summary['benchmark_kitchens'])}), "
                      f"{summary['ego4d_videos']} Ego4D + {summary['htm_videos']} HTM-AA videos, {summary['video_files']} MP4s, "
                      f"{summary['frames']} frames in {summary['seconds']:.1f} s")
        _print_checks(summary)
        console.print("next, the pipeline on this world (runs as printed):", highlight=False)
        for line in next_steps(out, summary["scale"]):
            console.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)  # copy-pasteable at any width


# The default batches (64 RST pairs, 128 pretraining items) exceed the `tiny` world's 4 RST training pairs
# and 4 paired items per source, so its steps carry batches that fit.
STEP_BATCHES = {"tiny": {"train-rst": 4, "pretrain": 8}}


def next_steps(out: Path, scale: str) -> list[str]:
    """The stage commands that take this world from videos to a benchmark report (tested as printed), built
    from the pipeline's table with paths relative to the current directory."""
    from pathlib import PurePosixPath

    from rosetta_cli.pipeline import table, variants

    b = STEP_BATCHES.get(scale, {})
    p = table.layout(PurePosixPath())
    ours = variants.VARIANTS["ours"]
    argvs = [table.argv("extract", {}, p[role], {"videos": f"{out}/{dataset}"}) for dataset, role in table.SOURCES.items()]
    argvs += [table.argv("train-rst", p, p["rst"], {"batch_size": b.get("train-rst")}),
              table.argv("translate", p, p["translated"]),
              table.argv("mine", p, variants.pairs_file(p, ours.pairs)),
              table.argv("pretrain", variants.inputs(ours, p), p["models"] / ours.slug, {"batch_size": b.get("pretrain")}),
              table.argv("bench", p, "report", {"model": p["models"] / ours.slug})]
    return [" ".join(["rosetta", *a]) for a in argvs]


def _print_checks(summary: dict) -> None:
    """P3 from the counts; P1 and P2 need features (--check, `rosetta demo` or `rosetta claims`)."""
    from rosetta_cli.claims.summary import check_lines
    from rosetta_cli.cli.common import out as stdout
    from rosetta_cli.eval.preconditions import P3_MIN_GALLERY, P3_MIN_QUERIES

    if "preconditions" in summary:
        for line in check_lines(summary["preconditions"]):
            stdout.print(f"  {line}", highlight=False)
        return
    q, g = summary["benchmark_ego_queries"], summary["benchmark_exo_clips"]
    met = q >= P3_MIN_QUERIES and g >= P3_MIN_GALLERY
    stdout.print(f"  P3 the benchmark can tell: {q} ego queries, {g} exo gallery clips (need {P3_MIN_QUERIES} and "
                  f"{P3_MIN_GALLERY}) — {'met' if met else 'NOT met: this world cannot judge the paper claims'}; "
                  "P1 and P2 need features: add --check", highlight=False)


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
