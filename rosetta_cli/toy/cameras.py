"""Cameras: a moving head-mounted ego camera and static wide exo cameras.

Ego: close-up from the actor's head on the kitchen's table top (its texture, the distractor
objects standing on it) — the object fills much of the frame, the forearms enter from the
bottom, and the view pans toward the working hand with head jitter and roll. Exo: a fixed
wide shot from one of the kitchen's camera placements (the wall it faces, its decor, the
floor), the whole stick/blob actor behind the table, the object small. Both views of a take
are rendered from the same kitchen under the same lighting gain.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image

from rosetta_cli.toy.draw import (Canvas, blank, draw_distractor, draw_effects, draw_object, draw_props, draw_tool,
                                  lighting_lut, rect)
from rosetta_cli.toy.kitchen import ExoView, Kitchen, default_kitchen
from rosetta_cli.toy.motion import State
from rosetta_cli.toy.spec import SIZE


@dataclass
class Look:
    """Per-take appearance of the actor (the setting's colours are the kitchen's)."""

    skin: tuple
    shirt: tuple
    pants: tuple
    hair: tuple

    @staticmethod
    def sample(rng: np.random.Generator) -> "Look":
        shirts = [(40, 60, 160), (30, 130, 120), (120, 120, 120), (160, 40, 90), (70, 70, 50), (200, 90, 30),
                  (230, 230, 225), (25, 25, 30), (90, 150, 210), (120, 60, 140), (60, 120, 50), (210, 180, 60)]
        skin = [(235, 190, 150), (200, 150, 110), (150, 100, 70), (245, 205, 170), (110, 75, 50)]
        hair = [(40, 30, 20), (20, 20, 20), (120, 80, 40), (200, 170, 110), (150, 150, 150)]
        return Look(skin[rng.integers(len(skin))], shirts[rng.integers(len(shirts))],
                    tuple(int(x) for x in rng.integers(20, 90, 3)), hair[rng.integers(len(hair))])


def _jitter_colour(c, rng, amount=14):
    return tuple(int(np.clip(v + rng.integers(-amount, amount + 1), 0, 255)) for v in c)


class ExoCamera:
    """A static wide camera at one of the kitchen's exo placements. render(state) -> uint8 [SIZE, SIZE, 3]."""

    def __init__(self, view: ExoView, kitchen: Kitchen, look: Look, rng: np.random.Generator):
        s = view.scale * rng.uniform(0.92, 1.08)  # the camera is re-placed a little per take
        self.M = np.array([[s * view.flip * view.squash, s * view.shear], [0.0, -s]])
        pc = np.array(view.pc, float) + rng.uniform(-5, 5, 2)
        self.b = pc - self.M @ np.array(view.wc)
        self.look, self.lut = look, lighting_lut(kitchen.gain)
        self.bg = self._background(view, kitchen, rng)

    def _background(self, view: ExoView, kitchen: Kitchen, rng) -> Image.Image:
        """Static layers: wall + decor, floor, the actor's legs and torso, the table and what stands on it."""
        img = blank(SIZE, _jitter_colour(view.wall, rng, 6))
        cv = Canvas(img, self.M, self.b)
        cv.poly(rect(-4, -3, 4, -0.55), kitchen.floor)
        for d in view.decor:
            cv.poly(rect(d.x0, d.y0, d.x1, d.y1), d.colour)
        lk = self.look
        for x in (-0.07, 0.07):
            cv.line((x, 0.0), (x * 1.2, -0.55), 0.08, lk.pants)
        cv.line((0, 0.05), (0, 0.55), 0.24, lk.shirt)
        x0, x1 = kitchen.table_span
        cv.poly(rect(x0, -0.05, x1, 0.0), kitchen.table)
        for x in (x0 + 0.05, x1 - 0.1):
            cv.poly(rect(x, -0.55, x + 0.05, -0.05), tuple(int(c * 0.7) for c in kitchen.table))
        for d in kitchen.distractors:
            draw_distractor(cv, d)
        return img

    def render(self, s: State, i: int) -> np.ndarray:
        img = self.bg.copy()
        cv = Canvas(img, self.M, self.b)
        lk = self.look
        head = (0.25 * (s.rhand[0] + s.lhand[0]) / 2, 0.76)
        cv.disc(head, 0.1, lk.skin)
        cv.poly(rect(head[0] - 0.1, 0.8, head[0] + 0.1, 0.86), lk.hair)
        ox = _base_x(s)
        draw_props(cv, s, ox)
        draw_object(cv, s)
        _arm(cv, (-0.14, 0.5), s.lhand, -1, lk)
        draw_tool(cv, s)
        _arm(cv, (0.14, 0.5), s.rhand, 1, lk)
        draw_effects(cv, s, ox)
        return np.asarray(img.point(self.lut))  # the room's lighting, on everything in view


def _base_x(s: State) -> float:
    """Where the action happens on the table (the object's resting x)."""
    return s.base_x


def _arm(cv: Canvas, shoulder, hand, side: int, lk: Look) -> None:
    """Upper arm + forearm with the elbow pushed outward and down."""
    sh, hd = np.asarray(shoulder), np.asarray(hand)
    elbow = (sh + hd) / 2 + np.array([0.08 * side, -0.1])
    cv.line(sh, elbow, 0.06, lk.shirt)
    cv.line(elbow, hd, 0.05, lk.skin)
    cv.disc(hd, 0.035, lk.skin)


class EgoCamera:
    """Head-mounted camera: close-up on the kitchen's table top, panning toward the hands, with jitter and roll."""

    def __init__(self, look: Look, kitchen: Kitchen, n_frames: int, rng: np.random.Generator):
        self.look, self.kitchen, self.lut = look, kitchen, lighting_lut(kitchen.gain)
        self.s = 225 * rng.uniform(0.92, 1.08)
        self.walk = np.cumsum(rng.normal(0, 0.006, size=(n_frames, 2)), 0) * 0.5 + rng.normal(0, 0.008, (n_frames, 2))
        self.roll = 4 * np.sin(np.arange(n_frames) * 0.09 + rng.uniform(0, 6)) + rng.normal(0, 0.8, n_frames)
        self.top = table_texture(kitchen)

    def render(self, s: State, i: int) -> np.ndarray:
        bx = _base_x(s)
        cx = bx + 0.3 * (s.rhand[0] - bx) + self.walk[i, 0]
        cy = 0.15 + 0.45 * (s.rhand[1] - 0.2) + self.walk[i, 1]
        M = np.array([[self.s, 0.0], [0.0, -self.s]])
        b = np.array([SIZE / 2 - self.s * cx, SIZE / 2 + self.s * cy])
        x0 = int(np.clip(SIZE + cx * self.s * 0.6, 0, 2 * SIZE))
        y0 = int(np.clip(SIZE - cy * self.s * 0.6, 0, 2 * SIZE))
        img = Image.fromarray(np.ascontiguousarray(self.top[y0:y0 + SIZE, x0:x0 + SIZE]))
        cv = Canvas(img, M, b)
        lk, bottom = self.look, cy - 0.5
        for d in self.kitchen.distractors:  # first: what the actor handles stays in front
            draw_distractor(cv, d)
        draw_props(cv, s, bx)
        draw_object(cv, s)
        _forearm(cv, s.lhand, (s.lhand[0] - 0.3, bottom), lk)
        _forearm(cv, s.rhand, (s.rhand[0] + 0.3, bottom), lk)
        draw_tool(cv, s)  # after the forearm: the tool in hand stays visible
        draw_effects(cv, s, bx)
        img = img.rotate(float(self.roll[i]), resample=Image.BILINEAR, fillcolor=self.kitchen.table)
        return np.asarray(img.point(self.lut))


def _forearm(cv: Canvas, hand, elbow, lk: Look) -> None:
    cv.line(elbow, hand, 0.085, lk.shirt)
    cv.line(((hand[0] * 2 + elbow[0]) / 3, (hand[1] * 2 + elbow[1]) / 3), hand, 0.065, lk.skin)
    cv.disc(hand, 0.05, lk.skin)


@lru_cache(maxsize=32)
def table_texture(kitchen: Kitchen) -> np.ndarray:
    """A [3*SIZE, 3*SIZE, 3] uint8 table top the ego view crops from as it pans (one per kitchen).

    Read-only and cached: every take in a kitchen films the same table.
    """
    rng = np.random.default_rng([kitchen.texture_seed, 5])
    n = 3 * SIZE
    y, x = np.mgrid[0:n, 0:n].astype(np.float32)
    base, accent = np.array(kitchen.table, np.float32), np.array(kitchen.texture_accent, np.float32)
    shade = {"wood": _wood, "tiles": _tiles, "cloth": _cloth, "stone": _stone}[kitchen.texture](x, y, rng)
    noise = rng.normal(0, 0.025, size=(n, n)).astype(np.float32)
    mix = shade["mix"][..., None]  # 0 = base colour, 1 = accent colour
    img = (base * (1 - mix) + accent * mix) * (shade["gain"] + noise)[..., None]
    out = np.clip(img, 0, 255).astype(np.uint8)
    out.setflags(write=False)
    return out


def _wood(x, y, rng) -> dict:
    phase, f = rng.uniform(0, 6.28), rng.uniform(0.3, 0.6)
    gain = 0.86 + 0.09 * np.sin(f * y + 2.5 * np.sin(0.021 * x + phase)) + 0.05 * np.sin(0.11 * y)
    return {"gain": gain, "mix": np.zeros_like(x)}


def _tiles(x, y, rng) -> dict:
    size, grout = int(rng.integers(18, 32)), 2
    line = ((x % size) < grout) | ((y % size) < grout)
    tile_shade = rng.uniform(0.93, 1.05, size=(int(y.max()) // size + 1, int(x.max()) // size + 1)).astype(np.float32)
    return {"gain": tile_shade[(y // size).astype(int), (x // size).astype(int)], "mix": line.astype(np.float32)}


def _cloth(x, y, rng) -> dict:
    w = int(rng.integers(8, 20))
    bands = ((x // w) % 2 == 0).astype(np.float32)
    if rng.random() < 0.5:  # gingham: crossed bands
        bands = np.clip(bands + ((y // w) % 2 == 0), 0, 1) * 0.5
    return {"gain": 0.95 + 0.03 * np.sin(1.7 * x) * np.sin(1.7 * y), "mix": bands * 0.6}


def _stone(x, y, rng) -> dict:
    p = rng.uniform(0, 6.28, 3)
    blobs = np.sin(0.05 * x + p[0]) * np.sin(0.043 * y + p[1]) + 0.5 * np.sin(0.13 * (x + y) + p[2])
    speck = (rng.random(x.shape) < 0.04).astype(np.float32)
    return {"gain": 0.92 + 0.06 * blobs, "mix": speck}


def make_cameras(look: Look, n_frames: int, n_exo: int, rng: np.random.Generator, ego: bool = True,
                 styles: list[int] | None = None, kitchen: Kitchen | None = None) -> dict:
    """{cam_id: camera}: 'aria01' (ego, if ego=True) and 'cam01'..'camNN' (exo) in one kitchen.

    styles[k]: which of the kitchen's exo placements camera k uses (default 0..n_exo-1);
    kitchen: the setting (default: the original single setting, `kitchen.default_kitchen`).
    """
    kitchen = kitchen if kitchen is not None else default_kitchen()
    cams: dict = {}
    if ego:
        cams["aria01"] = EgoCamera(look, kitchen, n_frames, rng)
    styles = styles if styles is not None else list(range(n_exo))
    for k in range(n_exo):
        view = kitchen.exo[styles[k] % len(kitchen.exo)]
        cams[f"cam{k + 1:02d}"] = ExoCamera(view, kitchen, look, rng)
    return cams
