"""Configuration of `rosetta mine` and the constants its documentation promises."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rosetta_cli.errors import UsageError
from rosetta_cli.runtime.shard import parse_shard
from rosetta_cli.store.schema import backend_for

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
# The recall check (on by default for approximate search): exact full-space search on this many
# sampled queries; below RECALL_WARN_BELOW (recall@1 or recall@k) the run warns.
RECALL_CHECK_QUERIES = 256
RECALL_WARN_BELOW = 0.95
IVF_TRAIN_PER_LIST = 40     # k-means training points per list (faiss warns below 39)
# An IVF index holds every candidate vector. Above this many bytes in float32 (n_cand x dim x 4), it stores
# them in float16 instead (faiss IndexIVFScalarQuantizer QT_fp16): at the paper's 1.25M x 1,664 dims that is
# 4.2 GB instead of 8.3 GB, and the stores' features are float16 already (docs/benchmarks.md, "Paper scale").
IVF_FP32_MAX_BYTES = 2 << 30
IVF_KMEANS_ITERS = 12
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128
PCA_SAMPLE_ROWS = 65536
DEFAULT_BLOCK_ROWS = 16384


@dataclass
class MineConfig:
    """Everything that determines a mining run (recorded in the pairs store's meta). Validated by check()."""

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
    check_recall: int | None = None    # queries sampled for the recall check; None: RECALL_CHECK_QUERIES; 0: off
    device: str = "auto"
    shard: str | None = None           # "I/N" (runtime.shard); None: torchrun RANK/WORLD_SIZE, else 0/1
    block_rows: int = DEFAULT_BLOCK_ROWS
    seed: int = 0
    overwrite: bool = False            # replace a finished OUT
    resume: bool = True                # continue OUT.partial/ left by an interrupted run with the same key

    def check(self) -> None:
        """Raise UsageError (one line naming the flag) for an invalid option; never changes the config."""
        if self.strategy not in STRATEGIES:
            raise UsageError(f"--strategy {self.strategy!r}: choose one of {', '.join(STRATEGIES)}")
        if self.index not in INDEX_KINDS:
            raise UsageError(f"--index {self.index!r}: choose one of {', '.join(INDEX_KINDS)}")
        if self.device not in DEVICES:
            raise UsageError(f"--device {self.device!r}: choose one of {', '.join(DEVICES)}")
        if backend_for(self.out) is None:
            raise UsageError(f"--out {self.out}: a pairs store path must end in .zarr or .h5")
        for flag, v in (("--topk", self.topk), ("--block-rows", self.block_rows), ("--nlist", self.nlist),
                        ("--nprobe", self.nprobe), ("--pca", self.pca)):
            if v is not None and v < 1:
                raise UsageError(f"{flag} {v}: must be at least 1")
        if self.check_recall is not None and self.check_recall < 0:
            raise UsageError(f"--check-recall {self.check_recall}: must be >= 0 (0 turns the check off)")
        parse_shard(self.shard)

    @property
    def recall_queries(self) -> int:
        """Queries the recall check samples (0: off)."""
        return RECALL_CHECK_QUERIES if self.check_recall is None else self.check_recall


def default_text_weight(strategy: str) -> float:
    """rst: the paper's plain concatenation (W=0.5); visual: the vision-only baseline (W=0)."""
    return {"rst": 0.5, "visual": 0.0, "text": 1.0}.get(strategy, 0.0)

# --device cuda (mining/index.choose_plan): exact flat search holds the candidates as fp16 on the GPUs,
# in blocks of at most GPU_FLAT_BLOCK_BYTES each (one GpuIndexFlatIP per block), when all of them fit
# GPU_MEM_FRACTION of the GPUs' memory (the rest is faiss's scratch space and the query blocks).
GPU_FLAT_BLOCK_BYTES = 8 << 30
GPU_MEM_FRACTION = 0.6
