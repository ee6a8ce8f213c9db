"""Time `rosetta --help` and every subcommand's `--help` in fresh processes (target < 1 s each).

    python benchmarks/cli_help.py [--repeats 5]

Baseline in the same run: `python -c pass` (interpreter start-up alone).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def run(cmd: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


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
    args = p.parse_args()
    base = run([sys.executable, "-c", "pass"], args.repeats)
    print(f"| command | median s | x python start-up |\n|---|---|---|\n| python -c pass (baseline) | {base:.3f} | 1.0 |")
    worst = 0.0
    for sub in subcommands():
        t = run([sys.executable, "-m", "rosetta_cli", *sub, "--help"], args.repeats)
        worst = max(worst, t)
        print(f"| rosetta {' '.join(sub)} --help | {t:.3f} | {t / base:.1f} |", flush=True)
    print(f"\nslowest: {worst:.3f} s (target < 1 s): {'PASS' if worst < 1 else 'FAIL'}")


if __name__ == "__main__":
    main()
