"""Cameras: a moving head-mounted ego camera and static wide exo cameras.

Ego: close-up from the actor's head on a wooden table top — the object fills much of the
frame, the forearms enter from the bottom, and the view pans toward the working hand
with head jitter and roll. Exo: a fixed wide shot of the room (wall colour and decor
differ per camera), the whole stick/blob actor behind the table, the object small.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from rosetta_cli.toy.draw import Canvas, blank, draw_effects, draw_object, draw_props, draw_tool, rect
from rosetta_cli.toy.motion import State
from rosetta_cli.toy.spec import SIZE

# Exo camera styles: wall, floor, decor colour, (scale px/unit, x-flip, x-squash, shear), world centre, pixel centre
EXO_STYLES = (
    dict(wall=(165, 188, 212), floor=(120, 98, 78), decor=(225, 238, 252), proj=(62, 1, 1.0, 0.0), wc=(0.0, 0.2), pc=(64, 66)),
    dict(wall=(222, 198, 150), floor=(88, 88, 100), decor=(140, 100, 62), proj=(56, -1, 0.8, 0.3), wc=(0.1, 0.2), pc=(58, 68)),
    dict(wall=(150, 196, 150), floor=(110, 78, 58), decor=(95, 65, 48), proj=(52, 1, 1.0, -0.25), wc=(0.0, 0.15), pc=(70, 62)),
)


@dataclass
class Look:
    """Per-episode appearance of the actor and the table."""

    skin: tuple
    shirt: tuple
    pants: tuple
    hair: tuple
    wood: tuple

    @staticmethod
    def sample(rng: np.random.Generator) -> "Look":
        shirts = [(40, 60, 160), (30, 130, 120), (120, 120, 120), (160, 40, 90), (70, 70, 50), (200, 90, 30)]
        skin = [(235, 190, 150), (200, 150, 110), (150, 100, 70), (245, 205, 170)]
        wood = np.array([150, 105, 60]) + rng.integers(-20, 21, 3)
        return Look(skin[rng.integers(len(skin))], shirts[rng.integers(len(shirts))],
                    tuple(int(x) for x in rng.integers(20, 70, 3)), (40, 30, 20), tuple(int(x) for x in wood))


def _jitter_colour(c, rng, amount=14):
    return tuple(int(np.clip(v + rng.integers(-amount, amount + 1), 0, 255)) for v in c)


class ExoCamera:
    """A static wide camera. render(state) -> uint8 [SIZE, SIZE, 3]."""

    def __init__(self, style: int, look: Look, rng: np.random.Generator):
        st = EXO_STYLES[style % len(EXO_STYLES)]
        s, flip, squash, shear = st["proj"]
        s *= rng.uniform(0.92, 1.08)
        self.M = np.array([[s * flip * squash, s * shear], [0.0, -s]])
        pc = np.array(st["pc"], float) + rng.uniform(-5, 5, 2)
        self.b = pc - self.M @ np.array(st["wc"])
        self.look = look
        self.bg = self._background(st, rng)

    def _background(self, st, rng) -> Image.Image:
        """Static layers: wall + decor, floor, the actor's legs and torso, the table."""
        img = blank(SIZE, _jitter_colour(st["wall"], rng))
        cv = Canvas(img, self.M, self.b)
        cv.poly(rect(-4, -3, 4, -0.55), _jitter_colour(st["floor"], rng))
        dx = rng.uniform(-0.3, 0.3)
        cv.poly(rect(0.55 + dx, 0.55, 1.05 + dx, 1.05), st["decor"])  # window / cabinet
        cv.poly(rect(-1.2 + dx, 0.7, -0.7 + dx, 1.2), st["decor"])
        lk = self.look
        for x in (-0.07, 0.07):
            cv.line((x, 0.0), (x * 1.2, -0.55), 0.08, lk.pants)
        cv.line((0, 0.05), (0, 0.55), 0.24, lk.shirt)
        cv.poly(rect(-0.6, -0.05, 0.6, 0.0), lk.wood)
        for x in (-0.55, 0.5):
            cv.poly(rect(x, -0.55, x + 0.05, -0.05), tuple(int(c * 0.7) for c in lk.wood))
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
        return np.asarray(img)


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
    """Head-mounted camera: close-up, panning toward the hands, with jitter and roll."""

    def __init__(self, look: Look, n_frames: int, rng: np.random.Generator):
        self.look = look
        self.s = 225 * rng.uniform(0.92, 1.08)
        self.walk = np.cumsum(rng.normal(0, 0.006, size=(n_frames, 2)), 0) * 0.5 + rng.normal(0, 0.008, (n_frames, 2))
        self.roll = 4 * np.sin(np.arange(n_frames) * 0.09 + rng.uniform(0, 6)) + rng.normal(0, 0.8, n_frames)
        self.wood = _wood_texture(look.wood, rng)

    def render(self, s: State, i: int) -> np.ndarray:
        bx = _base_x(s)
        cx = bx + 0.3 * (s.rhand[0] - bx) + self.walk[i, 0]
        cy = 0.15 + 0.45 * (s.rhand[1] - 0.2) + self.walk[i, 1]
        M = np.array([[self.s, 0.0], [0.0, -self.s]])
        b = np.array([SIZE / 2 - self.s * cx, SIZE / 2 + self.s * cy])
        x0 = int(np.clip(SIZE + cx * self.s * 0.6, 0, 2 * SIZE))
        y0 = int(np.clip(SIZE - cy * self.s * 0.6, 0, 2 * SIZE))
        img = Image.fromarray(np.ascontiguousarray(self.wood[y0:y0 + SIZE, x0:x0 + SIZE]))
        cv = Canvas(img, M, b)
        lk, bottom = self.look, cy - 0.5
        draw_props(cv, s, bx)
        draw_object(cv, s)
        _forearm(cv, s.lhand, (s.lhand[0] - 0.3, bottom), lk)
        _forearm(cv, s.rhand, (s.rhand[0] + 0.3, bottom), lk)
        draw_tool(cv, s)  # after the forearm: the tool in hand stays visible
        draw_effects(cv, s, bx)
        img = img.rotate(float(self.roll[i]), resample=Image.BILINEAR, fillcolor=lk.wood)
        return np.asarray(img)


def _forearm(cv: Canvas, hand, elbow, lk: Look) -> None:
    cv.line(elbow, hand, 0.085, lk.shirt)
    cv.line(((hand[0] * 2 + elbow[0]) / 3, (hand[1] * 2 + elbow[1]) / 3), hand, 0.065, lk.skin)
    cv.disc(hand, 0.05, lk.skin)


def _wood_texture(colour, rng: np.random.Generator) -> np.ndarray:
    """A [3*SIZE, 3*SIZE, 3] wood-grain table top the ego view crops from as it pans."""
    n = 3 * SIZE
    y, x = np.mgrid[0:n, 0:n].astype(np.float32)
    phase = rng.uniform(0, 6.28)
    grain = 0.86 + 0.09 * np.sin(0.45 * y + 2.5 * np.sin(0.021 * x + phase)) + 0.05 * np.sin(0.11 * y)
    grain += rng.normal(0, 0.025, size=(n, n)).astype(np.float32)
    img = np.clip(grain[..., None] * np.array(colour, np.float32), 0, 255)
    return img.astype(np.uint8)


def make_cameras(look: Look, n_frames: int, n_exo: int, rng: np.random.Generator, ego: bool = True,
                 styles: list[int] | None = None) -> dict:
    """{cam_id: camera}: 'aria01' (ego, if ego=True) and 'cam01'..'camNN' (exo)."""
    cams: dict = {}
    if ego:
        cams["aria01"] = EgoCamera(look, n_frames, rng)
    styles = styles if styles is not None else list(range(n_exo))
    for k in range(n_exo):
        cams[f"cam{k + 1:02d}"] = ExoCamera(styles[k], look, rng)
    return cams


