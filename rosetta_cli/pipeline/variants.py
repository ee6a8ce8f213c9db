"""The pretraining variants the demo and the claims compare, keyed by slug, and what each reads.

A variant is looked up by its slug ("ours", "no-rst", ...), never by its place in VARIANTS: the
claims' tables name their rows through the slugs, so reordering the variants changes no label.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from rosetta_cli.pipeline.table import output_path


@dataclass(frozen=True)
class Variant:
    """One pretraining variant: its display name, output folder, pairs and switches."""

    name: str
    slug: str                         # MODEL_DIR name under models/, and the variant's key
    pairs: str | None                 # mining strategy of its pseudo-pairs; None = synchronized pairs only
    translated: bool = False          # read the translated store (the video-synthetic loss L_vs)
    switches: tuple[str, ...] = ()    # pretrain's boolean options it turns on ("no_soft" → --no-soft)
    unpaired_fraction: float = 1.0    # share of the unpaired ego clips it may use (claim 2)
    epochs: int | None = None         # train --epochs passes over its data instead of the run's --steps


def keyed(*variants: Variant) -> dict[str, Variant]:
    return {v.slug: v for v in variants}


# The paper's Table 1 comparison and Fig. 7's ablations, keyed by slug. Every variant trains the
# same number of steps with the same batch (DemoConfig.steps / batch_size), so only the data and
# losses differ. Random-align aligns at random: its pairs keep no soft weights (w = 1).
VARIANTS: dict[str, Variant] = keyed(
    Variant("ViewpointRosetta", "ours", "rst", translated=True),
    Variant("w/o soft alignment", "no-soft", "rst", translated=True, switches=("no_soft",)),
    Variant("w/o RST (text-align, SUM-L-like)", "no-rst", "text", switches=("no_synthetic",)),
    Variant("Random-align", "random", "random", switches=("no_synthetic", "no_soft")),
    Variant("VI-encoder (paired only)", "paired-only", None),
)
# Fig. 5: the three curves over the share of unpaired data. 0% is the paired-only encoder and 100%
# the variant itself. The paper trains the same epochs at every size (its compute grows with the
# data); the claims also train the same steps.
SCALING_CURVES = ("ours", "no-rst", "random")
SCALING_FRACTIONS = (0.25, 0.5)

STEPS, BATCH_SIZE = 500, 64  # the one budget of every variant: steps of a global batch (fits the demo's 10 min)
DEMO_MINING = ("rst", "text", "random")
CLAIMS_MINING = ("rst", "text", "visual", "random")
GALLERIES = {"report": None, "report-other-takes": "other-takes"}  # report folder → bench --gallery
MINING_TOPK = 1  # the pairs every variant trains on: each ego clip's best exo match


def _pct(f: float) -> str:
    return f"{round(f * 100)}%"


def scaling_variants(epochs: int | None) -> dict[str, Variant]:
    """The extra runs of Fig. 5 under one budget: equal steps (epochs None) or `epochs` passes."""
    tag = "" if epochs is None else "-ep"
    fractions = SCALING_FRACTIONS if epochs is None else (0.0, *SCALING_FRACTIONS, 1.0)
    out = []
    for base in SCALING_CURVES:
        for f in fractions:
            if f == 0.0:
                continue
            v = VARIANTS[base]
            out.append(replace(v, name=f"{v.name}, {_pct(f)} unpaired" + (f", {epochs} epochs" if epochs else ""),
                               slug=f"{base}-{round(f * 100)}{tag}", unpaired_fraction=f, epochs=epochs))
    if epochs is not None:
        v = VARIANTS["paired-only"]
        out.append(replace(v, name=f"{v.name}, {epochs} epochs", slug=f"paired-only{tag}", epochs=epochs))
    return keyed(*out)


def scaling_slug(base: str, fraction: float, epochs: int | None) -> str:
    """The variant at one point of a Fig. 5 curve (0% is the paired-only encoder under that budget)."""
    tag = "" if epochs is None else "-ep"
    if fraction == 0.0:
        return f"paired-only{tag}"
    if fraction == 1.0 and epochs is None:
        return base
    return f"{base}-{round(fraction * 100)}{tag}"


def names(variants: dict[str, Variant]) -> dict[str, str]:
    """slug → display name (the name bench reports its row under)."""
    return {slug: v.name for slug, v in variants.items()}


def pairs_file(layout: dict, strategy: str):
    """The pairs store of one mining strategy in a run folder (pipeline.table.layout)."""
    return layout["pairs"].parent / output_path("mine", strategy=strategy, topk=MINING_TOPK)


def inputs(v: Variant, layout: dict) -> dict:
    """{role: path} a variant's pretraining reads from a run folder (pipeline.table.layout)."""
    roles = {"paired": layout["paired"]}
    if v.pairs:
        roles |= {"ego": layout["ego"], "exo": layout["exo"], "pairs": pairs_file(layout, v.pairs)}
    if v.translated:
        roles["translated"] = layout["translated"]
    return roles


def options(v: Variant) -> dict:
    """The pretrain options that make the variant what it is (its budget is the caller's)."""
    return {**{s: True for s in v.switches},
            "unpaired_fraction": v.unpaired_fraction if v.unpaired_fraction != 1.0 else None}
