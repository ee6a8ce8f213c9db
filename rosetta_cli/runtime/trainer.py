"""What both trainers (rst.train and contrastive.train) share, so they behave alike:

- **resume identity**: each config's `resume_identity()` names the options a resumed run must keep;
  `check_resume` compares them, and the inputs, with what the checkpoint recorded (one error, one rule);
- **NaN guard**: `stop_if_not_finite`, checked every step on the loss averaged over ranks, before the
  backward, so the weights are still those of the last good step: they are checkpointed, then the run stops;
- **metrics.jsonl**: one JSON record a line, each with its "step"; `read_metrics(..., upto_step)` drops the
  lines a killed run wrote past its checkpoint, and `MetricsLog` appends (rank 0 only);
- **loss plot**: `loss_png`, the training loss per logged step (plus an optional second panel);
- **DDP wrap**: `wrap_ddp`, the one place a module is wrapped for torchrun.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path

from rosetta_cli.errors import CheckpointError, PipelineFailure
from rosetta_cli.runtime.dist import DistInfo
from rosetta_cli.runtime.plotting import png_bytes, pyplot


# ---------------------------------------------------------------------------- resume identity
def resume_mismatch(saved: dict, now: dict, legacy: dict | None = None) -> list[str]:
    """The keys of `now` whose value differs from `saved` (a key `saved` lacks counts as `legacy[key]`,
    what a checkpoint written before that option existed was trained with)."""
    legacy = legacy or {}
    return [k for k, v in now.items() if _plain(saved.get(k, legacy.get(k))) != _plain(v)]


def check_resume(where, saved: dict, now: dict, legacy: dict | None = None) -> None:
    """Raise CheckpointError naming every option or input that differs from the checkpoint's.

    saved: the identity recorded in the checkpoint (extra keys are ignored); now: this run's."""
    keys = resume_mismatch(saved, now, legacy)
    if not keys:
        return
    legacy = legacy or {}

    def detail(k):
        was, new = saved.get(k, legacy.get(k)), now[k]
        return k if isinstance(new, (list, dict)) else f"{k} was {was!r}, now {new!r}"

    raise CheckpointError(f"{where}: cannot resume: {', '.join(map(detail, keys))} (these differ from the "
                          "checkpoint's)",
                          hint="pass the same inputs and options as the first run, or --overwrite to start afresh")


def _plain(v):
    """JSON round trip (tuples → lists), so a recorded value compares equal to the live one."""
    return json.loads(json.dumps(v))


# ---------------------------------------------------------------------------- NaN guard
def stop_if_not_finite(value: float, step: int, where, save_last_good: Callable[[], None], info: DistInfo) -> None:
    """The NaN policy of every trainer.

    value: the loss of step `step` + 1, averaged over ranks (so every rank takes the same decision before
    its backward, and the weights are still those after `step`). Non-finite: rank 0 checkpoints them with
    `save_last_good`, and every rank raises PipelineFailure."""
    if math.isfinite(value):
        return
    if info.is_main:
        save_last_good()
    raise PipelineFailure(f"loss became {value} at step {step + 1}; training stopped, the last good state "
                          f"(step {step}) is checkpointed in {where}",
                          hint="lower --lr, check the stores with `rosetta store validate`, then --resume")


# ---------------------------------------------------------------------------- metrics.jsonl
def read_metrics(path: Path, upto_step: int | None = None) -> list[dict]:
    """The records of metrics.jsonl (none if absent), without blank or half-written lines (a killed run),
    and, with `upto_step`, without those past it (a run killed after its last checkpoint)."""
    path = Path(path)
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and (upto_step is None or int(rec.get("step", 0)) <= upto_step):
            out.append(rec)
    return out


def metrics_text(records: Sequence[dict]) -> str:
    """metrics.jsonl's text: one JSON record a line."""
    return "".join(json.dumps(r) + "\n" for r in records)


class MetricsLog:
    """metrics.jsonl appended record by record (flushed, so a kill loses at most the line being written).

    Opened at `step` (0 for a fresh run, the checkpoint's step on resume): lines past it, from a run
    killed after its last checkpoint, are dropped first, so the file lists every step once."""

    def __init__(self, path: Path, step: int):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(metrics_text(read_metrics(self.path, upto_step=step)))
        self._f = self.path.open("a")

    def write(self, record: dict) -> None:
        self._f.write(json.dumps(record) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()


# ---------------------------------------------------------------------------- loss plot
def loss_png(steps: Sequence[dict], *, keys: Sequence[str] = ("loss",), ylabel: str = "loss",
             title: str = "training loss", log_y: bool = False,
             second: Callable[[object], None] | None = None) -> bytes:
    """loss.png: `keys` of the step records against "step" ("loss" labelled "total" when there are
    several); `second(ax)` draws a right-hand panel (e.g. a held-out monitor)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4)) if second else plt.subplots(figsize=(6, 3.5))
    ax = axes[0] if second else axes
    x = [r["step"] for r in steps]
    shown = [k for k in keys if any(r.get(k) is not None for r in steps)]
    for k in shown:
        ax.plot(x, [r.get(k) for r in steps], lw=1.5 if k == "loss" else 0.8,
                label="total" if k == "loss" else k)
    ax.set(xlabel="step", ylabel=ylabel, title=title)
    if log_y:
        ax.set_yscale("log")
    if len(shown) > 1:
        ax.legend(fontsize=7)
    if second:
        second(axes[1])
    fig.tight_layout()
    return png_bytes(fig, dpi=90 if second else 100)


# ---------------------------------------------------------------------------- DDP
def wrap_ddp(module, info: DistInfo, find_unused_parameters: bool = False):
    """`module` wrapped in DistributedDataParallel under torchrun (gradients averaged over ranks); itself otherwise."""
    if not info.distributed:
        return module
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(module, device_ids=[info.local_rank] if info.device.startswith("cuda") else None,
                                   find_unused_parameters=find_unused_parameters)
