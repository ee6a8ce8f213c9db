"""The options many commands share, each defined once with one help text.

Each function returns a fresh typer.Option (typer reads the default object of every parameter,
so one instance is not shared between commands). The default comes from the stage's config
dataclass (e.g. `options.device(ExtractConfig.device)`), so the help and the library agree;
tests/test_cli_defaults.py checks that for every command.
"""

from __future__ import annotations

import typer

JSON_HELP = "Print the result as JSON on stdout (nothing else goes to stdout)."
DEVICE_HELP = "auto (cuda when available, else cpu) | cpu | cuda."
SEED_HELP = "Seed of every random choice of the stage (the same seed reruns identically)."
OVERWRITE_HELP = "Replace an existing output instead of refusing (or resuming, where the stage resumes)."
RESUME_HELP = "Continue an interrupted run where it stopped (same inputs and options)."
WORKERS_HELP = "Video decoding processes (0: decode in the main process)."


def as_json():
    """--json: the result as JSON, alone on stdout."""
    return typer.Option(False, "--json", help=JSON_HELP)


def device(default: str):
    """--device, defaulting to the stage config's own (auto wherever the stage resolves it)."""
    return typer.Option(default, "--device", help=DEVICE_HELP)


def seed(default: int):
    return typer.Option(default, "--seed", help=SEED_HELP)


def overwrite(default: bool = False):
    return typer.Option(default, "--overwrite", help=OVERWRITE_HELP)


def resume(default: bool = False):
    """--resume; a stage that resumes by default also gets --no-resume."""
    return typer.Option(default, "--resume/--no-resume" if default else "--resume", help=RESUME_HELP)


def workers(default: int):
    return typer.Option(default, "--workers", min=0, help=WORKERS_HELP)



def checkpoint_minutes(default: float):
    """--checkpoint-minutes: the trainers' wall-time checkpoint cadence (beside their step cadence)."""
    return typer.Option(default, "--checkpoint-minutes", min=0.0,
                        help="Also checkpoint every this many minutes of training, written in the background (0: off).")


def log_every(default: int):
    """--log-every: how often a trainer reads its losses from the device (its only host sync)."""
    return typer.Option(default, "--log-every", min=1,
                        help="Steps between loss reads (the only host syncs), NaN checks and metrics.jsonl lines.")


def dist_timeout(default: float):
    """--dist-timeout: the torchrun process-group timeout of the trainers."""
    return typer.Option(default, "--dist-timeout", min=0.01,
                        help="torchrun: minutes a rank waits for the others (e.g. while rank 0 validates) before failing.")
