"""The feature-store schema: names, dtypes and codes. docs/store-format.md mirrors this file."""

from __future__ import annotations

FORMAT = "rosetta-store"
FORMAT_VERSION = 1
META_KEY = "rosetta"  # root attribute holding all metadata (zarr: a JSON object; HDF5: a JSON string)

KINDS = ("features", "translations", "pairs", "embeddings")
ROW_KINDS = ("features", "translations", "embeddings")  # kinds with a clip table and features

# Per-row status codes (array `status`, uint8).
PENDING, DONE, FAILED = 0, 1, 2
STATUS_NAMES = {PENDING: "pending", DONE: "done", FAILED: "failed"}

VIEWS = ("ego", "exo")

# Rows of these splits are the benchmark's test data: no training stage (train-rst, pretrain)
# ever pairs them, so `rosetta bench` measures clips the models have not seen.
EVAL_SPLITS = ("test", "val")

# Clip table: aligned 1-D arrays under `clips/`. label and skill are int32 codes into
# the vocabularies `labels` / `skills` in the metadata (-1 = none).
CLIP_STR_COLUMNS = ("clip_id", "video", "view", "sync_id", "narration", "split")
CLIP_FLOAT_COLUMNS = ("start", "end")
CLIP_CODE_COLUMNS = ("label", "skill")
CLIP_COLUMNS = ("clip_id", "video", "start", "end", "view", "sync_id", "narration", "label", "skill", "split")

# Pairs store: aligned 1-D arrays under `pairs/`, one row per (query, rank).
PAIR_COLUMNS = {
    "query_row": "int64",
    "query_clip_id": "str",
    "candidate_row": "int64",
    "candidate_clip_id": "str",
    "rank": "int32",
    "score": "float32",
    "weight": "float32",
}

DEFAULT_CHUNK_ROWS = 1024
DEFAULT_CODEC = "none"  # features: fp16 CNN features do not compress (measured ~1.00x), and blosc costs 2-3x read speed
# (docs/benchmarks.md); pass codec="lz4"/"zstd" to Store.create for compressible data.


def backend_for(path) -> str:
    """'zarr' or 'hdf5' from the path suffix, or None if the suffix is not a store's."""
    s = str(path).rstrip("/").lower()
    if s.endswith(".zarr"):
        return "zarr"
    if s.endswith((".h5", ".hdf5")):
        return "hdf5"
    return None
