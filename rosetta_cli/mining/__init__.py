"""Stage 3: mine pseudo-pairs between unpaired ego and exo clips (`rosetta mine`).

Entry point: `mine(MineConfig(...))` → `MineResult`. Layout:
  config.py   MineConfig and the documented constants (tie rule, auto-index thresholds)
  vectors.py  input checks and the query/candidate vectors each strategy ranks by
  index.py    faiss index choice, build, cache, GPU transfer, nprobe calibration
  search.py   top-k with the tie rule, random candidates, exact streaming search
  run.py      the block-streamed, resumable, shardable run that writes the pairs store
faiss is imported only inside functions, so importing this package is cheap.
"""

from rosetta_cli.mining.config import STRATEGIES, MineConfig
from rosetta_cli.mining.run import MineResult, mine, shard_output_path

__all__ = ["MineConfig", "MineResult", "STRATEGIES", "mine", "shard_output_path"]
