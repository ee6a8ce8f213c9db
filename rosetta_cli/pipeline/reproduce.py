"""examples/reproduce.sh, generated from the pipeline's table and the variants (one `rosetta` command a stage).

    python -m rosetta_cli.pipeline --reproduce > examples/reproduce.sh

Every command line is `table.argv` of its stage with shell variables for the paths and budgets
($OUT, $SEED, $STEPS, ...), so the script and `rosetta demo` run the same graph;
tests/test_pipeline.py checks that the committed script is this text and that every command in it
parses with the real CLI.
"""

from __future__ import annotations

import shlex
from pathlib import PurePosixPath

from rosetta_cli.pipeline import table, variants

OUT = PurePosixPath("$OUT")
ROOTS = {"egoexo4d": "EGOEXO4D_ROOT", "ego4d": "EGO4D_ROOT", "htm-aa": "HTM_ROOT"}  # dataset → env var of its videos
WIDTH = 118  # wrap command lines before an option past this column


class Raw(str):
    """A shell word written as is (an array expansion), not quoted."""


PRELUDE = f'''#!/usr/bin/env bash
# Viewpoint Rosetta Stone, one `rosetta` command per stage. Readable as documentation.
# Generated from the pipeline's table (rosetta_cli/pipeline/table.py) by
#   python -m rosetta_cli.pipeline --reproduce > examples/reproduce.sh
# (tests/test_pipeline.py checks that this file is that output); edit the table, not this file.
#
# Defaults to the synthetic toy world (no downloads). Point it at real data with:
#   EGOEXO4D_ROOT=/data/egoexo4d  (takes.json, annotations/keystep_segment_*.json, ...)  → paired store + benchmark
#   EGO4D_ROOT=/data/ego4d        (narration.json + {{video_uid}}.mp4)                     → unpaired ego
#   HTM_ROOT=/data/htm-aa         (htm_aa_v1.csv + {{vid}}.mp4)                             → unpaired exo
#   DEVICE=cuda NPROC=8           run {", ".join(s.command for s in table.STAGES if s.torchrun)} under torchrun on 8 GPUs
#   OUT=runs/paper SCALE=small SEED=0 WORKERS=8
#   STEPS={variants.STEPS} BATCH={variants.BATCH_SIZE}              pretraining budget of every variant (the same for all, as claims need)
#   LAVILA_CKPT=ckpt/clip_openai_timesformer_base.narrator_rephraser.ep_0005.md5sum_d73a9c.pth
#                                 the paper's f_phi: LaViLa TSF-B, 4 frames, 224 crop, clip features [N, 1, 256]
#                                 (the video side; narrations keep minilm as the paper's sentence encoder)
set -euo pipefail

OUT=${{OUT:-runs/toy}}
SCALE=${{SCALE:-small}}
SEED=${{SEED:-0}}
DEVICE=${{DEVICE:-auto}}
NPROC=${{NPROC:-1}}
WORKERS=${{WORKERS:-2}}
STEPS=${{STEPS:-{variants.STEPS}}}
BATCH=${{BATCH:-{variants.BATCH_SIZE}}}
ENCODER=(); FRAMES=4
if [ -n "${{LAVILA_CKPT:-}}" ]; then
  ENCODER=(--encoder "lavila:$LAVILA_CKPT")   # 4 frames at 224² per clip, as in the paper
fi

# `rosetta` or `torchrun --nproc_per_node N -m rosetta_cli` for the distributed stages.
if [ "$NPROC" -gt 1 ]; then
  DIST=(torchrun --standalone --nproc_per_node "$NPROC" -m rosetta_cli)
else
  DIST=(rosetta)
fi
'''

# What the table's one-line description leaves out, per stage: why the line looks as it does.
NOTES = {
    "extract": "Resumable: rerun the same line after an interruption. Exit 3 = some clips failed; go on.",
    "mine": "Ours (rst) and the two baselines.",
    "pretrain": "Every variant with the same budget (STEPS steps of BATCH): ours, the two ablations (w/o soft\n"
                "alignment, w/o RST = text-mined pairs without L_vs), random-align, paired-only.",
    "bench": "Table-1 style, then the same with each query's own take removed from its gallery (matching\n"
             "the same step across takes, not the same moment).",
}


def word(w: str) -> str:
    """One shell word: a variable reference in double quotes, anything else quoted only if it must be."""
    if isinstance(w, Raw):
        return w
    return f'"{w}"' if "$" in w else shlex.quote(w)


def line(argv: list[str], tail: str = "") -> str:
    """A command as shell text, wrapped before an option (with its value) that would pass WIDTH columns."""
    st = table.stage(argv[0])
    units: list[str] = []  # the program and command, then each option with its value
    for w in [Raw('"${DIST[@]}"') if st.torchrun else "rosetta"] + list(argv):
        if units and not w.startswith("--") and len(units) > 2:
            units[-1] += " " + word(w)
        else:
            units.append(word(w))
    out, cur = [], ""
    for u in units:
        if cur.strip() and len(cur) + len(u) + 1 > WIDTH:
            out.append(cur + " \\")
            cur = "  " + u
        else:
            cur = f"{cur} {u}" if cur else u
    return "\n".join(out + [cur + tail])


def header(command: str) -> str:
    st = table.stage(command)
    note = NOTES.get(command)
    text = f"# {st.step}. rosetta {command}: {st.does}."
    return text + ("".join(f"\n#    {n}" for n in note.split("\n")) if note else "")


def commands() -> list[tuple[str, list[list[str]], str]]:
    """(stage command, argvs, shell tail of each line) in pipeline order: the script's body as data."""
    p = table.layout(OUT)
    device, seed = {"device": "$DEVICE"}, {"seed": "$SEED"}
    extract = [table.argv("extract", {}, p[role], {"videos": f"${ROOTS[d]}", **device, "workers": "$WORKERS",
                                                   "frames": "$FRAMES"}) + [Raw('${ENCODER[@]+"${ENCODER[@]}"}')]
               for d, role in table.SOURCES.items()]
    mine = [table.argv("mine", p, variants.pairs_file(p, s), {"strategy": s, "topk": variants.MINING_TOPK, **seed})
            for s in variants.DEMO_MINING]
    budget = {"steps": "$STEPS", "batch_size": "$BATCH", **device, **seed}
    pretrain = [table.argv("pretrain", variants.inputs(v, p), p["models"] / v.slug,
                           {**variants.options(v), **budget, "name": v.name}) for v in variants.VARIANTS.values()]
    models = [kv for v in variants.VARIANTS.values() for kv in (("model", p["models"] / v.slug), ("name", v.name))]
    bench = [table.argv("bench", p, OUT / folder, [("gallery", gallery), *seed.items(), *models])
             for folder, gallery in variants.GALLERIES.items()]
    return [("extract", extract, " || [ $? -eq 3 ]"),
            ("train-rst", [table.argv("train-rst", p, p["rst"], {**device, **seed})], ""),
            ("translate", [table.argv("translate", p, p["translated"], {**device, **seed})], ""),
            ("mine", mine, ""), ("pretrain", pretrain, ""), ("bench", bench, "")]


def script() -> str:
    """The whole of examples/reproduce.sh."""
    p = table.layout(OUT)
    world = word(str(p["world"]))
    toy = line(table.argv("toy", {}, p["world"], {"scale": "$SCALE", "seed": "$SEED"}),
               f" || [ -f {word(str(table.marker('toy', p['world'])))} ]")
    parts = [PRELUDE,
             "# 1. rosetta toy: the synthetic world, unless real roots are given.",
             'if [ -z "${EGOEXO4D_ROOT:-}${EGO4D_ROOT:-}${HTM_ROOT:-}" ]; then', "  " + toy, "fi"]
    parts += [f"{var}=${{{var}:-{world[1:-1]}/{d}}}" for d, var in ROOTS.items()]
    for command, argvs, tail in commands():
        parts += ["", header(command)] + [line(a, tail) for a in argvs]
    parts.append(f'echo "report: {OUT / next(iter(variants.GALLERIES))}/index.html"')
    return "\n".join(parts) + "\n"
