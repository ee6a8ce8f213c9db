"""The pipeline's one table of stages: what each reads and writes, where, and how to tell it is done.

Everything that walks the pipeline reads it from here, so the stage graph is written once:
- workspace/config.py: the roles of rosetta.toml (with the command that makes each) and the stages
  it keeps option defaults for;
- workspace/resolve.py: which flag a workspace fills from which role, and each output's path;
- workspace/status.py: the stages `rosetta status` lists, in order, and where a checkpoint records
  its config (`checkpoint_config`);
- demo.py and claims/: every stage's argv (`argv`), its step number, and its completion (`complete`);
- examples/reproduce.sh, generated from this table by `python -m rosetta_cli.pipeline --reproduce`.

`python -m rosetta_cli.pipeline` prints the table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Iterable

from rosetta_cli.store import Store



@dataclass(frozen=True)
class Input:
    """An input a stage reads: the flag that names it and the role that fills it."""

    flag: str
    role: str
    required: bool = True
    when: tuple[str, str] | None = None  # (option, value): read only then (mine --translated: --strategy rst)


@dataclass(frozen=True)
class Stage:
    """One row of the table."""

    command: str                    # `rosetta COMMAND`
    step: int                       # its place in the pipeline (the demo prints "3/7 train-rst: ...")
    does: str                       # one line: what it makes
    inputs: tuple[Input, ...] = ()
    output: str | None = None       # the role its output plays (None: none, or extract's, which SOURCES gives)
    path: str = ""                  # conventional output path under a workspace root; {fields}: see `output_path`
    done: str = "store"             # how to tell its output is complete: store | checkpoint | world | report
    workspace: bool = True          # rosetta.toml keeps [defaults.COMMAND] for it
    torchrun: bool = False          # runs under torchrun (ranks share the work)
    out_flag: str = "--out"


# What each role holds (workspace roles; rosetta.toml's [roles] keys, in pipeline order).
ROLE_DOCS = {
    "paired": "synchronized ego-exo features (Ego-Exo4D layout)",
    "ego": "unpaired ego features (Ego4D layout)",
    "exo": "unpaired exo features (HTM-AA layout)",
    "rst": "Rosetta Stone Translator checkpoint",
    "translated": "ego features translated to exo",
    "pairs": "mined pseudo-pairs",
    "model": "pretrained dual encoder",
}
# extract makes one store per source: the dataset layout of its videos → the role the store plays.
SOURCES = {"egoexo4d": "paired", "ego4d": "ego", "htm-aa": "exo"}

STAGES: tuple[Stage, ...] = (
    Stage("toy", 1, "synthetic world: real MP4s + annotations in the three datasets' formats",
          path="world", done="world", workspace=False),
    Stage("extract", 2, "decode → frozen encoder → features store (+ narration embeddings)",
          path="features/{videos}.zarr", torchrun=True),  # its role follows its source: SOURCES
    Stage("train-rst", 3, "DiT-style conditional diffusion, ego → exo, on synchronized pairs",
          (Input("--paired", "paired"),), output="rst", path="rst", done="checkpoint", torchrun=True),
    Stage("translate", 4, "ego store → store of hallucinated exo features",
          (Input("--rst", "rst"), Input("--ego", "ego")), output="translated", path="features/{ego}.translated.zarr",
          torchrun=True),
    Stage("mine", 5, "faiss search: concat(T(z_ego), e_ego) vs concat(z_exo, e_exo) → pairs store",
          (Input("--ego", "ego"), Input("--exo", "exo"), Input("--translated", "translated", False, ("strategy", "rst"))),
          output="pairs", path="pairs/{strategy}-top{topk}.zarr"),
    Stage("pretrain", 6, "dual encoder: soft video-video + video-text + video-synthetic InfoNCE",
          tuple(Input(f"--{r}", r, False) for r in ("paired", "ego", "exo", "pairs", "translated")),
          output="model", path="models/{name}", done="checkpoint", torchrun=True),
    Stage("bench", 7, "cross-view retrieval, recognition, skill → table, JSON, plots, HTML",
          (Input("--ego", "paired"), Input("--exo", "paired"), Input("--model", "model", False)),
          path="reports/{date}", done="report"),
)
BY_COMMAND = {s.command: s for s in STAGES}
MARKERS = {"world": "world.json", "report": "results.json"}  # the file a finished world / report writes last


def stage(command: str) -> Stage:
    return BY_COMMAND[command]


def maker(role: str) -> str:
    """The command that makes a role's store or checkpoint, as a hint (`rosetta extract --videos ego4d/`)."""
    for dataset, r in SOURCES.items():
        if r == role:
            return f"rosetta extract --videos {dataset}/"
    return next(f"rosetta {s.command}" for s in STAGES if s.output == role)


def output_path(command: str, **fields) -> str:
    """A stage's conventional output, relative to a workspace root. Fields: extract `videos` (the
    videos folder's name), translate `ego` (the ego store's stem), mine `strategy` and `topk`,
    pretrain `name`, bench `date`."""
    return stage(command).path.format(**fields)


def layout(root: PurePath, ego: str = "ego4d") -> dict[str, PurePath]:
    """The conventional paths of a run folder (the demo's, a claims seed's, reproduce.sh's $OUT):
    every role's path, plus `world`, and the folders `pairs` and `models` that hold one output each
    per mining strategy / pretraining variant."""
    p = {role: root / output_path("extract", videos=dataset) for dataset, role in SOURCES.items()}
    p["world"] = root / output_path("toy")
    p["rst"] = root / output_path("train-rst")
    p["translated"] = root / output_path("translate", ego=ego)
    p["pairs"] = (root / output_path("mine", strategy="s", topk=1)).parent
    p["models"] = (root / output_path("pretrain", name="n")).parent
    return p


def argv(command: str, inputs: dict, out, options: dict | Iterable[tuple[str, object]] = ()) -> list[str]:
    """`[command, flag, path, ..., --out, out, --option, value, ...]` for one stage.

    inputs: {role: path} (a role the stage reads; a required one must be given); options: {name:
    value} or (name, value) pairs, spelled as the CLI spells them (batch_size → --batch-size; True
    → the bare flag; None and False → left out; a list → the option repeated)."""
    st = stage(command)
    items = list(options.items() if isinstance(options, dict) else options)
    given = dict(items)
    args = [command]
    for i in st.inputs:
        if i.when is not None and given.get(i.when[0], i.when[1]) != i.when[1]:
            continue
        if i.role in inputs and inputs[i.role] is not None:
            args += [i.flag, str(inputs[i.role])]
        elif i.required:
            raise ValueError(f"{command} needs its '{i.role}' input ({i.flag})")
    args += [st.out_flag, str(out)]
    for name, value in items:
        for v in value if isinstance(value, (list, tuple)) else [value]:
            flag = "--" + name.replace("_", "-")
            if v is True:
                args.append(flag)
            elif v is not None and v is not False:
                args += [flag, str(v)]
    return args


def checkpoint_config(path: Path) -> Path | None:
    """The config.json of a checkpoint output: OUT/config.json (both trainers' layout), or
    RST_DIR/checkpoint/config.json (RST directories written before the layouts were unified)."""
    for f in (path / "config.json", path / "checkpoint" / "config.json"):
        if f.exists():
            return f
    return None


def checkpoint_complete(path: Path) -> bool:
    """The checkpoint-completion rule: train-rst writes metrics.json after its final validation;
    both trainers' checkpoints record step / total_steps (older pretrain ones epoch / train.epochs)."""
    if (path / "metrics.json").exists():
        return True
    cfg = path / "config.json"
    if not cfg.exists():
        return False
    meta = json.loads(cfg.read_text())
    if "total_steps" in meta:
        return meta.get("step", 0) >= meta["total_steps"]
    return meta.get("epoch", 0) >= (meta.get("train") or {}).get("epochs", float("inf"))


def store_complete(path: Path) -> bool:
    """A store is complete when finalized with no pending rows (a pairs store has no row status)."""

    try:
        with Store.open(path) as st:
            return bool(st.meta.get("finalized")) and (st.kind == "pairs" or st.status_counts()["pending"] == 0)
    except Exception:  # unreadable or half-created: not complete, the stage reruns
        return False


def marker(command: str, folder: Path) -> Path:
    """The path whose state tells whether `command`'s output `folder` is finished: world.json of a world,
    results.json of a report, the store or checkpoint itself otherwise."""
    name = MARKERS.get(stage(command).done)
    return folder / name if name else folder


def complete(command: str, path: Path) -> bool:
    """True when `command`'s output at `path` (its `marker`) exists and finished."""
    if not path.exists():
        return False
    kind = stage(command).done
    if kind == "store":
        return store_complete(path)
    if kind == "checkpoint":
        return checkpoint_complete(path)
    return True  # world.json / results.json are written last, atomically


def rows() -> list[dict]:
    """The table as records (what `python -m rosetta_cli.pipeline` prints)."""
    out = []
    for s in STAGES:
        ins = ", ".join(f"{i.flag} {i.role}" + ("" if i.required else "?") for i in s.inputs)
        role = "/".join(SOURCES.values()) if s.command == "extract" else (s.output or "-")
        out.append({"step": s.step, "command": f"rosetta {s.command}", "inputs": ins or "-", "output": role,
                    "path": s.path, "complete when": COMPLETE_WHEN[s.done], "does": s.does})
    return out


COMPLETE_WHEN = {"store": "store finalized, no pending rows", "checkpoint": "metrics.json, or step = total_steps",
                 "world": "world.json written", "report": "results.json written"}
