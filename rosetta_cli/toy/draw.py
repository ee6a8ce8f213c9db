"""Drawing: an affine Canvas over a PIL image, and the shapes of objects, tools and effects.

Shapes are defined in world units in the object's own frame (base centre at the origin,
y up), posed by (position, angle) and projected by the camera's 2x2 matrix + offset, so
the same scene renders consistently from every camera.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from rosetta_cli.toy.spec import GEOM

RGB = tuple[int, int, int]


class Canvas:
    """Projects world points to pixels: p = M @ (x, y) + b."""

    def __init__(self, img: Image.Image, M: np.ndarray, b: np.ndarray):
        self.img, self.M, self.b = img, M, b
        self.d = ImageDraw.Draw(img)
        self.scale = math.sqrt(abs(np.linalg.det(M)))

    def px(self, pts: np.ndarray) -> list[tuple[float, float]]:
        """[N, 2] world points → list of pixel tuples."""
        q = np.asarray(pts, dtype=float) @ self.M.T + self.b
        return [tuple(p) for p in q]

    def poly(self, pts: np.ndarray, fill: RGB) -> None:
        self.d.polygon(self.px(pts), fill=fill)

    def line(self, p0, p1, width: float, fill: RGB) -> None:
        """A thick segment with round caps; width in world units."""
        a, b = self.px([p0, p1])
        w = max(1, int(round(width * self.scale)))
        self.d.line([a, b], fill=fill, width=w)
        r = w / 2
        for c in (a, b):
            self.d.ellipse([c[0] - r, c[1] - r, c[0] + r, c[1] + r], fill=fill)

    def disc(self, c, r: float, fill: RGB) -> None:
        (x, y), = self.px([c])
        rp = max(0.8, r * self.scale)
        self.d.ellipse([x - rp, y - rp, x + rp, y + rp], fill=fill)


def ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 14) -> np.ndarray:
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + rx * np.cos(a), cy + ry * np.sin(a)], 1)


def rect(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=float)


def pose(pts: np.ndarray, pos, angle_deg: float) -> np.ndarray:
    a = math.radians(angle_deg)
    R = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return pts @ R.T + np.asarray(pos)


@lru_cache(maxsize=None)
def object_parts(name: str) -> tuple[tuple[str, np.ndarray, RGB], ...]:
    """(tag, local polygon [N, 2], colour) per part; tag 'lid' parts move when opened."""
    hw, top = GEOM[name]
    P = {
        "pepper": [("b", ellipse(0, 0.12, hw, 0.12), (215, 25, 25)), ("b", ellipse(-0.04, 0.16, 0.035, 0.05), (255, 120, 110)),
                   ("b", rect(-0.02, 0.22, 0.02, top), (40, 140, 40))],
        "cucumber": [("b", ellipse(0, 0.065, hw, 0.065), (25, 105, 35))]
        + [("b", ellipse(x, 0.075, 0.025, 0.012), (150, 210, 90)) for x in (-0.15, -0.05, 0.05, 0.15)],
        "onion": [("b", ellipse(0, 0.11, hw, 0.11), (135, 35, 145)), ("b", np.array([[-0.04, 0.2], [0.04, 0.2], [0, top]]), (190, 160, 110)),
                  ("b", ellipse(0.0, 0.11, 0.05, 0.095), (195, 130, 210))],
        "carrot": [("b", np.array([[-hw, 0.0], [-hw, top], [hw, 0.055]]), (250, 125, 15)),
                   ("b", np.array([[-hw - 0.1, 0.11], [-hw, 0.07], [-hw, 0.1]]), (60, 170, 50)),
                   ("b", np.array([[-hw - 0.09, 0.01], [-hw, 0.05], [-hw, 0.08]]), (60, 170, 50))],
        "milk": [("b", rect(-hw, 0, hw, 0.27), (245, 245, 245)), ("b", rect(-hw, 0.09, hw, 0.18), (25, 85, 220)),
                 ("b", np.array([[-hw, 0.27], [hw, 0.27], [0, 0.31]]), (215, 215, 228)), ("lid", rect(-0.025, 0.29, 0.025, top), (25, 85, 220))],
        "jar": [("b", rect(-hw, 0, hw, 0.21), (250, 205, 30)), ("b", rect(-hw * 0.7, 0.06, hw * 0.7, 0.14), (255, 245, 210)),
                ("lid", rect(-hw - 0.012, 0.205, hw + 0.012, top), (205, 15, 60))],
        "oil": [("b", rect(-hw, 0, hw, 0.2), (165, 95, 15)), ("b", np.array([[-hw, 0.2], [hw, 0.2], [0.025, 0.25], [-0.025, 0.25]]), (165, 95, 15)),
                ("b", rect(-0.025, 0.24, 0.025, 0.29), (165, 95, 15)), ("b", rect(-hw, 0.06, hw, 0.13), (250, 235, 60)),
                ("lid", rect(-0.03, 0.285, 0.03, top), (15, 15, 15))],
        "pot": [("b", rect(-hw, 0, hw, top), (65, 65, 78)), ("b", rect(-hw - 0.06, top - 0.05, -hw, top - 0.02), (30, 30, 30)),
                ("b", rect(hw, top - 0.05, hw + 0.06, top - 0.02), (30, 30, 30)), ("b", ellipse(0, top, hw * 0.9, 0.035), (240, 120, 35))],
    }[name]
    return tuple(P)


def draw_object(cv: Canvas, s) -> None:
    """The active object at its pose, with lid offset, cut lines and stir swirl."""
    if s.obj is None:
        return
    for tag, pts, col in object_parts(s.obj):
        local = pts
        if tag == "lid":
            c = pts.mean(0)
            local = pose(pts - c, c + np.asarray(s.lid_off), s.lid_angle)
        cv.poly(pose(local, s.obj_pos, s.obj_angle), col)
    hw, top = GEOM[s.obj]
    for x in s.slices:  # cut lines through the object
        cv.line((x, 0.0), (x, top * 0.85), 0.012, (250, 235, 200))
    if s.obj == "pot" and s.swirl:
        for k in range(3):
            a = s.swirl + k * 2.1
            cv.disc((s.obj_pos[0] + 0.1 * math.cos(a), top + 0.02 * math.sin(a)), 0.018, (150, 60, 15))


def draw_tool(cv: Canvas, s) -> None:
    """Knife / peeler / spoon held at the right hand."""
    h = np.asarray(s.rhand)
    if s.tool == "knife":
        cv.poly(pose(np.array([[-0.012, 0], [0.025, 0], [0.02, -0.16], [-0.012, -0.13]]), h, s.tool_angle), (205, 205, 215))
        cv.line(h, h + (0.0, 0.07), 0.03, (25, 25, 25))
    elif s.tool == "peeler":
        cv.line(h, h + (0.0, 0.07), 0.03, (30, 160, 225))
        cv.poly(pose(rect(-0.035, -0.09, 0.035, -0.06), h, 0), (150, 150, 160))
        cv.line(h, h + (0, -0.07), 0.012, (150, 150, 160))
    elif s.tool == "spoon":
        tip = h + (-0.05, -0.22)
        cv.line(h + (0.01, 0.05), tip, 0.022, (160, 110, 55))
        cv.poly(ellipse(tip[0], tip[1], 0.035, 0.022), (160, 110, 55))


def draw_effects(cv: Canvas, s, ox: float) -> None:
    """Liquid stream, water drops and peel flakes."""
    if s.stream is not None:
        col = (250, 250, 250) if s.obj == "milk" else (230, 175, 40)
        cv.line(s.stream[0], s.stream[1], 0.03, col)
    for d in s.drops:
        cv.disc(d, 0.018, (70, 165, 255))
    if s.flakes and s.obj:
        hw, _ = GEOM[s.obj]
        col = tuple(min(255, c + 70) for c in object_parts(s.obj)[0][2])
        for k in range(min(s.flakes, 8)):
            cv.poly(ellipse(ox + hw + 0.07 + 0.045 * (k % 4), 0.012 + 0.02 * (k // 4), 0.022, 0.01, 6), col)


def draw_props(cv: Canvas, s, ox: float) -> None:
    """Bowl (pour target) and tap (washing) — props that belong to the action."""
    if s.bowl:
        bx = ox + 0.36
        cv.poly(np.array([[bx - 0.12, 0.09], [bx + 0.12, 0.09], [bx + 0.07, 0.0], [bx - 0.07, 0.0]]), (235, 240, 250))
        cv.poly(rect(bx - 0.12, 0.08, bx + 0.12, 0.1), (40, 120, 200))
    if s.tap:
        cv.poly(rect(ox - 0.02, 0.6, ox + 0.02, 0.85), (150, 150, 165))
        cv.poly(rect(ox - 0.02, 0.6, ox + 0.12, 0.64), (150, 150, 165))


def blank(size: int, colour: RGB) -> Image.Image:
    return Image.new("RGB", (size, size), colour)


def _plate(cv, P, z, c, a):
    cv.poly(P(ellipse(0, 0.015, 0.13, 0.02)), c)
    cv.poly(P(ellipse(0, 0.02, 0.09, 0.01)), a)


def _cup(cv, P, z, c, a):
    cv.poly(P(rect(-0.045, 0, 0.045, 0.1)), c)
    cv.line(P([[0.045, 0.075]])[0], P([[0.075, 0.04]])[0], 0.015 * z, a)
    cv.poly(P(rect(-0.045, 0.085, 0.045, 0.1)), a)


def _plant(cv, P, z, c, a):
    cv.poly(P([[-0.06, 0.09], [0.06, 0.09], [0.045, 0], [-0.045, 0]]), c)
    for dx, dy, r in ((-0.05, 0.17, 0.05), (0.05, 0.16, 0.05), (0.0, 0.23, 0.055), (0.0, 0.13, 0.045)):
        cv.disc(P([[dx, dy]])[0], r * z, a)


def _box(cv, P, z, c, a):
    cv.poly(P(rect(-0.07, 0, 0.07, 0.22)), c)
    cv.poly(P(rect(-0.07, 0.08, 0.07, 0.14)), a)


def _bread(cv, P, z, c, a):
    cv.poly(P(ellipse(0, 0.045, 0.14, 0.045)), c)
    for dx in (-0.07, 0.0, 0.07):
        cv.line(P([[dx - 0.015, 0.07]])[0], P([[dx + 0.015, 0.085]])[0], 0.012 * z, a)


def _kettle(cv, P, z, c, a):
    cv.poly(P(ellipse(0, 0.09, 0.09, 0.09)), c)
    cv.poly(P([[0.07, 0.07], [0.16, 0.15], [0.14, 0.16], [0.06, 0.11]]), c)
    cv.line(P([[-0.06, 0.17]])[0], P([[0.05, 0.2]])[0], 0.02 * z, a)


def _board(cv, P, z, c, a):
    cv.poly(P(rect(-0.16, 0, 0.16, 0.025)), c)
    cv.poly(P(rect(0.16, 0.005, 0.2, 0.02)), a)


def _fruit_bowl(cv, P, z, c, a):
    for dx, dy in ((-0.05, 0.1), (0.05, 0.1), (0.0, 0.14)):
        cv.disc(P([[dx, dy]])[0], 0.045 * z, a)
    cv.poly(P([[-0.13, 0.1], [0.13, 0.1], [0.08, 0], [-0.08, 0]]), c)


def _toaster(cv, P, z, c, a):
    cv.poly(P(rect(-0.1, 0, 0.1, 0.13)), c)
    for x0 in (-0.06, 0.01):
        cv.poly(P(rect(x0, 0.125, x0 + 0.05, 0.135)), a)
    cv.poly(P(rect(0.1, 0.04, 0.12, 0.07)), a)


# kind -> drawing in the object's own frame (base centre at the origin), kitchen.DISTRACTORS order
DISTRACTOR_SHAPES = {"plate": _plate, "cup": _cup, "plant": _plant, "box": _box, "bread": _bread, "kettle": _kettle,
                     "board": _board, "fruit_bowl": _fruit_bowl, "toaster": _toaster}


def draw_distractor(cv: Canvas, d) -> None:
    """One static non-keystep object (kitchen.Distractor) standing on the table at x = d.x."""
    place = lambda pts: np.asarray(pts, float) * d.size + (d.x, 0.0)  # local shape [N, 2] -> table position
    DISTRACTOR_SHAPES[d.kind](cv, place, d.size, d.colour, d.accent)


def lighting_lut(gain) -> list[int]:
    """A 768-entry PIL point() table applying a per-channel gain (the kitchen's lighting)."""
    return [min(255, int(round(i * g))) for g in gain for i in range(256)]
