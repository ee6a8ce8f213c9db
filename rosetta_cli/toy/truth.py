"""Ground truth of a toy world for evaluation: the true class of every stored clip.

Used to measure the label precision of mined pairs (the paper's claim rst > text > random)
without trusting the noisy narrations.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from rosetta_cli.toy.spec import label_at


def load_world(world_dir) -> dict:
    return json.loads((Path(world_dir) / "world.json").read_text())


def true_labels(world: dict, world_dir, clips) -> np.ndarray:
    """[N] true label_id of each clip at its midpoint (-1 when unknown). clips: Store.clips() DataFrame."""
    root = Path(world_dir).resolve()
    videos = {str((root / k).resolve()): v for k, v in world["videos"].items()}
    out = np.full(len(clips), -1, dtype=np.int64)
    for i, (video, start, end) in enumerate(zip(clips["video"], clips["start"], clips["end"])):
        entry = videos.get(str(Path(video).resolve()))
        if entry is None:
            continue
        end = entry["duration_sec"] if not np.isfinite(end) else end
        lab = label_at(entry["segments"], (float(start) + float(end)) / 2)
        out[i] = -1 if lab is None else lab
    return out


def pair_precision(pairs, ego_labels: np.ndarray, exo_labels: np.ndarray, rank: int = 0) -> float:
    """Share of mined pairs (at `rank`) whose ego and exo clips have the same true class.

    pairs: Store.pairs() DataFrame; *_labels: true_labels of the ego and exo stores.
    """
    p = pairs[pairs["rank"] == rank]
    q, c = ego_labels[p["query_row"].to_numpy()], exo_labels[p["candidate_row"].to_numpy()]
    known = (q >= 0) & (c >= 0)
    return float((q[known] == c[known]).mean()) if known.any() else float("nan")


def kitchen_of(world: dict, world_dir, clips) -> np.ndarray:
    """[N] kitchen id of each clip's video (-1 when the video is not in the world)."""
    root = Path(world_dir).resolve()
    vids = {str((root / k).resolve()): v.get("kitchen", -1) for k, v in world["videos"].items()}
    return np.array([vids.get(str(Path(v).resolve()), -1) for v in clips["video"]], dtype=np.int64)
