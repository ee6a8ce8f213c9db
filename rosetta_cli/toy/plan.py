"""The world plan: which kitchens and videos exist, their ids, splits, episodes and narrations.

Planning is pure seeded sampling (no pixels), so annotation files can be written from
the plan and tests can check them against world.json.

Where each video is filmed (`Scale` documents the ids): paired training takes and benchmark
(split "val") takes round robin over the Ego-Exo4D kitchens (the benchmark's own kitchens under
the harder protocol), Ego4D videos in a kitchen drawn uniformly from the Ego4D kitchens, HTM
videos from the HTM kitchens.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import numpy as np

from rosetta_cli.toy.kitchen import Kitchen, sample_kitchens
from rosetta_cli.toy.spec import FPS, SCALES, ClassDeck, Episode, Scale, sample_episode
from rosetta_cli.toy.text import atomic_description, ego4d_narration, htm_narration, idle_description

EGO_FILE = "aria01_214-1.mp4"
_YT = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# Atomic descriptions: a second description of a keystep, one for an idle gap, a rejected
# second annotator pass (Ego-Exo4D keeps rejected annotations in the file, flagged), and the
# share of descriptions whose action is not visible from the ego camera.
P_SECOND_DESC, P_IDLE_DESC, P_REJECTED, P_NOT_EGO_VISIBLE = 0.35, 0.3, 0.2, 0.08


@dataclass
class VideoPlan:
    """One episode and the files it renders to. files: {cam_id: path relative to the world root}.

    kitchen: the setting it is filmed in; exo_styles[k]: which of the kitchen's exo placements
    camera k uses; narrations: Ego4D/HTM narrations; descriptions: Ego-Exo4D atomic description
    annotations (paired takes), each {annotation_uid, annotator_id, rejected, reject_reason,
    descriptions: [{text, timestamp, subject, ego_visible, unsure, best_exo, kind, true_label_id}]}.
    """

    dataset: str  # "egoexo4d" | "ego4d" | "htm-aa"
    uid: str  # take_uid / video_uid / vid
    name: str  # take_name (egoexo4d) or uid
    split: str  # "train" | "val" (egoexo4d), "unpaired" otherwise
    ep: Episode
    files: dict[str, str]
    kitchen: Kitchen
    exo_styles: list[int] = field(default_factory=list)
    narrations: list[dict] = field(default_factory=list)
    descriptions: list[dict] = field(default_factory=list)


def _uuid(rng: np.random.Generator) -> str:
    return str(uuid.UUID(bytes=rng.bytes(16), version=4))


def _yt_id(rng: np.random.Generator) -> str:
    return "".join(_YT[i] for i in rng.integers(0, len(_YT), 11))


def _take(rng: np.random.Generator, sc: Scale, i: int, split: str, kitchen: Kitchen, deck: ClassDeck) -> VideoPlan:
    name = f"toykitchen{kitchen.id:02d}_cooking_{i + 1:03d}_1"
    base = f"egoexo4d/takes/{name}/frame_aligned_videos"
    files = {"aria01": f"{base}/{EGO_FILE}"} | {f"cam{k + 1:02d}": f"{base}/cam{k + 1:02d}.mp4" for k in range(sc.exo_cams)}
    ep = sample_episode(rng, "paired", i, sc, deck=deck)
    p = VideoPlan("egoexo4d", _uuid(rng), name, split, ep, files, kitchen, exo_styles=list(range(sc.exo_cams)))
    p.descriptions = _atomic_annotations(rng, p)
    return p


def _paired(rng: np.random.Generator, sc: Scale, kitchens: list[Kitchen]) -> list[VideoPlan]:
    """Paired training takes round robin over the paired kitchens, then benchmark takes over theirs."""
    train_deck = ClassDeck(sc.paired_train_classes or sc.n_classes)
    bench_deck = ClassDeck(sc.n_classes)
    pk, bk = sc.kitchen_ids("paired"), sc.kitchen_ids("benchmark")
    out = [_take(rng, sc, i, "train", kitchens[pk[i % len(pk)]], train_deck) for i in range(sc.paired_train_takes)]
    for j in range(sc.bench_takes):
        out.append(_take(rng, sc, sc.paired_train_takes + j, "val", kitchens[bk[j % len(bk)]], bench_deck))
    return out


def _description(rng: np.random.Generator, t: float, text: str, kind: str, label: int | None, cams: list[str]) -> dict:
    return {"text": text, "timestamp": round(float(t), 3), "subject": "C",
            "ego_visible": bool(rng.random() >= P_NOT_EGO_VISIBLE), "unsure": kind == "unsure",
            "best_exo": {"cam_id": cams[int(rng.integers(len(cams)))]}, "kind": kind, "true_label_id": label}


def _descriptions(rng: np.random.Generator, ep: Episode, cams: list[str], rejected: bool) -> list[dict]:
    """Timestamped descriptions: 1-2 inside each keystep segment, sometimes one in the gap after it.

    A rejected pass is careless: every description names the wrong object.
    """
    out = []
    for k, g in enumerate(ep.segments):
        n = 2 if rng.random() < P_SECOND_DESC else 1
        for m in range(n):
            t = g.start + (g.end - g.start) * (m + rng.uniform(0.15, 0.85)) / n
            text, kind = atomic_description(rng, g.label_id, "wrong_object" if rejected else None)
            kind = "rejected" if rejected else kind
            out.append(_description(rng, t, text, kind, g.label_id, cams))
        gap_end = ep.segments[k + 1].start if k + 1 < len(ep.segments) else ep.duration
        if not rejected and gap_end - g.end > 0.25 and rng.random() < P_IDLE_DESC:
            text, kind = idle_description(rng)
            out.append(_description(rng, (g.end + gap_end) / 2, text, kind, None, cams))
    return out


def _atomic_annotations(rng: np.random.Generator, p: VideoPlan) -> list[dict]:
    """One accepted annotation per take, sometimes followed by a rejected one."""
    cams = [c for c in p.files if c.startswith("cam")]
    anns = [{"annotation_uid": _uuid(rng), "annotator_id": f"annotator_{int(rng.integers(1, 40)):02d}", "rejected": False,
             "reject_reason": None, "descriptions": _descriptions(rng, p.ep, cams, rejected=False)}]
    if rng.random() < P_REJECTED:
        anns.append({"annotation_uid": _uuid(rng), "annotator_id": f"annotator_{int(rng.integers(40, 60)):02d}",
                     "rejected": True, "reject_reason": "inaccurate descriptions",
                     "descriptions": _descriptions(rng, p.ep, cams, rejected=True)})
    return anns


def _ego(rng: np.random.Generator, sc: Scale, kitchens: list[Kitchen]) -> list[VideoPlan]:
    out, kitchens = [], [kitchens[k] for k in sc.kitchen_ids("ego4d")]
    for i in range(sc.ego_videos):
        uid, ep = _uuid(rng), sample_episode(rng, "ego", i, sc)
        kitchen = kitchens[int(rng.integers(len(kitchens)))]
        p = VideoPlan("ego4d", uid, uid, "unpaired", ep, {"aria01": f"ego4d/v2/full_scale/{uid}.mp4"}, kitchen)
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


def _htm(rng: np.random.Generator, sc: Scale, kitchens: list[Kitchen]) -> list[VideoPlan]:
    out, seen, kitchens = [], set(), [kitchens[k] for k in sc.kitchen_ids("htm")]
    for i in range(sc.htm_videos):
        vid = _yt_id(rng)
        while vid in seen:
            vid = _yt_id(rng)
        seen.add(vid)
        ep = sample_episode(rng, "htm", i, sc)
        kitchen = kitchens[int(rng.integers(len(kitchens)))]
        style = int(rng.integers(len(kitchen.exo)))  # the video's one camera, at one of the kitchen's placements
        p = VideoPlan("htm-aa", vid, vid, "unpaired", ep, {"cam01": f"htm-aa/videos/{vid}.mp4"}, kitchen, exo_styles=[style])
        for k, g in enumerate(ep.segments):  # integer-second timestamps, as in HTM-AA
            near = [ep.segments[j].label_id for j in (k - 1, k + 1) if 0 <= j < len(ep.segments)]
            text, kind = htm_narration(rng, g.label_id, _pick_neighbour(rng, near))
            p.narrations.append({"timestamp": int(round((g.start + g.end) / 2)), "text": text, "kind": kind,
                                 "true_label_id": g.label_id})
        out.append(p)
    return out


def _streams(seed: int) -> list[np.random.SeedSequence]:
    """Independent sub-streams: paired takes, Ego4D videos, HTM videos, kitchens."""
    return np.random.SeedSequence([seed, 8]).spawn(4)


def get_scale(scale: str, bench_new_kitchens: int = 0) -> Scale:
    """A named scale under a benchmark protocol (0: held-out takes, the paper's; k: k held-out kitchens)."""
    sc = SCALES[scale]
    return sc.with_protocol(bench_new_kitchens) if bench_new_kitchens else sc


def plan_kitchens(scale: str, seed: int, bench_new_kitchens: int = 0) -> list[Kitchen]:
    """The scale's kitchens, deterministic for (scale, seed): the same ones plan_world films in."""
    sc = get_scale(scale, bench_new_kitchens)
    return sample_kitchens(_streams(seed)[3], sc.n_kitchens, max(sc.exo_cams, 1))


def plan_world(scale: str, seed: int, bench_new_kitchens: int = 0) -> list[VideoPlan]:
    """All videos of the world, deterministic for (scale, seed, protocol). Sub-streams keep each set independent."""
    sc = get_scale(scale, bench_new_kitchens)
    rngs = [np.random.default_rng(s) for s in _streams(seed)[:3]]
    kitchens = plan_kitchens(scale, seed, bench_new_kitchens)
    return _paired(rngs[0], sc, kitchens) + _ego(rngs[1], sc, kitchens) + _htm(rngs[2], sc, kitchens)
