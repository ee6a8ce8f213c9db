"""Per-frame scene state: where the object, hands, tool and effects are.

Each verb has its own hand trajectory (chopping strokes, peeling strokes, side-to-side
washing, lift-tilt-return pouring, lid twisting, circular stirring). Skill changes the
*timing*, not the action: good = constant speed with tiny smooth noise; bad = hesitant
(stalls and bursts in a time warp) and jerky (per-frame jitter on the hands).
World units: x right, y up, table top at y = 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from rosetta_cli.toy.spec import FPS, GEOM, Episode, Segment

R_REST = (0.3, 0.05)
L_REST = (-0.3, 0.05)
BOWL_DX = 0.36  # pour target, right of the object


@dataclass
class State:
    """Everything the renderer needs for one frame (world units, degrees CCW)."""

    t: float
    label_id: int | None
    obj: str | None
    obj_pos: tuple[float, float] = (0.0, 0.0)
    base_x: float = 0.0  # the object's resting x on the table (props and flakes sit relative to it)
    obj_angle: float = 0.0
    lid_off: tuple[float, float] = (0.0, 0.0)
    lid_angle: float = 0.0
    rhand: tuple[float, float] = R_REST
    lhand: tuple[float, float] = L_REST
    tool: str | None = None  # "knife" | "peeler" | "spoon"
    tool_angle: float = 0.0
    slices: list[float] = field(default_factory=list)  # world x of cut lines
    flakes: int = 0  # peel flakes lying on the table
    stream: tuple[tuple[float, float], tuple[float, float]] | None = None
    drops: list[tuple[float, float]] = field(default_factory=list)
    tap: bool = False
    bowl: bool = False
    swirl: float = 0.0


def time_warp(n: int, skill: str, rng: np.random.Generator) -> np.ndarray:
    """Effective action time [n] (seconds) per frame. Bad skill: stalls and bursts."""
    dt = 1.0 / FPS
    if skill == "good":
        return np.arange(n) * dt
    speed = np.ones(n)
    i = 0
    while i < n:  # alternate normal stretches with stalls (~0.4 s) and rushed bursts
        run = int(rng.integers(3, 9))
        stall = int(rng.integers(2, 5))
        speed[i + run:i + run + stall] = rng.uniform(0.0, 0.15)
        speed[i:i + run] = rng.uniform(0.9, 1.7)
        i += run + stall
    return np.concatenate([[0.0], np.cumsum(speed[:-1]) * dt])


def _smooth(x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    return x * x * (3 - 2 * x)


def _cut(s: State, tau: float, u: float, ox: float) -> None:
    hw, top = GEOM[s.obj]
    x0, span = ox - hw * 0.85, 2 * hw * 0.85
    x = x0 + span * (0.1 + 0.8 * u)
    lift = 0.13 * abs(math.sin(2 * math.pi * 1.5 * tau))
    s.rhand = (x, top * 0.3 + 0.16 + lift)
    s.lhand = (ox - hw - 0.03, top * 0.55)
    s.tool = "knife"
    n_cuts = int(u * 6)
    s.slices = [x0 + span * (0.1 + 0.8 * k / 6) for k in range(1, n_cuts + 1)]


def _peel(s: State, tau: float, u: float, ox: float) -> None:
    hw, top = GEOM[s.obj]
    ph = (1.1 * tau) % 1.0
    if ph < 0.7:  # stroke along the top surface
        x, y = ox - hw * 0.6 + 1.3 * hw * (ph / 0.7), top + 0.1
    else:  # lift and return
        a = (ph - 0.7) / 0.3
        x, y = ox + hw * 0.7 - 1.3 * hw * a, top + 0.1 + 0.1 * math.sin(math.pi * a)
    s.rhand, s.lhand, s.tool = (x, y), (ox - hw - 0.03, top * 0.5), "peeler"
    s.flakes = int(1.1 * tau)


def _wash(s: State, tau: float, u: float, ox: float) -> None:
    hw, top = GEOM[s.obj]
    w = math.sin(2 * math.pi * 0.8 * tau)
    x, y = ox + 0.12 * w, 0.1 + 0.03 * math.sin(2 * math.pi * 1.6 * tau)
    s.obj_pos, s.obj_angle = (x, y), 12 * math.sin(2 * math.pi * 0.8 * tau + 0.5)
    s.rhand, s.lhand = (x + hw + 0.03, y + top * 0.5), (x - hw - 0.03, y + top * 0.5)
    s.tap = True
    s.drops = [(ox + 0.015 * ((k * 3) % 5 - 2), 0.6 - ((1.6 * s.t + k / 7) % 1.0) * 0.62) for k in range(7)]


def _pour(s: State, tau: float, u: float, ox: float, wobble: float) -> None:
    hw, top = GEOM[s.obj]
    lift = _smooth(u / 0.2) * (1 - _smooth((u - 0.88) / 0.12))
    tilt = _smooth((u - 0.2) / 0.15) * (1 - _smooth((u - 0.78) / 0.12))
    pos = (ox + 0.1 * lift, 0.3 * lift)
    ang = -(100 + wobble) * tilt
    s.obj_pos, s.obj_angle, s.bowl = pos, ang, True
    a = math.radians(ang)
    mouth = (pos[0] - math.sin(a) * top, pos[1] + math.cos(a) * top)
    cx, cy = pos[0] - math.sin(a) * top * 0.5, pos[1] + math.cos(a) * top * 0.5
    s.rhand, s.lhand = (cx + 0.02, cy - 0.02), (ox + BOWL_DX - 0.15, 0.04)
    if tilt > 0.6:
        s.stream = (mouth, (ox + BOWL_DX + wobble * 0.004, 0.05))


def _open(s: State, tau: float, u: float, ox: float) -> None:
    hw, top = GEOM[s.obj]
    w = 2 * math.pi * 1.5 * tau
    c = _smooth((u - 0.72) / 0.2)
    s.lid_angle = 12 * math.sin(w) * (1 - c)
    s.lid_off = (0.27 * c, 0.12 * math.sin(math.pi * c))
    s.rhand = (ox + 0.05 * math.cos(w) * (1 - c) + s.lid_off[0], top + 0.05 + s.lid_off[1])
    s.lhand = (ox - hw - 0.03, top * 0.45)


def _stir(s: State, tau: float, u: float, ox: float) -> None:
    hw, top = GEOM[s.obj]
    w = 2 * math.pi * 1.1 * tau
    tip = (ox + 0.13 * math.cos(w), top - 0.01 + 0.025 * math.sin(w))
    s.rhand, s.lhand = (tip[0] + 0.05, tip[1] + 0.22), (ox - hw - 0.07, top * 0.8)
    s.tool, s.tool_angle, s.swirl = "spoon", -12.0, w


def _segment_state(s: State, seg: Segment, tau: float, ox: float, wobble: float) -> None:
    u = min(tau / (seg.end - seg.start), 1.0)
    verb = seg.verb
    if verb == "pour":
        _pour(s, tau, u, ox, wobble)
    else:
        {"cut": _cut, "peel": _peel, "wash": _wash, "open": _open, "stir": _stir}[verb](s, tau, u, ox)


def episode_states(ep: Episode) -> list[State]:
    """One State per frame of the episode [n_frames], deterministic for ep.seed."""
    rng = np.random.default_rng(ep.seed + 17)
    offsets = rng.uniform(-0.06, 0.06, size=len(ep.segments))
    warps = [time_warp(int(round((g.end - g.start) * FPS)) + 1, ep.skill, rng) for g in ep.segments]
    jitter_sd = 0.022 if ep.skill == "bad" else 0.003
    jit = rng.normal(0, jitter_sd, size=(ep.n_frames, 2, 2))
    wob = rng.normal(0, 12 if ep.skill == "bad" else 1, size=ep.n_frames)
    states = []
    for i in range(ep.n_frames):
        t = i / FPS
        k = _active(ep, t)
        if k is None:
            states.append(_idle(ep, t, offsets))
            continue
        seg = ep.segments[k]
        s = State(t, seg.label_id, seg.obj, obj_pos=(float(offsets[k]), 0.0), base_x=float(offsets[k]))
        j = min(int(round((t - seg.start) * FPS)), len(warps[k]) - 1)
        _segment_state(s, seg, float(warps[k][j]), float(offsets[k]), float(wob[i]))
        s.rhand = (s.rhand[0] + jit[i, 0, 0], s.rhand[1] + jit[i, 0, 1])
        s.lhand = (s.lhand[0] + jit[i, 1, 0], s.lhand[1] + jit[i, 1, 1])
        states.append(s)
    return states


def _active(ep: Episode, t: float) -> int | None:
    for k, g in enumerate(ep.segments):
        if g.start <= t < g.end:
            return k
    return None


def _idle(ep: Episode, t: float, offsets: np.ndarray) -> State:
    """Between actions: the next (or last) object rests on the table, hands at rest."""
    nxt = [k for k, g in enumerate(ep.segments) if g.start > t]
    k = nxt[0] if nxt else len(ep.segments) - 1
    d = 0.02 * math.sin(2 * math.pi * 0.5 * t)
    return State(t, None, ep.segments[k].obj, obj_pos=(float(offsets[k]), 0.0), base_x=float(offsets[k]),
                 rhand=(R_REST[0] + d, R_REST[1]), lhand=(L_REST[0] - d, L_REST[1]))
