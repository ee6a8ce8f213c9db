"""Synthetic feature stores for tests and benchmarks (no stage imports this package).

  pretrain_world.py   paired / unpaired stores with known cross-view structure (pretrain tests, benchmarks/pretrain.py)
  bench_stores.py     benchmark-shaped ego/exo stores with labels and takes (bench tests, benchmarks/bench.py)
"""
