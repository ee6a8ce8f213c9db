"""World specification: objects, verbs, keystep classes, scales, and episode sampling.

Everything here is plain data plus seeded sampling; nothing draws pixels.
An *episode* is one video's ground truth: a list of segments (class, start, end)
with idle gaps between them, and one skill level for the whole episode.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

FPS = 8
SIZE = 128  # square frames, even so yuv420p works

# object -> noun phrases used in narrations (the first is the canonical name)
OBJECTS: dict[str, tuple[str, ...]] = {
    "pepper": ("pepper", "red pepper", "bell pepper"),
    "cucumber": ("cucumber", "cucumber"),
    "onion": ("onion", "red onion"),
    "carrot": ("carrot", "carrot"),
    "milk": ("milk", "milk carton"),
    "jar": ("jar", "honey jar"),
    "oil": ("oil", "oil bottle", "bottle"),
    "pot": ("pot", "soup"),
}

# verb -> (imperative synonyms, third-person synonyms)
VERBS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "cut": (("cut", "slice", "chop"), ("cuts", "slices", "chops")),
    "peel": (("peel", "skin"), ("peels", "skins")),
    "wash": (("wash", "rinse", "clean"), ("washes", "rinses", "cleans")),
    "pour": (("pour", "pour out"), ("pours", "pours out")),
    "open": (("open", "unscrew", "open up"), ("opens", "unscrews", "uncaps")),
    "stir": (("stir", "mix"), ("stirs", "mixes")),
}

# Ordered so that any prefix of >= 6 classes covers every verb (scales take a prefix).
CLASSES: tuple[tuple[str, str], ...] = (
    ("cut", "pepper"), ("pour", "milk"), ("open", "jar"), ("stir", "pot"), ("peel", "carrot"),
    ("wash", "cucumber"), ("cut", "onion"), ("pour", "oil"), ("open", "milk"), ("peel", "cucumber"),
    ("wash", "pepper"), ("cut", "carrot"), ("open", "oil"), ("peel", "onion"), ("cut", "cucumber"),
    ("wash", "carrot"),
)

STEP_ID_BASE = 5001  # step_unique_id = STEP_ID_BASE + label_id (Ego-Exo4D uses numeric step ids)

# Skill → proficiency levels of the Ego-Exo4D demonstrator benchmark (sampled uniformly within the pair).
PROFICIENCY = {"good": ("Intermediate Expert", "Late Expert"), "bad": ("Novice", "Early Expert")}


@dataclass(frozen=True)
class Scale:
    """How much to render, and from which kitchens. Durations in seconds.

    The data regime follows the paper's description of its data:
    - the Ego-Exo4D-style domain (paired training takes and the benchmark takes) is filmed in its
      own `egoexo_kitchens`, and the paired takes span them all (round robin);
    - the benchmark holds out *takes* of that domain (the paper's regime), or, with
      `bench_new_kitchens` > 0, the last that many Ego-Exo4D kitchens host benchmark takes only
      (the harder protocol: settings no paired take shows);
    - unpaired Ego4D-style ego videos and HTM-style exo videos come from two more, disjoint sets
      of kitchens (`ego_kitchens`, `htm_kitchens`): different sources that share no physical
      setting with each other or with the benchmark, so "match the room" cannot help mining;
    - the paired set is moderate, not tiny: its clips are at least a third of the unpaired clips.
    Kitchen ids: Ego-Exo4D's first, then Ego4D's, then HTM's.
    """

    name: str
    n_classes: int
    paired_train_takes: int
    bench_takes: int
    ego_videos: int
    htm_videos: int
    segments_per_video: int
    egoexo_kitchens: int
    ego_kitchens: int
    htm_kitchens: int
    bench_new_kitchens: int = 0  # > 0: the harder protocol (benchmark kitchens that no paired take shows)
    exo_cams: int = 2
    seg_dur: tuple[float, float] = (2.0, 3.0)
    # HowTo-style videos are slower, and the HTM-AA importer cuts ~4 s windows around each
    # integer-second timestamp: longer actions keep those windows mostly inside one action.
    htm_seg_dur: tuple[float, float] = (3.0, 4.0)
    gap_dur: tuple[float, float] = (0.375, 0.75)
    # Optionally, paired *training* takes show only the first `paired_train_classes` keysteps while
    # unpaired videos and the benchmark (val) takes show every class. Off by default: the keystep
    # classifiers of the benchmark train on those same takes, so it would cap recognition at the
    # covered classes.
    paired_train_classes: int | None = None

    def __post_init__(self):
        if min(self.egoexo_kitchens, self.ego_kitchens, self.htm_kitchens) < 1:
            raise ValueError(f"scale {self.name}: every kitchen set needs at least one kitchen")
        if not 0 <= self.bench_new_kitchens < self.egoexo_kitchens:
            raise ValueError(f"scale {self.name}: bench_new_kitchens must leave at least one kitchen for paired takes")

    @property
    def n_kitchens(self) -> int:
        return self.egoexo_kitchens + self.ego_kitchens + self.htm_kitchens

    @property
    def paired_takes(self) -> int:
        """All Ego-Exo4D takes: paired training takes + benchmark takes."""
        return self.paired_train_takes + self.bench_takes

    def kitchen_ids(self, role: str) -> list[int]:
        """Kitchen ids of a role: "paired" (hosts paired training takes), "benchmark", "ego4d", "htm"."""
        ee, e = self.egoexo_kitchens, self.ego_kitchens
        paired = list(range(ee - self.bench_new_kitchens))
        return {"paired": paired,
                "benchmark": list(range(ee - self.bench_new_kitchens, ee)) if self.bench_new_kitchens else paired,
                "ego4d": list(range(ee, ee + e)), "htm": list(range(ee + e, self.n_kitchens))}[role]

    def with_protocol(self, bench_new_kitchens: int) -> "Scale":
        """The same scale with another benchmark protocol (0: held-out takes; k: k held-out kitchens)."""
        from dataclasses import replace

        return replace(self, bench_new_kitchens=bench_new_kitchens)


SCALES: dict[str, Scale] = {
    # unit tests: one kitchen per set
    "tiny": Scale("tiny", n_classes=8, paired_train_takes=2, bench_takes=1, ego_videos=2, htm_videos=2,
                  segments_per_video=2, egoexo_kitchens=1, ego_kitchens=1, htm_kitchens=1),
    # the demo: 30 paired training takes (270 clips), 24 benchmark takes (72 ego queries, 144 exo),
    # 80 Ego4D and 80 HTM videos (240 clips each)
    "small": Scale("small", n_classes=16, paired_train_takes=30, bench_takes=24, ego_videos=80, htm_videos=80,
                   segments_per_video=3, egoexo_kitchens=6, ego_kitchens=6, htm_kitchens=6),
    # `rosetta claims`: 500 benchmark ego queries and 1,000 exo gallery clips (100 takes x 5 keysteps
    # x 2 exo cameras); 80 paired training takes (1,200 clips: 400 ego, 800 exo; a quarter of them,
    # 100 queries, validate the RST), 100 Ego4D and 100 HTM videos (500 clips each)
    "medium": Scale("medium", n_classes=16, paired_train_takes=80, bench_takes=100, ego_videos=100, htm_videos=100,
                    segments_per_video=5, egoexo_kitchens=10, ego_kitchens=10, htm_kitchens=10),
}


@dataclass
class Segment:
    label_id: int
    start: float
    end: float

    @property
    def verb(self) -> str:
        return CLASSES[self.label_id][0]

    @property
    def obj(self) -> str:
        return CLASSES[self.label_id][1]


@dataclass
class Episode:
    """Ground truth of one rendered video (or of one synchronized multi-camera take)."""

    kind: str  # "paired" | "ego" | "htm"
    index: int
    skill: str  # "good" | "bad"
    duration: float
    n_frames: int
    segments: list[Segment] = field(default_factory=list)
    seed: int = 0  # per-episode seed for appearance and motion noise


def step_name(label_id: int) -> str:
    verb, obj = CLASSES[label_id]
    return f"{verb.capitalize()} {obj}"


def _quantize(x: float) -> float:
    """Snap a time to the frame grid so segment borders fall between frames deterministically."""
    return round(x * FPS) / FPS


def sample_episode(rng: np.random.Generator, kind: str, index: int, scale: Scale, n_classes: int | None = None,
                   deck: "ClassDeck | None" = None) -> Episode:
    """A random sequence of `scale.segments_per_video` actions with idle gaps.

    Classes come from `deck` when given (balanced draws), else uniformly from the first
    `n_classes` (default: all of the scale's). Consecutive segments never repeat a class.
    Times are multiples of 1/FPS.
    """
    labels: list[int] = []
    for _ in range(scale.segments_per_video):
        prev = labels[-1] if labels else None
        if deck is not None:
            labels.append(deck.draw(rng, avoid=prev))
            continue
        choices = [c for c in range(n_classes or scale.n_classes) if c != prev]
        labels.append(int(rng.choice(choices)))
    t = _quantize(rng.uniform(*scale.gap_dur))
    segs = []
    seg_dur = scale.htm_seg_dur if kind == "htm" else scale.seg_dur
    for lab in labels:
        dur = _quantize(rng.uniform(*seg_dur))
        segs.append(Segment(lab, t, t + dur))
        t = _quantize(t + dur + rng.uniform(*scale.gap_dur))
    n_frames = int(round(t * FPS))
    skill = "good" if rng.random() < 0.5 else "bad"
    return Episode(kind, index, skill, n_frames / FPS, n_frames, segs, seed=int(rng.integers(2**31)))


class ClassDeck:
    """Balanced class draws: every class once per shuffled round, as a keystep taxonomy is
    covered by Ego-Exo4D's annotated takes. With few paired takes, uniform draws would leave
    some classes without a single training segment for the benchmark's exo classifiers."""

    def __init__(self, n_classes: int):
        self.n, self.cards = n_classes, []

    def draw(self, rng: np.random.Generator, avoid: int | None = None) -> int:
        if all(c == avoid for c in self.cards):  # empty, or only the class to avoid is left
            self.cards += [int(c) for c in rng.permutation(self.n)]
        k = next(i for i, c in enumerate(self.cards) if c != avoid)
        return self.cards.pop(k)


def label_at(segments: list[dict], t: float) -> int | None:
    """The true label_id at time t (seconds) given world.json segments, or None in a gap."""
    for s in segments:
        if s["start_time"] <= t < s["end_time"]:
            return int(s["label_id"])
    return None


# Object geometry in world units (table top at y=0): (half width, height of the top).
GEOM: dict[str, tuple[float, float]] = {
    "pepper": (0.13, 0.25), "cucumber": (0.24, 0.13), "onion": (0.12, 0.27), "carrot": (0.23, 0.13),
    "milk": (0.075, 0.34), "jar": (0.1, 0.26), "oil": (0.065, 0.32), "pot": (0.21, 0.17),
}
