"""Checkpoint directories: safetensors weights + JSON config + a weights_only training state.

Layout of a checkpoint directory:
  config.json          {"format": "rosetta-checkpoint", "format_version", "kind", "model": {...}, ...}
  model.safetensors    model weights
  ema.safetensors      EMA weights (optional)
  state.pt             optimizer/scheduler/step/torch RNG (tensors + plain containers only, so it
                       loads with torch.load(weights_only=True); never an arbitrary pickle)
  rng.json             numpy / python RNG states (JSON)
  (train-rst and pretrain put metrics.jsonl and loss.png beside them: runtime.trainer.Checkpointer)
Writes go to a temporary sibling directory that is renamed into place, so a crash
never leaves a half-written checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import random
import shutil
from pathlib import Path

import numpy as np

from rosetta_cli.errors import CheckpointError, InputNotFound
from rosetta_cli.runtime import atomic
from rosetta_cli.provenance import sha256_file

CKPT_FORMAT = "rosetta-checkpoint"
CKPT_VERSION = 1


def save_checkpoint(path, *, kind: str, config: dict, model_state: dict, ema_state: dict | None = None,
                    train_state: dict | None = None, np_rng: np.random.Generator | None = None,
                    extra_files: dict | None = None, carry: tuple = (), lock=None) -> Path:
    """Atomically write (or replace) the checkpoint directory `path`.

    extra_files: {file name: str | bytes} written into the directory before it is renamed
    into place (e.g. a run's plots, so they always match the weights). carry: names of files of the
    directory being replaced that the new one keeps (e.g. metrics.jsonl, appended while training),
    copied and swapped under `lock` (a context manager the appending writer holds too)."""
    path = Path(path)
    atomic.recover_dir(path)
    tmp = atomic.temp_path(path)
    shutil.rmtree(tmp, ignore_errors=True)  # left by a killed writer with our pid
    tmp.mkdir(parents=True)
    try:
        _write(tmp, kind, config, model_state, ema_state, train_state, np_rng, extra_files)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    with lock if lock is not None else contextlib.nullcontext():
        for name in carry:
            if (path / name).is_file():
                shutil.copyfile(path / name, tmp / name)
        atomic.replace_dir(tmp, path)
    return path


def _write(tmp: Path, kind, config, model_state, ema_state, train_state, np_rng, extra_files) -> None:
    import torch
    from safetensors.torch import save_file

    save_file({k: v.detach().contiguous().cpu() for k, v in model_state.items()}, str(tmp / "model.safetensors"))
    if ema_state is not None:
        save_file({k: v.detach().contiguous().cpu() for k, v in ema_state.items()}, str(tmp / "ema.safetensors"))
    if train_state is not None:
        torch.save(train_state, tmp / "state.pt")
    rng = {"python": _py_state_to_json(random.getstate())}
    if np_rng is not None:
        rng["numpy"] = np_rng.bit_generator.state
    (tmp / "rng.json").write_text(json.dumps(rng))
    for fname, content in (extra_files or {}).items():
        (tmp / fname).write_bytes(content.encode() if isinstance(content, str) else content)
    meta = {"format": CKPT_FORMAT, "format_version": CKPT_VERSION, "kind": kind, **config}
    meta["weights_sha256"] = sha256_file(tmp / "model.safetensors")
    (tmp / "config.json").write_text(json.dumps(meta, indent=2, default=str))


def read_config(path, kind: str | None = None) -> dict:
    """config.json of a checkpoint, checked for format, version and kind."""
    path = Path(path)
    atomic.recover_dir(path)
    if not path.exists():
        raise InputNotFound(f"{path}: no such checkpoint", hint="train one first, or check the path")
    cfg_file = path / "config.json"
    if not cfg_file.exists():
        raise _not_a_checkpoint(path, kind)
    try:
        meta = json.loads(cfg_file.read_text())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{cfg_file}: unreadable checkpoint config ({e})",
                              hint="the checkpoint is damaged; retrain or restore it") from e
    if meta.get("format") != CKPT_FORMAT:
        raise CheckpointError(f"{path}: not a rosetta checkpoint", hint="give a directory written by rosetta")
    if meta.get("format_version") != CKPT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format v{meta.get('format_version')} but this rosetta reads v{CKPT_VERSION}",
                              hint="retrain with this version")
    if kind is not None and meta.get("kind") != kind:
        raise CheckpointError(f"{path}: is a {meta.get('kind')!r} checkpoint ({MADE_BY.get(meta.get('kind'), '?')}), "
                              f"but this needs a {kind!r} one", hint=_want(kind))
    return meta


# which command writes each checkpoint kind (for messages that name the right input)
MADE_BY = {"rst": "from `rosetta train-rst`", "dual-encoder": "from `rosetta pretrain`"}


def _want(kind: str | None) -> str:
    return f"give a directory {MADE_BY[kind]}" if kind in MADE_BY else "give a directory written by rosetta"


def _not_a_checkpoint(path: Path, kind: str | None) -> CheckpointError:
    """No config.json: name what the directory is when it is another stage's output (an RST_DIR holds
    its checkpoint in checkpoint/), rather than calling it damaged."""
    inner = path / "checkpoint" / "config.json"
    if inner.exists():
        try:
            other = json.loads(inner.read_text()).get("kind")
        except (OSError, ValueError):
            other = None
        if other != kind:
            return CheckpointError(f"{path}: is a {other!r} checkpoint directory ({MADE_BY.get(other, '?')}), "
                                   f"not a {kind!r} checkpoint", hint=_want(kind))
    if path.is_file():
        return CheckpointError(f"{path}: is a file, not a checkpoint directory", hint=_want(kind))
    return CheckpointError(f"{path}: not a checkpoint (no config.json)", hint=_want(kind))


def load_weights(path, name: str = "model") -> dict:
    """Tensors of `<name>.safetensors` in a checkpoint dir (raises CheckpointError if damaged)."""
    from safetensors.torch import load_file

    f = Path(path) / f"{name}.safetensors"
    try:
        return load_file(str(f))
    except Exception as e:  # safetensors raises several types on truncation
        raise CheckpointError(f"{f}: damaged or missing weights ({type(e).__name__}: {e})",
                              hint="retrain, or resume from an intact checkpoint") from e


def load_train_state(path) -> dict | None:
    import torch

    f = Path(path) / "state.pt"
    if not f.exists():
        return None
    try:
        return torch.load(f, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{f}: damaged training state ({type(e).__name__})", hint="cannot resume; start afresh") from e


def restore_rng(path, np_rng: np.random.Generator | None = None) -> None:
    f = Path(path) / "rng.json"
    if not f.exists():
        return
    rng = json.loads(f.read_text())
    random.setstate(_py_state_from_json(rng["python"]))
    if np_rng is not None and "numpy" in rng:
        np_rng.bit_generator.state = rng["numpy"]


def verify_weights(path) -> None:
    """Raise CheckpointError if model.safetensors does not match the recorded sha256."""
    meta = read_config(path)
    if meta.get("weights_sha256") and sha256_file(Path(path) / "model.safetensors") != meta["weights_sha256"]:
        raise CheckpointError(f"{path}: weights do not match their recorded checksum", hint="the file is damaged")


def _py_state_to_json(state):
    return [state[0], list(state[1]), state[2]]


def _py_state_from_json(state):
    return (state[0], tuple(state[1]), state[2])
