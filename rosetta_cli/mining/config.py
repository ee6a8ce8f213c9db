"""Configuration of `rosetta mine` and the constants its documentation promises."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

STRATEGIES = ("rst", "visual", "text", "random")
INDEX_KINDS = ("auto", "flat", "ivf", "hnsw")
DEVICES = ("auto", "cpu", "cuda")

# Ranks in the pairs store are 0-based (rank 0 = best candidate).
RANK_BASE = 0
TIE_RULE = "equal scores: lower candidate row first"

# --index auto (measured on the 2-core dev machine, docs/benchmarks.md):
# exact IndexFlatIP runs at ~160 GFLOP/s at D=1664, so n_query * n_cand * dim <= FLAT_MAX_WORK
# (~4 min) stays exact; IVF is also pointless below IVF_MIN_CANDIDATES candidates.
FLAT_MAX_WORK = 2e13
IVF_MIN_CANDIDATES = 50_000
AUTO_RECALL_TARGET = 0.97  # calibrate nprobe to this recall@1 (index space) so end-to-end stays >= 0.95
CALIBRATION_QUERIES = 1000
IVF_TRAIN_PER_LIST = 40     # k-means training points per list (faiss warns below 39)
IVF_KMEANS_ITERS = 12
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128
PCA_SAMPLE_ROWS = 65536
DEFAULT_BLOCK_ROWS = 16384


@dataclass
class MineConfig:
    """Everything that determines a mining run (recorded in the pairs store's meta)."""

    ego: Path
    exo: Path
    out: Path
    translated: Path | None = None
    strategy: str = "rst"
    topk: int = 1
    text_weight: float | None = None   # None: 0.5 for rst, 0.0 for visual (see default_text_weight)
    index: str = "auto"
    nlist: int | None = None
    nprobe: int | None = None          # IVF lists probed; for hnsw: efSearch
    pca: int | None = None             # project combined vectors to this many dims (None: no PCA)
    index_cache: Path | None = None
    check_recall: int = 0
    device: str = "auto"
    shard: tuple[int, int] | None = None  # None: torchrun RANK/WORLD_SIZE, else (0, 1)
    block_rows: int = DEFAULT_BLOCK_ROWS
    seed: int = 0
    overwrite: bool = False


def default_text_weight(strategy: str) -> float:
    """rst: the paper's plain concatenation (W=0.5); visual: the vision-only baseline (W=0)."""
    return {"rst": 0.5, "visual": 0.0, "text": 1.0}.get(strategy, 0.0)
