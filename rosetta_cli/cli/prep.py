"""`rosetta prep`: transcode a dataset's videos to a small short side for fast extraction."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from rosetta_cli.cli import options
from rosetta_cli.cli.common import emit_json, out as stdout, rich_progress
from rosetta_cli.video.prep import PrepConfig


def register(app: typer.Typer) -> None:
    app.command("prep")(prep_cmd)


def prep_cmd(
    videos: Path = typer.Option(..., "--videos", help="Folder of videos (searched recursively), or one video file."),
    out: Path = typer.Option(..., "--out", help="Output folder; mirrors the source's layout (a/b.mkv → OUT/a/b.mkv.mp4)."),
    short_side: int = typer.Option(PrepConfig.short_side, "--short-side", help="Output short side in px (even; never upscaled)."),
    gop: str = typer.Option(PrepConfig.gop, "--gop", help="Key frame interval: seconds (1s, 0.5s) or frames (30)."),
    codec: str = typer.Option(PrepConfig.codec, "--codec", help="auto (libx264 when PyAV has it, else mpeg4) or a PyAV encoder name."),
    crf: int = typer.Option(PrepConfig.crf, "--crf", help="libx264 quality: lower is better and bigger."),
    preset: str = typer.Option(PrepConfig.preset, "--preset", help="libx264 preset (ultrafast ... veryslow)."),
    workers: Optional[int] = options.workers(PrepConfig.workers),  # None: one process per core
    as_json: bool = options.as_json(),
):
    """Transcode every video to a short side of N px with a key frame about every second; rerun to resume.

    Extraction decodes the copies instead (`rosetta extract --prepped OUT`), several times faster than
    1080p sources. Settings go to OUT/prep.json, one line per video to OUT/prep-log.jsonl. A video that
    fails is left behind alone (exit 3 at the end). --workers defaults to one process per core.

    Example: rosetta prep --videos data/ego4d/v2/full_scale --out data/ego4d-288
    """
    from rosetta_cli.video.prep import run

    cfg = PrepConfig(videos=str(videos), out=str(out), short_side=short_side, gop=gop, codec=codec, crf=crf,
                     preset=preset, workers=workers)
    with rich_progress() as p:
        result = run(cfg, p)
    if as_json:
        emit_json(result.to_dict())
    else:
        _print_summary(result)
    if result.failed:
        from rosetta_cli.errors import PartialFailure

        raise PartialFailure(f"{result.failed} video(s) failed; see {Path(result.out) / 'prep-log.jsonl'}",
                             hint="fix or remove them and rerun the same command")


def _print_summary(r) -> None:
    for rel, err in r.failures:
        stdout.print(f"[red]failed[/red] {rel}: {err}", highlight=False, soft_wrap=True)
    ratio = f", {r.bytes_in / r.bytes_out:.1f}x smaller" if r.bytes_out else ""
    stdout.print(f"[bold]{r.out}[/bold]: {r.done} transcoded, {r.skipped} already done, {r.failed} failed "
                 f"of {r.videos} videos in {r.seconds:.1f}s{ratio}", highlight=False, soft_wrap=True)
