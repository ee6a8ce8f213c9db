"""Narration text: Ego4D-style ('#C C slices the pepper'), Ego-Exo4D atomic descriptions
('C slices the pepper with a knife') and HowTo-style ('now slice your pepper').

Realistically imperfect: verb synonyms, object paraphrases, some uninformative lines,
some '#unsure' tags (Ego4D only), HowTo lines about a neighbouring step (~25%, HTM only), and ~17% that name the WRONG object — so text alone
cannot recover the class and the visual side matters. Each call returns (text, kind)
with kind in {"correct", "wrong_object", "uninformative", "unsure", "misaligned", "idle"} for world.json.
"""

from __future__ import annotations

import numpy as np

from rosetta_cli.toy.spec import CLASSES, OBJECTS, VERBS

P_WRONG, P_UNINFORMATIVE, P_UNSURE = 0.17, 0.12, 0.06
# HowTo100M speech is often about a neighbouring step (the speaker announces the next one or
# recaps the last), even after temporal alignment: HTM narrations describe an adjacent action
# with this probability.
P_MISALIGNED = 0.25

EGO_UNINFORMATIVE = ("#C C does something", "#C C looks around", "#C C moves his hands", "#C C adjusts the camera",
                     "#O man X talks to C", "#C C holds something")
HTM_UNINFORMATIVE = ("ok so now", "and there you go", "just like that", "alright let me show you", "this part is important",
                     "you can see it here", "so yeah")
HTM_TEMPLATES = ("now {v} your {o}", "go ahead and {v} the {o}", "next we {v} the {o}", "so I'm just gonna {v} this {o}",
                 "{v} the {o} like this", "then you want to {v} the {o}", "first {v} the {o}")
# Ego-Exo4D atomic descriptions: "C ..." subject style, no tags (doubt is the `unsure` field).
ATOMIC_UNINFORMATIVE = ("C moves his hands", "C looks at the table", "C adjusts his hands", "C holds something",
                        "C touches the counter", "C moves the item")
ATOMIC_IDLE = ("C looks around the kitchen", "C stands at the table", "C looks at the counter", "C pauses",
               "C puts his hands down", "C turns his head")
EGO_EXTRAS = {"cut": " with a knife", "peel": " with a peeler", "wash": " in the sink", "pour": " into the bowl",
              "stir": " with a spoon", "open": ""}


def _pick(rng: np.random.Generator, xs):
    return xs[int(rng.integers(len(xs)))]


def _noun(rng: np.random.Generator, obj: str, wrong: bool) -> str:
    if wrong:
        obj = _pick(rng, [o for o in OBJECTS if o != obj])
    return _pick(rng, OBJECTS[obj])


def _kind(rng: np.random.Generator, allow_unsure: bool) -> str:
    r = rng.random()
    if r < P_WRONG:
        return "wrong_object"
    if r < P_WRONG + P_UNINFORMATIVE:
        return "uninformative"
    if allow_unsure and r < P_WRONG + P_UNINFORMATIVE + P_UNSURE:
        return "unsure"
    return "correct"


def ego4d_narration(rng: np.random.Generator, label_id: int) -> tuple[str, str]:
    """'#C C cuts the pepper' style text for one action."""
    verb, obj = CLASSES[label_id]
    kind = _kind(rng, allow_unsure=True)
    if kind == "uninformative":
        return _pick(rng, EGO_UNINFORMATIVE), kind
    v = _pick(rng, VERBS[verb][1])
    if kind == "unsure":
        return f"#C C {v} #unsure", kind
    extra = EGO_EXTRAS[verb] if rng.random() < 0.35 else ""
    return f"#C C {v} the {_noun(rng, obj, kind == 'wrong_object')}{extra}", kind


def htm_narration(rng: np.random.Generator, label_id: int, neighbour_id: int | None = None) -> tuple[str, str]:
    """HowTo100M-style spoken instruction for one action (or, misaligned, for `neighbour_id`)."""
    if neighbour_id is not None and rng.random() < P_MISALIGNED:
        text, _ = htm_narration(rng, neighbour_id)
        return text, "misaligned"
    verb, obj = CLASSES[label_id]
    kind = _kind(rng, allow_unsure=False)
    if kind == "uninformative":
        return _pick(rng, HTM_UNINFORMATIVE), kind
    v = _pick(rng, VERBS[verb][0])
    return _pick(rng, HTM_TEMPLATES).format(v=v, o=_noun(rng, obj, kind == "wrong_object")), kind


def atomic_description(rng: np.random.Generator, label_id: int, kind: str | None = None) -> tuple[str, str]:
    """'C slices the pepper with a knife' style text for one action (Ego-Exo4D atomic descriptions).

    Same imperfections as the Ego4D narrations; kind "unsure" gives a vague 'C cuts something'
    that the writer flags with `unsure: true`. `kind` forces one (e.g. "wrong_object").
    """
    verb, obj = CLASSES[label_id]
    kind = kind or _kind(rng, allow_unsure=True)
    if kind == "uninformative":
        return _pick(rng, ATOMIC_UNINFORMATIVE), kind
    v = _pick(rng, VERBS[verb][1])
    if kind == "unsure":
        return f"C {v} something", kind
    extra = EGO_EXTRAS[verb] if rng.random() < 0.5 else ""
    return f"C {v} the {_noun(rng, obj, kind == 'wrong_object')}{extra}", kind


def idle_description(rng: np.random.Generator) -> tuple[str, str]:
    """An atomic description of a moment between keysteps."""
    return _pick(rng, ATOMIC_IDLE), "idle"
