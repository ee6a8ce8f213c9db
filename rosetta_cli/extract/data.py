"""Decoding side of the pipeline: clips decoded by DataLoader worker processes, scheduled per video.

Each item is one clip → uint8 [T, S, S, 3] (decoded, resized and centre-cropped in the
worker, so only small tensors cross process boundaries) or an error message. Batches
never straddle a store chunk, so every chunk sees the same batch composition whether a
run was resumed, sharded or not: that keeps resumed stores bit-identical on CPU.

Scheduling: consecutive batches of one video form a run (at most RUN_BATCHES batches); a worker
takes the next run from a shared counter and decodes its batches back to back with the video's
reader kept open, so a video's frame index is read once per run, not once per batch. Runs finish
in any order (the loop buffers chunks until they are full); taking them in order keeps every
worker near the same place, so only a few chunks are open at a time.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import threading
import time

import numpy as np
import torch

from rosetta_cli.encoders.base import Preprocess, resize_crop
from rosetta_cli.video import VideoError, read_clip
from rosetta_cli.runtime.alloc import keep_freed_memory
from rosetta_cli.video.reader import release


class ClipDataset:
    """rows → {'row', 'frames' (uint8 [T,S,S,3] or None), 'error' (str)}; never raises for a bad clip."""

    def __init__(self, videos, starts, ends, frames: int, decoder: str, pre: Preprocess):
        self.videos, self.starts, self.ends = list(videos), np.asarray(starts, float), np.asarray(ends, float)
        self.frames, self.decoder, self.pre = frames, decoder, pre

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, row: int) -> dict:
        try:
            arr = read_clip(self.videos[row], self.starts[row], self.ends[row], self.frames, self.decoder)
            return {"row": row, "frames": resize_crop(arr, self.pre), "error": ""}
        except VideoError as e:
            return {"row": row, "frames": None, "error": e.one_line()}
        except Exception as e:  # a decoder bug must fail this clip, not the run
            return {"row": row, "frames": None, "error": f"{self.videos[row]}: {type(e).__name__}: {e}"}


def collate(items: list[dict], encoder=None) -> dict:
    """→ rows [B], ok [B] bool, errors [B], and frames uint8 [B_ok, T, S, S, 3] or None.

    With an `encoder` (CPU extraction), the batch is also encoded here, in the worker that decoded
    it: features float32 [B_ok, T', D] replace the frames. Each worker then runs decode and encode
    back to back on its own core, so the cores never wait on each other and the main process has
    nothing to do but write (on 2 cores a main-process encoder fought the decoders for them).
    """
    ok = [it["frames"] is not None for it in items]
    good = [it["frames"] for it in items if it["frames"] is not None]
    frames = torch.stack(good) if good else None
    out = {"rows": [it["row"] for it in items], "ok": ok, "errors": [it["error"] for it in items], "frames": frames}
    if encoder is not None:
        release()  # decoded: stop decord's read-ahead before the encoder takes the core (see reader.release)
        out["frames"], out["features"] = None, encoder.encode_clips(frames) if frames is not None else None
    return out


RUN_BATCHES = 16  # batches per run at most: long videos are split so the workers stay balanced


def video_runs(batches: list[list[int]], videos=None, most: int = RUN_BATCHES) -> list[list[list[int]]]:
    """Group consecutive batches whose first clips share a video into runs of at most `most` batches.

    videos: the video of each row (None: every batch is its own run)."""
    runs: list[list[list[int]]] = []
    prev = object()
    for b in batches:
        key = videos[b[0]] if videos is not None and b else object()
        if runs and key == prev and len(runs[-1]) < most:
            runs[-1].append(b)
        else:
            runs.append([b])
        prev = key
    return runs


class RunDataset(torch.utils.data.IterableDataset):
    """Yields collated batches, run by run: each worker (or this process) takes the next run from a
    counter shared by all workers, decodes its batches with the reader open, then releases it."""

    def __init__(self, clips, runs: list, encoder=None):
        import multiprocessing as mp

        self.clips, self.runs, self.encoder = clips, runs, encoder
        self.next_run = mp.Value("l", 0)  # shared by the forked (or spawned) workers: one run to one worker

    def __iter__(self):
        from rosetta_cli.video.reader import release

        while True:
            with self.next_run.get_lock():
                i = self.next_run.value
                self.next_run.value += 1
            if i >= len(self.runs):
                return
            for batch in self.runs[i]:
                yield collate([self.clips[r] for r in batch], self.encoder)
            release()  # the run's video is done here: free its reader


def chunk_batches(chunks: list[tuple[int, int]], batch_size: int) -> list[list[int]]:
    """Row batches of at most batch_size, each inside one (start, stop) chunk, in order."""
    return [list(range(s, min(s + batch_size, stop))) for start, stop in chunks for s in range(start, stop, batch_size)]


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent_pid: int) -> None:
    """Make this worker exit as soon as the process that started it dies, even by kill -9.

    Left alone, a worker keeps decoding its queued clips for seconds after its parent is killed,
    and keeps the parent's open files (an HDF5 store and its lock) open meanwhile. Linux: the
    kernel sends SIGKILL on the parent's death (prctl PR_SET_PDEATHSIG); elsewhere a daemon thread
    notices the change of parent (re-parenting) within 0.2 s.
    """
    armed = _arm_parent_death_signal()
    if not _alive(parent_pid):  # it died before the signal was armed
        os._exit(1)
    if not armed:
        threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()


def _arm_parent_death_signal() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _alive(pid: int) -> bool:
    """True while `pid` runs; a zombie (dead, not yet reaped) counts as dead."""
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:  # another user's: it exists
        return True


def _watch_parent(ppid: int, every_s: float = 0.2) -> None:
    while os.getppid() == ppid:
        time.sleep(every_s)
    os._exit(1)  # no cleanup: the parent's (copied) HDF5 and torch state must not be flushed from here


def worker_init(_worker_id: int, parent_pid: int | None = None) -> None:
    """Die with the parent; one thread per worker (cores are shared); reuse freed heap (no page fault per
    batch, see runtime.alloc); silence C-level decoder logs unless --debug."""
    import torch

    if parent_pid is not None:
        die_with_parent(parent_pid)
    torch.set_num_threads(1)
    keep_freed_memory()
    if os.environ.get("ROSETTA_DEBUG") != "1":
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)  # decord/ffmpeg print straight to fd 2; errors still reach us as exceptions
        os.close(devnull)


def make_loader(dataset: ClipDataset, batches: list[list[int]], workers: int, pin_memory: bool = False,
                encoder=None):
    """A DataLoader yielding collated batches; workers decode (and, given `encoder`, encode) ahead.

    Batches come in run order with workers=0 or 1, in completion order with more workers."""
    from torch.utils.data import DataLoader

    runs = video_runs(batches, getattr(dataset, "videos", None))
    return DataLoader(RunDataset(dataset, runs, encoder), batch_size=None, num_workers=workers, pin_memory=pin_memory,
                      worker_init_fn=functools.partial(worker_init, parent_pid=os.getpid()) if workers > 0 else None,
                      prefetch_factor=4 if workers > 0 else None, persistent_workers=False,
                      in_order=False)  # a finished batch is handed over without waiting for a slower worker's
