"""torchrun helpers: ranks from the environment, gloo on CPU / NCCL on GPU, gathers with autograd."""

from __future__ import annotations

import os
from dataclasses import dataclass

from rosetta_cli.errors import UsageError


@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: str = "cpu"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def resolve_device(pref: str = "auto") -> str:
    """auto → cuda when available, else cpu; cpu, cuda and cuda:N are checked (UsageError, exit 2, when
    CUDA or that GPU is missing, or the name is unknown)."""
    import torch

    from rosetta_cli.errors import UsageError

    pref = (pref or "auto").strip().lower()
    if pref == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if pref == "cpu":
        return pref
    kind, _, index = pref.partition(":")
    if kind != "cuda" or (index and not index.isdigit()):
        raise UsageError(f"--device {pref!r}: unknown device", hint="use auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise UsageError(f"--device {pref} but no CUDA device is available", hint="use --device cpu or auto")
    if index and int(index) >= torch.cuda.device_count():
        raise UsageError(f"--device {pref}: this machine has {torch.cuda.device_count()} CUDA device(s)",
                         hint=f"use cuda:0 .. cuda:{torch.cuda.device_count() - 1}")
    return pref


def init_from_env(device_pref: str = "auto", timeout_minutes: float = 60.0) -> DistInfo:
    """Initialise torch.distributed if launched by torchrun (WORLD_SIZE > 1).

    timeout_minutes: how long a collective (a barrier included) waits for the other ranks before the
    run fails; longer than NCCL's 10-minute default, so rank 0 may validate at paper size while the
    others wait."""
    from datetime import timedelta

    import torch
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_pref)
    if device == "cuda":
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo",
                                timeout=timedelta(minutes=timeout_minutes))
    return DistInfo(rank=rank, world=world, local_rank=local, device=device)


def barrier(info: DistInfo) -> None:
    if info.distributed:
        import torch.distributed as dist

        dist.barrier()


def gather_with_grad(x):
    """[b, d] per rank → [world*b, d], keeping gradients to the local slice (global negatives)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    import torch
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(x), dim=0)


def gather_nograd(x):
    """[b, ...] per rank → [world*b, ...] in rank order, without autograd (integer keys, bool flags).

    Every rank must pass the same shape. bool travels as uint8 (not every backend reduces bool)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    import torch

    y = x.to(torch.uint8) if x.dtype == torch.bool else x
    out = [torch.empty_like(y) for _ in range(dist.get_world_size())]
    dist.all_gather(out, y.contiguous())
    out = torch.cat(out, dim=0)
    return out.bool() if x.dtype == torch.bool else out


def all_reduce_mean(value: float, info: DistInfo) -> float:
    if not info.distributed:
        return value
    import torch
    import torch.distributed as dist

    # NCCL only reduces CUDA tensors; gloo takes CPU ones
    t = torch.tensor([value], dtype=torch.float64, device=info.device if info.device.startswith("cuda") else "cpu")
    dist.all_reduce(t)
    return float(t.item() / info.world)


def cleanup(info: DistInfo) -> None:
    if info.distributed:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
