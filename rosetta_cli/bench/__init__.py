"""The cross-view benchmark (docs/method.md stage 5): retrieval, recognition and skill assessment.

Library entry point: `rosetta_cli.bench.run.run(cfg)` (`run_bench` is its shorthand); metrics are pure functions in
`rosetta_cli.eval.metrics`. Heavy imports (sklearn, torch, matplotlib, av) happen inside functions.
"""

from rosetta_cli.bench.run import FROZEN, TASKS, BenchConfig, BenchResult, metric_keys, run_bench
from rosetta_cli.bench.splits import GALLERIES

__all__ = ["BenchConfig", "BenchResult", "FROZEN", "GALLERIES", "TASKS", "metric_keys", "run_bench"]
