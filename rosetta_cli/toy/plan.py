"""The world plan: which videos exist, their ids, splits, episodes and narrations.

Planning is pure seeded sampling (no pixels), so annotation files can be written from
the plan and tests can check them against world.json.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import numpy as np

from rosetta_cli.toy.spec import FPS, SCALES, Episode, Scale, sample_episode
from rosetta_cli.toy.text import ego4d_narration, htm_narration

EGO_FILE = "aria01_214-1.mp4"
_YT = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@dataclass
class VideoPlan:
    """One episode and the files it renders to. files: {cam_id: path relative to the world root}."""

    dataset: str  # "egoexo4d" | "ego4d" | "htm-aa"
    uid: str  # take_uid / video_uid / vid
    name: str  # take_name (egoexo4d) or uid
    split: str  # "train" | "val" (egoexo4d), "unpaired" otherwise
    ep: Episode
    files: dict[str, str]
    exo_styles: list[int] = field(default_factory=list)
    narrations: list[dict] = field(default_factory=list)


def _uuid(rng: np.random.Generator) -> str:
    return str(uuid.UUID(bytes=rng.bytes(16), version=4))


def _yt_id(rng: np.random.Generator) -> str:
    return "".join(_YT[i] for i in rng.integers(0, len(_YT), 11))


def _paired(rng: np.random.Generator, sc: Scale) -> list[VideoPlan]:
    n = sc.paired_takes
    n_val = min(max(1, round(sc.val_fraction * n)), n - 1) if n > 1 else 0
    val = set(rng.permutation(n)[:n_val].tolist())
    out = []
    for i in range(n):
        name = f"toykitchen_cooking_{i + 1:03d}_1"
        base = f"egoexo4d/takes/{name}/frame_aligned_videos"
        files = {"aria01": f"{base}/{EGO_FILE}"} | {f"cam{k + 1:02d}": f"{base}/cam{k + 1:02d}.mp4" for k in range(sc.exo_cams)}
        ep = sample_episode(rng, "paired", i, sc, None if i in val else sc.paired_train_classes)
        out.append(VideoPlan("egoexo4d", _uuid(rng), name, "val" if i in val else "train", ep, files,
                             exo_styles=list(range(sc.exo_cams))))
    return out


def _ego(rng: np.random.Generator, sc: Scale) -> list[VideoPlan]:
    out = []
    for i in range(sc.ego_videos):
        uid, ep = _uuid(rng), sample_episode(rng, "ego", i, sc)
        p = VideoPlan("ego4d", uid, uid, "unpaired", ep, {"aria01": f"ego4d/v2/full_scale/{uid}.mp4"})
        for g in ep.segments:  # one narration per action, near its midpoint
            mid = (g.start + g.end) / 2 + rng.uniform(-0.15, 0.15) * (g.end - g.start)
            text, kind = ego4d_narration(rng, g.label_id)
            p.narrations.append({"timestamp_sec": round(float(mid), 3), "timestamp_frame": int(round(mid * FPS)),
                                 "narration_text": text, "annotation_uid": _uuid(rng), "kind": kind,
                                 "true_label_id": g.label_id})
        out.append(p)
    return out


def _pick_neighbour(rng: np.random.Generator, labels: list[int]) -> int | None:
    return int(labels[int(rng.integers(len(labels)))]) if labels else None


def _htm(rng: np.random.Generator, sc: Scale) -> list[VideoPlan]:
    out, seen = [], set()
    for i in range(sc.htm_videos):
        vid = _yt_id(rng)
        while vid in seen:
            vid = _yt_id(rng)
        seen.add(vid)
        ep = sample_episode(rng, "htm", i, sc)
        style = int(rng.integers(3))
        p = VideoPlan("htm-aa", vid, vid, "unpaired", ep, {"cam01": f"htm-aa/videos/{vid}.mp4"}, exo_styles=[style])
        for k, g in enumerate(ep.segments):  # integer-second timestamps, as in HTM-AA
            near = [ep.segments[j].label_id for j in (k - 1, k + 1) if 0 <= j < len(ep.segments)]
            text, kind = htm_narration(rng, g.label_id, _pick_neighbour(rng, near))
            p.narrations.append({"timestamp": int(round((g.start + g.end) / 2)), "text": text, "kind": kind,
                                 "true_label_id": g.label_id})
        out.append(p)
    return out


def plan_world(scale: str, seed: int) -> list[VideoPlan]:
    """All videos of the world, deterministic for (scale, seed). Sub-streams keep each set independent."""
    sc = SCALES[scale]
    ss = np.random.SeedSequence([seed, 8]).spawn(3)
    rngs = [np.random.default_rng(s) for s in ss]
    return _paired(rngs[0], sc) + _ego(rngs[1], sc) + _htm(rngs[2], sc)
