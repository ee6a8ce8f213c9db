"""Every option that sets a config dataclass field defaults to that field's default: the CLI and the
library (and the docs generated from the help) cannot drift apart.

An option maps to a field by its parameter name or its long flag (`--index` → `index`); options
that a command turns into another field (`--no-soft` → soft, `--k` → ks) have no same-named field
and are not compared. Options whose config has no default (required inputs) are not compared."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import typer

from rosetta_cli.bench.run import BenchConfig
from rosetta_cli.claims.run import ClaimsConfig
from rosetta_cli.cli.app import app
from rosetta_cli.contrastive.config import PretrainConfig
from rosetta_cli.contrastive.embed import EmbedConfig
from rosetta_cli.demo import DemoConfig
from rosetta_cli.extract.config import ExtractConfig
from rosetta_cli.mining.config import MineConfig
from rosetta_cli.rst.config import RSTModelConfig, RSTTrainConfig, TranslateConfig
from rosetta_cli.search.index import IndexConfig
from rosetta_cli.search.retrieve import RetrieveConfig
from rosetta_cli.store.importer import ImportConfig
from rosetta_cli.toy.stage import ToyConfig
from rosetta_cli.video.prep import PrepConfig

# command path → the config dataclasses its options fill, the first one winning a shared name
CONFIGS = {
    "extract": (ExtractConfig,), "mine": (MineConfig,), "pretrain": (PretrainConfig,), "embed": (EmbedConfig,),
    "train-rst": (RSTModelConfig, RSTTrainConfig), "translate": (TranslateConfig,), "index": (IndexConfig,),
    "retrieve": (RetrieveConfig,), "bench": (BenchConfig,), "toy": (ToyConfig,), "demo": (DemoConfig,),
    "claims": (ClaimsConfig,), "store import": (ImportConfig,), "prep": (PrepConfig,),
}


def commands() -> dict:
    """Every leaf command of `rosetta`, by its path ("store import")."""
    group = typer.main.get_command(app)
    found = {}
    for name, cmd in group.commands.items():
        for sub, leaf in (getattr(cmd, "commands", None) or {None: cmd}).items():
            found[f"{name} {sub}" if sub else name] = leaf
    return found


def field_defaults(classes) -> dict:
    out = {}
    for cls in classes:
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING:
                out.setdefault(f.name, f.default)
    return out


def comparable(v):
    """A field's value as an option spells it: paths as text, tuples of ints as a comma list."""
    if isinstance(v, Path):
        return str(v)
    if isinstance(v, tuple) and all(isinstance(x, int) for x in v):
        return ",".join(map(str, v))
    return v


def test_every_stage_command_has_its_config():
    assert set(CONFIGS) <= set(commands()), set(CONFIGS) - set(commands())


# Options whose default deliberately differs from the field's, and why.
DIFFERENT = {
    ("bench", "tasks"): "None: every task, skipping those the stores lack labels for; a list given is explicit",
}


def mismatches(path: str, cmd) -> tuple[list[str], list[str]]:
    """(fields compared, one message per option whose default differs from its field's)."""
    fields = field_defaults(CONFIGS[path])
    compared, wrong = [], []
    for p in cmd.params:
        if p.param_type_name != "option" or p.required:
            continue
        long = next((o[2:].replace("-", "_") for o in p.opts if o.startswith("--")), None)
        key = p.name if p.name in fields else long if long in fields else None
        if key is None or (path, key) in DIFFERENT:
            continue
        compared.append(key)
        if comparable(p.default) != comparable(fields[key]):
            wrong.append(f"--{long}: option default {p.default!r} != {CONFIGS[path][0].__name__}.{key} = {fields[key]!r}")
    return compared, wrong


@pytest.mark.parametrize("path", sorted(CONFIGS))
def test_option_defaults_equal_config_defaults(path):
    compared, wrong = mismatches(path, commands()[path])
    assert not wrong, f"`rosetta {path}`: " + "; ".join(wrong)
    assert compared, f"`rosetta {path}`: no option maps to a config field"


def test_a_changed_default_is_caught():
    """The check can fail: an option default that differs from its dataclass field is reported."""
    cmd = commands()["extract"]
    next(p for p in cmd.params if p.name == "frames").default = ExtractConfig.frames + 1
    assert mismatches("extract", cmd)[1] == ["--frames: option default 5 != ExtractConfig.frames = 4"]


def test_device_defaults_to_auto_where_the_stage_resolves_it():
    """One --device default: auto everywhere but `embed` (EmbedConfig's own default is cpu)."""
    devices = {path: next(p.default for p in cmd.params if p.name == "device")
               for path, cmd in commands().items() if any(p.name == "device" for p in cmd.params)}
    assert {p for p, d in devices.items() if d != "auto"} == {"embed"}, devices
    assert len(devices) == 8


def test_shared_options_have_one_help_text():
    from rosetta_cli.cli import options

    helps = {}
    for path, cmd in commands().items():
        for p in cmd.params:
            if p.name in ("as_json", "json_out", "device", "seed", "overwrite", "resume", "workers"):
                helps.setdefault(p.opts[0], set()).add(p.help)
    assert helps["--json"] == {options.JSON_HELP}
    assert helps["--device"] == {options.DEVICE_HELP}
    assert helps["--seed"] == {options.SEED_HELP}
    assert helps["--overwrite"] == {options.OVERWRITE_HELP}
    assert helps["--resume"] == {options.RESUME_HELP}
    assert helps["--workers"] == {options.WORKERS_HELP}
