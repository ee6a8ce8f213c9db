"""Time `rosetta --help` and every subcommand's `--help` in fresh processes (target < 1 s each).

    python benchmarks/cli_help.py [--repeats 5]
    python benchmarks/cli_help.py --repeats 5 --against ../main   # this checkout vs another, interleaved

Baseline in the same run: `python -c pass` (interpreter start-up alone). Each command is timed by
wall clock and by the CPU seconds of the child process (user + system), which a loaded machine
disturbs far less. With --against DIR, every command runs alternately from this checkout and from
DIR (PYTHONPATH), so both see the same load, and the table gives their ratio.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]


def once(cmd: list[str], tree: Path) -> tuple[float, float]:
    """(wall s, child CPU s) of one run of cmd with `tree` first on PYTHONPATH."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    r0, t = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=tree)
    wall, r1 = time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def run(cmd: list[str], trees: list[Path], repeats: int) -> list[tuple[float, float]]:
    """Median (wall, CPU) per tree, the trees alternating run by run."""
    samples = {t: [] for t in trees}
    for _ in range(repeats):
        for t in trees:
            samples[t].append(once(cmd, t))
    return [(statistics.median(w for w, _ in samples[t]), statistics.median(c for _, c in samples[t])) for t in trees]


def subcommands() -> list[list[str]]:
    from rosetta_cli.cli.app import app
    import typer

    group = typer.main.get_command(app)
    out = [[]]
    for name, cmd in group.commands.items():
        out.append([name])
        for sub in getattr(cmd, "commands", {}):
            out.append([name, sub])
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--against", type=Path, help="a second checkout to compare with, run alternately")
    args = p.parse_args()
    trees = [HERE] + ([args.against.resolve()] if args.against else [])
    base = run([sys.executable, "-c", "pass"], trees, args.repeats)[0]
    head = "| command | wall s | CPU s | CPU x python start-up |"
    if args.against:
        head += f" CPU s, {args.against.name} | CPU ratio this / {args.against.name} |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    print(f"| python -c pass (baseline) | {base[0]:.3f} | {base[1]:.3f} | 1.0 |" + (" | |" if args.against else ""))
    worst, ratios = 0.0, []
    for sub in subcommands():
        res = run([sys.executable, "-m", "rosetta_cli", *sub, "--help"], trees, args.repeats)
        (wall, cpu), worst = res[0], max(worst, res[0][0])
        row = f"| rosetta {' '.join(sub)} --help | {wall:.3f} | {cpu:.3f} | {cpu / base[1]:.1f} |"
        if args.against:
            ratios.append(cpu / res[1][1])
            row += f" {res[1][1]:.3f} | {ratios[-1]:.2f} |"
        print(row, flush=True)
    print(f"\nslowest (wall): {worst:.3f} s (target < 1 s): {'PASS' if worst < 1 else 'FAIL'}")
    if ratios:
        print(f"median CPU ratio this / {args.against.name} over {len(ratios)} commands: {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
