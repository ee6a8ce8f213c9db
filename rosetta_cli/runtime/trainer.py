"""What both trainers (rst.train and contrastive.train) share, so they behave alike:

- **resume identity**: each config's `resume_identity()` names the options a resumed run must keep;
  `check_resume` compares them, and the inputs, with what the checkpoint recorded (one error, one rule);
- **output directory**: `prepare_output`, one rule for an existing OUT (--resume / --overwrite / refuse);
- **metrics on the device**: `MetricWindow` sums each step's losses on the device and reads them once per
  log point (one all-reduce, one host copy): a training step holds no host sync;
- **NaN guard**: `stop_on_not_finite`, checked at each log point on the values averaged over ranks; a
  checkpoint is only written after a finite read, so the one on disk is the last good state;
- **checkpoints**: `Checkpointer`, one layout (OUT is the checkpoint directory), one state-key set, by
  steps and by wall time, copied to the CPU on the training thread and written by a background thread;
- **metrics.jsonl**: one JSON record a line, each with its "step"; `read_metrics(..., upto_step)` drops the
  lines a killed run wrote past its checkpoint, and `MetricsLog` appends (rank 0 only);
- **loss plot**: `loss_png`, the training loss per logged step (plus an optional second panel);
- **DDP wrap**: `wrap_ddp`, the one place a module is wrapped for torchrun.
"""

from __future__ import annotations

import json
import math
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from rosetta_cli.errors import CheckpointError, PipelineFailure, UsageError
from rosetta_cli.runtime.checkpoint import save_checkpoint
from rosetta_cli.runtime.dist import DistInfo, barrier
from rosetta_cli.runtime.guard import Action, output_action
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
    """metrics.jsonl appended record by record (a kill loses at most the line being written).

    Opened at `step` (0 for a fresh run, the checkpoint's step on resume): lines past it, from a run
    killed after its last checkpoint, are dropped first, so the file lists every step once. Each write
    opens the file anew under `lock`: a checkpoint swaps the directory it lives in (Checkpointer)."""

    def __init__(self, path: Path, step: int, lock: threading.Lock | None = None):
        self.path = Path(path)
        self.lock = lock or threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():  # created by the first write: an OUT holding only it would not be a checkpoint
            self.path.write_text(metrics_text(read_metrics(self.path, upto_step=step)))

    def write(self, record: dict) -> None:
        with self.lock, self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")

    def close(self) -> None:
        """Nothing is held open (kept so callers read alike)."""


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


# ---------------------------------------------------------------------------- output directory
def checkpoint_in(out) -> Path | None:
    """The checkpoint directory of a run's OUT: OUT itself (the one layout), or OUT/checkpoint (train-rst
    before the layouts were unified; still read and resumed); None when OUT holds no checkpoint."""
    out = Path(out)
    for ck in (out, out / "checkpoint"):
        if (ck / "config.json").exists():
            return ck
    return None


def prepare_output(out, *, what: str, resume: bool, overwrite: bool, info: DistInfo) -> Path | None:
    """The one rule for a trainer's OUT: a checkpoint there needs --resume (→ its directory, returned) or
    --overwrite (→ removed by rank 0); anything else non-empty is refused; otherwise None (a fresh run)."""
    out = Path(out)
    ck = checkpoint_in(out)
    if ck is None and out.is_dir() and any(out.iterdir()):
        raise UsageError(f"{out}: exists and is not a rosetta checkpoint; refusing to replace it",
                         hint="choose another --out")
    action = output_action(out, ck is not None, what=what, overwrite=overwrite, resume=resume)
    if action is Action.REPLACE and info.is_main:
        shutil.rmtree(out)
    barrier(info)
    return ck if action is Action.RESUME else None


# ---------------------------------------------------------------------------- device-side metrics
class MetricWindow:
    """Per-step scalars summed on the device and read at log points only, so a step holds no host sync.

    add() takes {key: 0-d tensor or None (term absent this step)}; read() returns each key's mean over
    the window's steps and ranks (one all-reduce, one device → host copy), None for a key never present.
    The counts are host-side: whether a term is present is decided on the host (the same on every rank)."""

    def __init__(self, keys: Sequence[str], info: DistInfo):
        self.keys, self.info = list(keys), info
        self.reset()

    def reset(self) -> None:
        self.sums, self.counts, self.steps = None, [0] * len(self.keys), 0

    def add(self, values: dict) -> None:
        import torch

        vals = [values.get(k) for k in self.keys]
        ref = next(v for v in vals if v is not None)
        dtype = torch.float32 if ref.device.type == "mps" else torch.float64  # sums of many steps: float64
        s = torch.stack([(v.detach() if v is not None else ref.new_zeros(())).to(dtype) for v in vals])
        self.sums = s if self.sums is None else self.sums + s
        self.counts = [c + (v is not None) for c, v in zip(self.counts, vals)]
        self.steps += 1

    def read(self, flags: Sequence[float] = ()) -> tuple[dict, list]:
        """→ ({key: mean or None}, flags summed over ranks). flags: extra host numbers agreed in the same
        all-reduce (e.g. rank 0's "a checkpoint is due by time"), so every rank takes the same decision."""
        import torch

        sums = self.sums if self.sums is not None else torch.zeros(len(self.keys), dtype=torch.float64)
        t = torch.cat([sums, torch.tensor(list(flags), dtype=sums.dtype, device=sums.device)])
        if self.info.distributed:
            import torch.distributed as tdist

            t = t if self.info.device.startswith("cuda") else t.cpu()  # NCCL reduces CUDA tensors, gloo CPU ones
            tdist.all_reduce(t)
        host = t.tolist()
        w = self.info.world
        means = {k: (host[i] / (c * w) if c else None) for i, (k, c) in enumerate(zip(self.keys, self.counts))}
        self.reset()
        return means, host[len(self.keys):]


def not_finite(values: dict) -> list[str]:
    """The keys whose value is NaN or infinite (None: absent, fine)."""
    return [k for k, v in values.items() if v is not None and not math.isfinite(v)]


def stop_on_not_finite(values: dict, first: int, step: int, out, last_good: int | None) -> None:
    """The NaN policy of every trainer, checked at each log point (no per-step host sync): a non-finite
    mean over steps first+1..step stops the run on every rank (all read the same all-reduced values).
    Checkpoints are only written at log points whose values were finite, so the one on disk is the last
    good state; the weights in memory are not saved."""
    bad = not_finite(values)
    if not bad:
        return
    kept = f"the last good checkpoint (step {last_good}) is kept in {out}" if last_good else "no checkpoint was written"
    span = f"at step {step}" if step == first + 1 else f"within steps {first + 1}-{step}"
    raise PipelineFailure(f"{', '.join(f'{k} became {values[k]}' for k in bad)} {span}; "
                          f"training stopped, {kept}",
                          hint="lower --lr, check the stores with `rosetta store validate`, then --resume")


# ---------------------------------------------------------------------------- checkpoints
def to_host(obj):
    """A copy of `obj` (nested dicts/lists/tuples of tensors and plain values) with every tensor on the CPU,
    detached from the training state (a CPU tensor is cloned: training goes on changing the original)."""
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: to_host(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_host(v) for v in obj)
    return obj


@dataclass
class Snapshot:
    """What one checkpoint holds, as runtime.checkpoint.save_checkpoint takes it (tensors on the CPU)."""

    config: dict                 # config.json: "step", "total_steps", "model", "train", ... (JSON)
    model: dict                  # model.safetensors
    train: dict                  # state.pt: "optimizer", "scheduler", "step", "torch_rng" (+ "ema", "epoch")
    ema: dict | None = None      # ema.safetensors


class Checkpointer:
    """The one checkpoint layout and cadence of both trainers.

    Layout: OUT is the checkpoint directory (runtime.checkpoint: config.json, model.safetensors,
    [ema.safetensors], state.pt, rng.json), with metrics.jsonl (appended by MetricsLog) and loss.png beside
    them; each checkpoint replaces OUT atomically, carrying metrics.jsonl over. config.json records "step"
    and "total_steps": a run is complete when step >= total_steps.

    Cadence: every `every` steps, the last step, and every `minutes` of wall time (rank 0's clock, agreed
    at a log point). `save` copies the state to the CPU on the training thread, then a background thread
    writes it with the atomic writer; the next save (and `close`) first waits for the previous write.
    Only rank 0 writes."""

    def __init__(self, out, kind: str, info: DistInfo, *, every: int, minutes: float = 0.0,
                 last_step: int | None = None, plot: Callable[[list], bytes] | None = None):
        self.out, self.kind, self.info, self.every, self.plot = Path(out), kind, info, every, plot
        self.seconds = float(minutes) * 60.0
        self.last_step = last_step          # the step of the checkpoint on disk (None: none yet)
        self.lock = threading.Lock()        # metrics.jsonl appends vs the directory swap
        self._t = time.monotonic()
        self._pending = None
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="rosetta-ckpt") if info.is_main else None

    def due_by_steps(self, step: int, total: int) -> bool:
        return step % self.every == 0 or step >= total

    def due_by_time(self) -> bool:
        """Rank 0: the wall-time cadence has elapsed since the last save (others: never; agreed by read())."""
        return self.info.is_main and self.seconds > 0 and time.monotonic() - self._t >= self.seconds

    def save(self, step: int, capture: Callable[[], Snapshot], wait: bool = False, plot: bool = True) -> None:
        """Checkpoint the state `capture()` returns (rank 0; the other ranks return at once).

        plot: also draw loss.png (matplotlib takes ~0.2 s of the writer thread's GIL time, so frequent
        checkpoints of a fast loop skip it; the last one draws it)."""
        if not self.info.is_main:
            return
        self.wait()
        snap = capture()
        snap = Snapshot(config=to_host(snap.config), model=to_host(snap.model), train=to_host(snap.train),
                        ema=to_host(snap.ema))
        self._t = time.monotonic()
        self._pending = (step, self._pool.submit(self._write, snap, plot))
        if wait:
            self.wait()

    def _write(self, snap: Snapshot, plot: bool) -> None:
        extra = {}
        if plot and self.plot is not None:
            rows = read_metrics(self.out / "metrics.jsonl")
            if rows:
                extra["loss.png"] = self.plot(rows)
        save_checkpoint(self.out, kind=self.kind, config=snap.config, model_state=snap.model, ema_state=snap.ema,
                        train_state=snap.train, extra_files=extra, carry=("metrics.jsonl", "loss.png"), lock=self.lock)

    def wait(self) -> None:
        """Block until the last save is on disk (re-raising its error)."""
        if self._pending is not None:
            step, fut = self._pending
            self._pending = None
            fut.result()
            self.last_step = step

    def close(self) -> None:
        try:
            self.wait()
        finally:
            if self._pool is not None:
                self._pool.shutdown()


# ---------------------------------------------------------------------------- DDP
def wrap_ddp(module, info: DistInfo, find_unused_parameters: bool = False):
    """`module` wrapped in DistributedDataParallel under torchrun (gradients averaged over ranks); itself otherwise."""
    if not info.distributed:
        return module
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(module, device_ids=[info.local_rank] if info.device.startswith("cuda") else None,
                                   find_unused_parameters=find_unused_parameters)
