"""Stage 3: mine pseudo-pairs between unpaired ego and exo clips (`rosetta mine`).

Entry point: `rosetta_cli.mining.run.run(MineConfig(...), progress)` → `MineResult` (the stage shape of
docs/architecture.md; `run` stays the module's name here, as `rst.translate` is). Layout:
  config.py   MineConfig and the documented constants (tie rule, auto-index thresholds)
  vectors.py  input checks and the query/candidate vectors each strategy ranks by
  index.py    the index plan (choose_plan: CPU rules, or GPU fp16 flat / GPU IVF), build, cache, GPU transfer,
              nprobe calibration
  search.py   top-k with the tie rule, random candidates, exact streaming search, ShardedFlat (GPU blocks)
  run.py      the block-streamed, resumable, shardable run that writes the pairs store; the recall check
faiss is imported only inside functions, so importing this package is cheap.
"""

from rosetta_cli.mining.config import STRATEGIES, MineConfig
from rosetta_cli.mining.run import MineResult, shard_output_path

__all__ = ["MineConfig", "MineResult", "STRATEGIES", "shard_output_path"]
