"""Render a whole toy world: plan → videos → annotation files → world.json."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np

from rosetta_cli.errors import UsageError
from rosetta_cli.toy.cameras import Look, make_cameras
from rosetta_cli.toy.motion import episode_states
from rosetta_cli.toy.plan import VideoPlan, get_scale, plan_world
from rosetta_cli.toy.spec import FPS, SCALES, SIZE
from rosetta_cli.toy.video import Mp4Writer
from rosetta_cli.toy.writers import write_ego4d, write_egoexo4d, write_htm, write_world

OUTPUTS = ("egoexo4d", "ego4d", "htm-aa", "world.json")  # everything render_world writes under out_dir

Progress = Callable[[int, int, str], None]  # (videos done, videos total, what was just rendered)


def render_video(plan: VideoPlan, out_dir: Path) -> int:
    """Render one episode to all its cameras at once (synchronized). Returns frames written."""
    ep = plan.ep
    rng = np.random.default_rng([ep.seed, 1])
    look = Look.sample(rng)
    ego = "aria01" in plan.files
    n_exo = sum(c.startswith("cam") for c in plan.files)
    cams = make_cameras(look, ep.n_frames, n_exo, rng, ego=ego, styles=plan.exo_styles, kitchen=plan.kitchen)
    writers = {c: Mp4Writer(out_dir / plan.files[c], FPS, SIZE) for c in cams}
    try:
        for i, s in enumerate(episode_states(ep)):
            for c, cam in cams.items():
                writers[c].write(cam.render(s, i))
    finally:
        for w in writers.values():
            w.close()
    return ep.n_frames * len(cams)


def render_world(out_dir: str | Path, scale: str = "tiny", seed: int = 0, progress: Progress | None = None,
                 bench_new_kitchens: int = 0) -> dict:
    """Render the toy world under out_dir (see rosetta_cli.toy for the layout). Returns a summary dict.

    Deterministic for (scale, seed, bench_new_kitchens). Overwrites files it produces; callers
    decide whether an existing directory may be reused. bench_new_kitchens > 0 films the
    benchmark in that many Ego-Exo4D kitchens no paired take shows (the harder protocol).
    """
    if scale not in SCALES:
        raise UsageError(f"unknown toy scale {scale!r}", hint=f"use one of {', '.join(SCALES)}")
    try:
        sc = get_scale(scale, bench_new_kitchens)
    except ValueError as e:
        raise UsageError(str(e), hint=f"--held-out-kitchens must be below {SCALES[scale].egoexo_kitchens}") from None
    out, t0 = Path(out_dir), time.perf_counter()
    plans = plan_world(scale, seed, bench_new_kitchens)
    frames = 0
    for k, p in enumerate(plans):
        frames += render_video(p, out)
        if progress:
            progress(k + 1, len(plans), f"{p.dataset}/{p.name}")
    by = {d: [p for p in plans if p.dataset == d] for d in ("egoexo4d", "ego4d", "htm-aa")}
    write_egoexo4d(out / "egoexo4d", by["egoexo4d"], sc, seed)
    write_ego4d(out / "ego4d", by["ego4d"])
    write_htm(out / "htm-aa", by["htm-aa"])
    write_world(out, plans, sc, seed)  # last: its presence marks a complete world
    return summarize(out, plans, sc, seed, frames, time.perf_counter() - t0)


def summarize(out: Path, plans: list[VideoPlan], sc, seed: int, frames: int, seconds: float) -> dict:
    """Counts of what was rendered; `clips` is what `rosetta extract` makes of each set by default."""
    paired = [p for p in plans if p.dataset == "egoexo4d"]
    narr = [n for p in plans for n in p.narrations]
    descs = [d for p in paired for a in p.descriptions if not a["rejected"] for d in a["descriptions"]]
    kitchens = lambda ps: sorted({p.kitchen.id for p in ps})
    train, val = [p for p in paired if p.split == "train"], [p for p in paired if p.split == "val"]
    return {
        "out_dir": str(out), "scale": sc.name, "seed": seed, "classes": sc.n_classes,
        "paired_takes": len(paired), "paired_train": len(train), "paired_val": len(val), "exo_cams": sc.exo_cams,
        "ego4d_videos": sum(p.dataset == "ego4d" for p in plans), "htm_videos": sum(p.dataset == "htm-aa" for p in plans),
        "kitchens": sc.n_kitchens, "paired_train_kitchens": kitchens(train), "benchmark_kitchens": kitchens(val),
        "benchmark_protocol": "held-out kitchens" if sc.bench_new_kitchens else "held-out takes",
        "ego4d_kitchens": kitchens([p for p in plans if p.dataset == "ego4d"]),
        "htm_kitchens": kitchens([p for p in plans if p.dataset == "htm-aa"]),
        "benchmark_ego_queries": sum(len(p.ep.segments) for p in val),
        "benchmark_exo_clips": sum(len(p.ep.segments) * sum(c.startswith("cam") for c in p.files) for p in val),
        "clips": {"paired_train": _clips(train), "benchmark": _clips(val),
                  "ego4d": sum(len(p.narrations) for p in plans if p.dataset == "ego4d"),
                  "htm": sum(len(p.narrations) for p in plans if p.dataset == "htm-aa")},
        "video_files": sum(len(p.files) for p in plans), "frames": frames,
        "keystep_segments": sum(len(p.ep.segments) for p in paired), "narrations": len(narr),
        "narrations_wrong_object": sum(n["kind"] == "wrong_object" for n in narr),
        "atomic_descriptions": len(descs), "seconds": round(seconds, 2),
    }


def _clips(takes: list[VideoPlan]) -> int:
    """Keystep clips of takes: one per segment and camera (ego + every exo)."""
    return sum(len(p.ep.segments) * len(p.files) for p in takes)
