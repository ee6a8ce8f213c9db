"""The cross-view benchmark (METHOD.md stage 5): retrieval, recognition and skill assessment.

Library entry point: `run_bench` (rosetta_cli.bench.run); metrics are pure functions in
`rosetta_cli.eval.metrics`. Heavy imports (sklearn, torch, matplotlib, av) happen inside functions.
"""

from rosetta_cli.bench.run import FROZEN, GALLERIES, TASKS, BenchConfig, metric_keys, run_bench

__all__ = ["BenchConfig", "FROZEN", "GALLERIES", "TASKS", "metric_keys", "run_bench"]
