"""Kitchens: the settings the toy world's videos are filmed in (plain data + seeded sampling).

The paper's unpaired video comes from "varied settings, objects, and interactions" while its
paired video is recorded in comparatively few places. A `Kitchen` is one such setting: wall and
floor colours, a table top (colour and texture: wood, tiles, cloth or stone), lighting (one
global colour gain applied to every camera in the room), layout (the table's extent, and where
each exo camera stands and what wall and decor it sees), and a few static distractor objects on
the table (plates, cups, plants, boxes, ...; never one of the 8 keystep objects) that both the
ego and the exo cameras see. The actor's appearance is drawn per take (`cameras.Look`).

World units as in `motion`: x right, y up, table top at y = 0, the actor behind the table.
Nothing here draws pixels; `cameras` and `draw` render a kitchen.
"""

from __future__ import annotations

import colorsys
from dataclasses import asdict, dataclass

import numpy as np

RGB = tuple[int, int, int]

TEXTURES = ("wood", "tiles", "cloth", "stone")
DISTRACTORS = ("plate", "cup", "plant", "box", "bread", "kettle", "board", "fruit_bowl", "toaster")


@dataclass(frozen=True)
class Decor:
    """A rectangle on the wall behind the actor (cabinet, window, shelf, picture), world units."""

    kind: str
    x0: float
    y0: float
    x1: float
    y1: float
    colour: RGB


@dataclass(frozen=True)
class ExoView:
    """Where one static exo camera stands in a kitchen and what it sees behind the actor.

    Projection p = M @ (x, y) + b with M = [[scale*flip*squash, scale*shear], [0, -scale]],
    and b chosen so world point `wc` lands on pixel `pc` (as the original fixed styles did).
    """

    scale: float  # pixels per world unit
    flip: int  # -1: the camera faces the actor from the other side (mirrored scene)
    squash: float  # horizontal foreshortening of an oblique view
    shear: float
    wc: tuple[float, float]
    pc: tuple[float, float]
    wall: RGB  # each camera faces its own wall of the room
    decor: tuple[Decor, ...]


@dataclass(frozen=True)
class Distractor:
    """A static non-keystep object on the table: kind, base centre x, size factor, two colours."""

    kind: str
    x: float
    size: float
    colour: RGB
    accent: RGB


@dataclass(frozen=True)
class Kitchen:
    """One setting. `gain` is the lighting: a per-channel multiplier on every rendered pixel."""

    id: int
    floor: RGB
    table: RGB  # the table top's base colour (the exo slab, the ego texture's mean)
    texture: str  # one of TEXTURES
    texture_accent: RGB  # grout, cloth pattern or stone speckle colour
    texture_seed: int
    table_span: tuple[float, float]  # table x extent, world units
    gain: tuple[float, float, float]
    exo: tuple[ExoView, ...]
    distractors: tuple[Distractor, ...]

    def to_json(self) -> dict:
        """JSON-only description for world.json (tuples become lists)."""
        return _lists(asdict(self))


def _lists(x):
    if isinstance(x, dict):
        return {k: _lists(v) for k, v in x.items()}
    return [_lists(v) for v in x] if isinstance(x, (tuple, list)) else x


def _hsv(h: float, s: float, v: float) -> RGB:
    return tuple(int(round(255 * c)) for c in colorsys.hsv_to_rgb(h % 1.0, s, v))


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return round(float(rng.uniform(lo, hi)), 4)


def _table(rng: np.random.Generator) -> tuple[str, RGB, RGB]:
    """(texture, base colour, accent colour) of a table top."""
    kind = TEXTURES[int(rng.integers(len(TEXTURES)))]
    if kind == "wood":
        base = _hsv(rng.uniform(0.05, 0.11), rng.uniform(0.4, 0.65), rng.uniform(0.42, 0.75))
        return kind, base, base
    if kind == "tiles":
        h = rng.uniform(0, 1)
        return kind, _hsv(h, rng.uniform(0.05, 0.3), rng.uniform(0.7, 0.92)), _hsv(h, 0.1, rng.uniform(0.35, 0.55))
    if kind == "cloth":
        h = rng.uniform(0, 1)
        return kind, _hsv(h, rng.uniform(0.25, 0.5), rng.uniform(0.6, 0.88)), _hsv(h + 0.5, 0.15, 0.95)
    grey = rng.uniform(0.45, 0.78)
    return kind, _hsv(rng.uniform(0, 1), rng.uniform(0.0, 0.1), grey), _hsv(0, 0, min(1.0, grey + 0.2))


def _gain(rng: np.random.Generator) -> tuple[float, float, float]:
    """Lighting: dim to bright, warm (tungsten) to cool (daylight)."""
    b, warm = rng.uniform(0.72, 1.12), rng.uniform(-1, 1)
    tint = np.array([1 + 0.08 * warm, 1.0, 1 - 0.08 * warm]) * (1 + rng.uniform(-0.03, 0.03, 3))
    return tuple(round(float(b * t), 4) for t in tint)


def _decor(rng: np.random.Generator, cabinet: RGB) -> tuple[Decor, ...]:
    """2-4 wall items behind the actor (world x in [-1.6, 1.6], y in [0.3, 1.5])."""
    out = []
    for _ in range(int(rng.integers(2, 5))):
        kind = ("cabinet", "window", "shelf", "picture")[int(rng.integers(4))]
        x0, y0 = rng.uniform(-1.6, 1.0), rng.uniform(0.3, 1.1)
        w, h = {"cabinet": (0.5, 0.45), "window": (0.45, 0.4), "shelf": (0.7, 0.05), "picture": (0.25, 0.2)}[kind]
        w, h = w * rng.uniform(0.8, 1.3), h * rng.uniform(0.8, 1.3)
        col = {"cabinet": cabinet, "window": _hsv(rng.uniform(0.52, 0.62), rng.uniform(0.1, 0.35), 0.97),
               "shelf": _hsv(rng.uniform(0.05, 0.1), 0.5, 0.35),
               "picture": _hsv(rng.uniform(0, 1), rng.uniform(0.3, 0.7), rng.uniform(0.4, 0.9))}[kind]
        out.append(Decor(kind, round(float(x0), 3), round(float(y0), 3), round(float(x0 + w), 3), round(float(y0 + h), 3), col))
    return tuple(out)


def _exo_view(rng: np.random.Generator, wall_h: float, wall_s: float, wall_v: float, cabinet: RGB) -> ExoView:
    """One camera of a kitchen: placement, and the wall (a shade of the room's paint) it faces."""
    wall = _hsv(wall_h + rng.uniform(-0.04, 0.04), wall_s * rng.uniform(0.7, 1.3), min(1.0, wall_v * rng.uniform(0.82, 1.12)))
    # Framed on the actor and the table top, as Ego-Exo4D's exo GoPros and how-to videos are: the
    # hands and the object fill a good part of the frame (a wide room shot at this resolution left
    # them a few pixels, and the frozen features then carried the kitchen, not the action).
    return ExoView(scale=_u(rng, 100, 120), flip=int(rng.choice([-1, 1])), squash=_u(rng, 0.8, 1.0),
                   shear=_u(rng, -0.25, 0.25), wc=(_u(rng, -0.02, 0.1), _u(rng, 0.24, 0.32)),
                   pc=(_u(rng, 59, 69), _u(rng, 60, 68)), wall=wall, decor=_decor(rng, cabinet))


# Distractor colours: everyday kitchenware; saturated red/orange/purple are left to the keystep objects.
_PALETTE: dict[str, tuple[tuple[RGB, RGB], ...]] = {
    "plate": (((240, 240, 235), (180, 200, 220)), ((225, 215, 190), (150, 120, 90)), ((200, 225, 235), (90, 120, 160))),
    "cup": (((235, 235, 235), (60, 60, 60)), ((70, 110, 170), (230, 230, 230)), ((250, 225, 120), (120, 90, 40))),
    "plant": (((175, 95, 60), (60, 140, 60)), ((200, 200, 200), (40, 120, 70)), ((90, 90, 100), (80, 160, 60))),
    "box": (((240, 200, 60), (40, 80, 160)), ((90, 160, 200), (250, 250, 250)), ((230, 230, 215), (30, 130, 90))),
    "bread": (((200, 150, 80), (235, 205, 150)), ((170, 115, 55), (220, 180, 120))),
    "kettle": (((190, 190, 200), (40, 40, 40)), ((60, 130, 110), (30, 30, 30)), ((235, 235, 230), (120, 120, 120))),
    "board": (((190, 150, 100), (150, 110, 70)), ((235, 235, 230), (200, 200, 200)), ((120, 170, 120), (90, 130, 90))),
    "fruit_bowl": (((230, 230, 240), (250, 220, 40)), ((160, 120, 80), (130, 200, 60))),
    "toaster": (((200, 200, 205), (30, 30, 30)), ((120, 170, 200), (40, 40, 40))),
}

# Table positions for distractors: one left of the work area (the ego camera sees it), the rest
# further out. The keystep object rests near x = 0, the pouring bowl at +0.36, the hands at +-0.3.
_SLOTS = ((-0.34, -0.22), (-0.62, -0.42), (0.46, 0.62), (0.64, 0.82))


def _distractors(rng: np.random.Generator, span: tuple[float, float]) -> tuple[Distractor, ...]:
    n = int(rng.integers(2, 5))
    kinds = rng.permutation(len(DISTRACTORS))[:n]
    out = []
    for slot, k in zip(_SLOTS, kinds):
        kind = DISTRACTORS[int(k)]
        x = float(np.clip(rng.uniform(*slot), span[0] + 0.1, span[1] - 0.1))
        colour, accent = _PALETTE[kind][int(rng.integers(len(_PALETTE[kind])))]
        out.append(Distractor(kind, round(x, 3), _u(rng, 0.85, 1.2), colour, accent))
    return tuple(out)


def sample_kitchen(rng: np.random.Generator, kid: int, n_cams: int) -> Kitchen:
    """One kitchen with `n_cams` exo camera placements, deterministic for the rng's state."""
    wall_h, wall_s, wall_v = rng.uniform(0, 1), rng.uniform(0.12, 0.45), rng.uniform(0.6, 0.92)
    cabinet = _hsv(rng.uniform(0, 1), rng.uniform(0.1, 0.5), rng.uniform(0.3, 0.85))
    floor = _hsv(rng.uniform(0, 1), rng.uniform(0.1, 0.4), rng.uniform(0.28, 0.55))
    texture, table, accent = _table(rng)
    span = (_u(rng, -0.95, -0.65), _u(rng, 0.65, 0.95))
    gain = _gain(rng)
    exo = tuple(_exo_view(rng, wall_h, wall_s, wall_v, cabinet) for _ in range(n_cams))
    return Kitchen(kid, floor, table, texture, accent, int(rng.integers(2**31)), span, gain, exo, _distractors(rng, span))


def sample_kitchens(seq: np.random.SeedSequence, n: int, n_cams: int) -> list[Kitchen]:
    """Kitchens 0..n-1, each from its own child seed (so kitchen k does not depend on n).

    Children are built from `seq`'s key rather than by `seq.spawn`, which would advance `seq`.
    """
    child = lambda k: np.random.SeedSequence(seq.entropy, spawn_key=tuple(seq.spawn_key) + (k,))
    return [sample_kitchen(np.random.default_rng(child(k)), k, n_cams) for k in range(n)]


# The original fixed look of the world (one wooden table, three exo styles, neutral light, no
# distractors): the default for cameras built without a kitchen (unit tests of the renderer).
_ORIGINAL_STYLES = (
    dict(wall=(165, 188, 212), decor=(225, 238, 252), proj=(62, 1, 1.0, 0.0), wc=(0.0, 0.2), pc=(64, 66)),
    dict(wall=(222, 198, 150), decor=(140, 100, 62), proj=(56, -1, 0.8, 0.3), wc=(0.1, 0.2), pc=(58, 68)),
    dict(wall=(150, 196, 150), decor=(95, 65, 48), proj=(52, 1, 1.0, -0.25), wc=(0.0, 0.15), pc=(70, 62)),
)


def default_kitchen() -> Kitchen:
    """The original single setting: wooden table, three exo views, neutral light, no distractors."""
    views = []
    for st in _ORIGINAL_STYLES:
        s, flip, squash, shear = st["proj"]
        decor = (Decor("window", 0.55, 0.55, 1.05, 1.05, st["decor"]), Decor("cabinet", -1.2, 0.7, -0.7, 1.2, st["decor"]))
        views.append(ExoView(s, flip, squash, shear, st["wc"], st["pc"], st["wall"], decor))
    return Kitchen(-1, (110, 90, 80), (150, 105, 60), "wood", (150, 105, 60), 0, (-0.6, 0.6), (1.0, 1.0, 1.0),
                   tuple(views), ())


def kitchen_roles(sc) -> dict[int, str]:
    """kitchen id -> "paired+benchmark" | "paired" | "benchmark" (Ego-Exo4D) | "ego4d" | "htm" (unpaired only)."""
    roles = {}
    for role in ("paired", "benchmark", "ego4d", "htm"):
        for k in sc.kitchen_ids(role):
            roles[k] = "paired+benchmark" if k in roles else role
    return roles
