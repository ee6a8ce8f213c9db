"""Features held in memory for training (`--resident auto|ram|gpu|off`).

With one token per clip (LaViLa: [N, 1, 256] fp16) every store of a paper-size run fits in host or
GPU memory (2-4 GB), and gathering a batch from an array costs microseconds where the streaming
path (chunk cache, row reads, a prefetch thread) costs milliseconds. A resident source loads each
store once, block by block, into one array (numpy in RAM, or a torch tensor on the GPU) and gathers
rows from it: the rows and values of every batch are those the streaming path reads (the same stored
dtype), so the choice never changes training.

`resolve` picks the mode: "auto" is "gpu" on a CUDA device when the features take at most AUTO_SHARE
of its free memory, else "ram" when they take at most AUTO_SHARE of the host's available memory
(divided among the processes of this host: torchrun's LOCAL_WORLD_SIZE), else "off" (streaming).
"ram" and "gpu" asked for by name must fit in what is free, or it is a one-line error.
"""

from __future__ import annotations

import os

import numpy as np

from rosetta_cli.errors import UsageError

RESIDENT = ("auto", "ram", "gpu", "off")
AUTO_SHARE = 0.5  # auto leaves half of the free memory to the model, the optimiser and activations


def nbytes(store, what: str = "features") -> int:
    """Bytes of a store's whole array `what` as held resident: features [N, T, D] in the stored dtype,
    text [N, Dt] as float32 (Store.text's dtype)."""
    if what == "features":
        return int(store.n_rows) * int(store.frames) * int(store.dim) * np.dtype(store.dtype).itemsize
    return int(store.n_rows) * int(store.text_dim or 0) * 4


def free_memory(device: str) -> dict:
    """{"ram": bytes this process may use (available / processes on this host), "gpu": free bytes of
    `device` (0 without CUDA)}."""
    import psutil

    copies = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    out = {"ram": int(psutil.virtual_memory().available) // copies, "gpu": 0}
    if str(device).startswith("cuda"):
        import torch

        out["gpu"] = int(torch.cuda.mem_get_info(torch.device(device))[0])
    return out


def resolve(mode: str, need: dict, device: str, budget: dict | None = None, what: str = "the training stores") -> str:
    """→ "gpu" | "ram" | "off" for `mode` (one of RESIDENT).

    need: {"gpu": bytes held on the GPU in gpu mode, "ram": bytes held in RAM (in ram mode, plus
    need["ram_extra"] kept in RAM in gpu mode, e.g. narrations)}; budget: free_memory(device) unless
    given (tests inject it).
    """
    if mode not in RESIDENT:
        raise UsageError(f"--resident {mode!r} is not one of {', '.join(RESIDENT)}")
    if mode == "off":
        return "off"
    cuda = str(device).startswith("cuda")
    if mode == "gpu" and not cuda:
        raise UsageError(f"--resident gpu needs a CUDA device (this run uses {device})",
                         hint="use --resident ram, or --device cuda")
    free = budget if budget is not None else free_memory(device)
    gpu_need, ram_need = need["gpu"], need["ram"]
    gpu_ok = cuda and gpu_need <= free["gpu"] * AUTO_SHARE and need.get("ram_extra", 0) <= free["ram"] * AUTO_SHARE
    if mode == "auto":
        return "gpu" if gpu_ok else "ram" if ram_need <= free["ram"] * AUTO_SHARE else "off"
    have = free[mode] if mode == "ram" else free["gpu"]
    want = ram_need if mode == "ram" else gpu_need
    if want > have:
        raise UsageError(f"--resident {mode}: {what} need {_gb(want)} but {_gb(have)} of "
                         f"{'host' if mode == 'ram' else 'GPU'} memory is free",
                         hint="use --resident auto (streams what does not fit) or off")
    return mode


def _gb(n: int) -> str:
    return f"{n / 2**30:.2f} GiB"


class ResidentRows:
    """Rows of one array held in memory. get(rows [b] int) → [b, ...]: a numpy array (RAM) or a torch
    tensor on the array's device (GPU), gathered in the order given (repeats allowed)."""

    def __init__(self, data):
        self.data = data

    def get(self, rows):
        if isinstance(self.data, np.ndarray):
            return self.data[np.asarray(rows, dtype=np.int64)]
        import torch

        idx = torch.as_tensor(np.asarray(rows, dtype=np.int64)).to(self.data.device, non_blocking=True)
        return self.data.index_select(0, idx)

    @property
    def nbytes(self) -> int:
        d = self.data
        return int(d.nbytes) if isinstance(d, np.ndarray) else int(d.numel() * d.element_size())


def load(stores, what: str = "features", device: str | None = None) -> tuple[ResidentRows, np.ndarray]:
    """Stores' arrays `what` stacked into one resident array, read block by block (one chunk of
    host memory at a time when `device` is a GPU). → (rows, offsets [len(stores)]): store i's row r
    is row offsets[i] + r. device None: numpy in RAM; else a torch tensor on that device."""
    stores = list(stores)
    offsets = np.cumsum([0] + [s.n_rows for s in stores])[:-1].astype(np.int64)
    n = int(sum(s.n_rows for s in stores))
    read = (lambda s, sl: s.features(sl)) if what == "features" else (lambda s, sl: s.text(sl))
    first = stores[0]
    shape = (first.frames, first.dim) if what == "features" else (first.text_dim,)
    dtype = np.dtype(first.dtype) if what == "features" else np.dtype(np.float32)
    if device is None:
        data = np.empty((n, *shape), dtype=dtype)
        put = data.__setitem__
    else:
        import torch

        data = torch.empty((n, *shape), dtype=torch.from_numpy(np.zeros(0, dtype)).dtype, device=device)

        def put(sl, block):
            data[sl] = torch.from_numpy(np.ascontiguousarray(block)).to(device)
    for s, off in zip(stores, offsets):
        for a, b in s.blocks():
            put(slice(int(off) + a, int(off) + b), read(s, slice(a, b)))
    return ResidentRows(data), offsets
