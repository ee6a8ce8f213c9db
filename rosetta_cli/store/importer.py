"""`rosetta store import` as a stage: `run(ImportConfig, progress, text_encoder=None) -> ImportResult`.

Brings in features made elsewhere: one .npy [N, D] / [N, T, D] aligned with the clips CSV, or a
folder of per-video tensors (<video stem>.npy/.pt/.pth/.pth.tar, [windows, D] or [windows, T, D]).

Two ways to match a folder's windows to CSV rows:
- in order (no timing flags): the k-th CSV row of a video takes that video's k-th window;
- by time (`--window-sec/--stride-sec`, `--fps/--window/--stride` in frames, or `--preset`):
  window i of a video covers [i*S, i*S + W) seconds; a clip [start, end] takes every window
  that overlaps it (starts before `end` and ends after `start`) and pools them into T frames
  (`pool_frames`). A clip must overlap at least one window and must not reach more than one
  stride past the last window's end (a sign of the wrong fps/stride). With `--durations`
  (Ego4D's ego4d.json) the last window is backed up to end with the video, as Ego4D's features
  are (`window_starts`); without it the windows are taken as evenly spaced.

Memory: rows are written chunk by chunk, and only one video's tensor is held at a time (the
last one used; a CSV sorted by video loads each tensor once). A single .npy is memory-mapped.

Bad rows (a missing tensor, a clip outside its tensor's time span, a wrong dimension) stop the
import with one line naming the file and the CSV row. The rows before it are written done, the
bad row is marked failed with the message, the rest stay pending; `--resume` (same CSV, features
and options) redoes only the rows not done.

The text side comes from the caller: a `--text` .npy, or a `text_encoder` object (anything with
`encode(list[str]) -> [n, Dt]` and `info() -> dict`) that the CLI resolves, so the store package
never imports an encoder.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from rosetta_cli.errors import AnnotationError, DimensionMismatch, InputNotFound, UsageError
from rosetta_cli.runtime.guard import Action, output_action
from rosetta_cli.runtime.progress import SILENT, Progress
from rosetta_cli.store import schema
from rosetta_cli.store.core import Store, nonfinite_rows
from rosetta_cli.store.ops import load_array, read_clips_csv

# Ego4D's official precomputed features (Ego4D docs, "Features"): SlowFast 8x8 R101 and Omnivore
# Swin-L, both on 32-frame windows of the 30 fps canonical videos at stride 16 frames (stride 6 is
# only in a superseded revision of those docs). Ego4D backs the last window up to the video's final
# 32 frames, so with the video's duration known (--durations) the last window ends at the video's end.
PRESETS = {
    "ego4d-slowfast": {"fps": 30.0, "window": 32, "stride": 16},
    "ego4d-omnivore": {"fps": 30.0, "window": 32, "stride": 16},
}
POOLS = ("mean", "uniform")
TENSOR_SUFFIXES = (".npy", ".pt", ".pth", ".pth.tar")


class TextEncoder(Protocol):
    def encode(self, texts: list[str]): ...

    def info(self) -> dict: ...


@dataclass
class ImportConfig:
    features: str = ""                  # .npy [N,D]/[N,T,D], or a folder of per-video tensors
    clips: str = ""                     # CSV with the store's clip columns
    out: str = ""
    text: str | None = None             # .npy [N, Dt] narration embeddings
    text_encoder: str | None = None     # recorded name; the encoder object is passed to run()
    kind: str = "features"
    preset: str | None = None           # ego4d-slowfast | ego4d-omnivore
    durations: str | None = None        # Ego4D metadata (ego4d.json): the last window ends at the video's end
    fps: float | None = None            # with window/stride in frames
    window: int | None = None
    stride: int | None = None
    window_sec: float | None = None     # or window/stride in seconds
    stride_sec: float | None = None
    frames: int | None = None           # T of the pooled clip (time mode; default 1)
    pool: str = "mean"                  # mean (of contiguous groups) | uniform (sampling)
    chunk_rows: int = schema.DEFAULT_CHUNK_ROWS
    overwrite: bool = False
    resume: bool = False

    @property
    def by_time(self) -> bool:
        return any(v is not None for v in (self.preset, self.fps, self.window, self.stride,
                                           self.window_sec, self.stride_sec))

    def timing(self) -> tuple[float, float] | None:
        """(window, stride) in seconds, or None for the in-order mode."""
        if not self.by_time:
            return None
        if self.preset is not None:
            p = PRESETS[self.preset]
            return p["window"] / p["fps"], p["stride"] / p["fps"]
        if self.window_sec is not None:
            return float(self.window_sec), float(self.stride_sec)
        return self.window / self.fps, self.stride / self.fps

    def check(self) -> None:
        for flag, val in (("--features", self.features), ("--clips", self.clips), ("--out", self.out)):
            if not val:
                raise UsageError(f"no {flag} given")
        if self.kind not in schema.ROW_KINDS:
            raise UsageError(f"--kind {self.kind!r} is not a row store kind", hint=f"use one of {', '.join(schema.ROW_KINDS)}")
        if self.text and self.text_encoder and self.text_encoder != "none":
            raise UsageError("--text and --text-encoder exclude each other", hint="pass one of them")
        if self.chunk_rows < 1:
            raise UsageError(f"--chunk-rows must be >= 1, got {self.chunk_rows}")
        if self.pool not in POOLS:
            raise UsageError(f"--pool {self.pool!r} is not a pooling", hint="use mean or uniform")
        if not self.by_time:
            if self.frames is not None or self.pool != "mean" or self.durations is not None:
                raise UsageError("--frames, --pool and --durations apply to the by-time import only",
                                 hint="add --window-sec/--stride-sec, --fps/--window/--stride or --preset")
            return
        self._check_timing()
        if self.frames is not None and self.frames < 1:
            raise UsageError(f"--frames must be >= 1, got {self.frames}")

    def _check_timing(self) -> None:
        secs = (self.window_sec, self.stride_sec)
        frames = (self.fps, self.window, self.stride)
        if self.preset is not None:
            if self.preset not in PRESETS:
                raise UsageError(f"--preset {self.preset!r} is unknown", hint=f"use one of {', '.join(PRESETS)}")
            if any(v is not None for v in secs + frames):
                raise UsageError(f"--preset {self.preset} sets the timing itself",
                                 hint="drop --fps/--window/--stride/--window-sec/--stride-sec, or drop --preset")
            return
        if any(v is not None for v in secs) and any(v is not None for v in frames):
            raise UsageError("give the windows in seconds (--window-sec/--stride-sec) or in frames (--fps/--window/--stride), not both")
        if any(v is not None for v in secs):
            if None in secs:
                raise UsageError("--window-sec needs --stride-sec and the other way round")
            if not (self.window_sec > 0 and self.stride_sec > 0):
                raise UsageError(f"--window-sec and --stride-sec must be > 0, got {self.window_sec}, {self.stride_sec}")
            return
        if None in frames:
            raise UsageError("--fps, --window and --stride go together", hint="pass all three, or --preset")
        if not (self.fps > 0 and self.window > 0 and self.stride > 0):
            raise UsageError(f"--fps, --window and --stride must be > 0, got {self.fps}, {self.window}, {self.stride}")


@dataclass
class ImportResult:
    out: str
    rows: int
    imported: int                       # rows written by this run
    skipped: int                        # rows already done (resume)
    frames: int
    dim: int
    text_dim: int | None
    mode: str                           # "in-order" | "by-time"
    timing: dict = field(default_factory=dict)
    failed: int = 0                     # rows failed (NaN/Inf features or text), each with its reason
    failures: list = field(default_factory=list)  # [(row, error)] of the first few

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- pooling (pure)
def window_starts(n: int, window_sec: float, stride_sec: float, duration: float | None = None) -> np.ndarray:
    """Start (s) of each of n windows: i*S, except that with the video's duration known the last one
    starts at duration - W, backed up to end with the video (Ego4D's features; never after (n-1)*S)."""
    starts = np.arange(n) * stride_sec
    if duration is not None and n > 1:
        starts[-1] = min(starts[-1], max(starts[-2], duration - window_sec))
    return starts


def overlapping_windows(n: int, window_sec: float, stride_sec: float, start: float, end: float,
                        duration: float | None = None) -> tuple[int, int]:
    """[lo, hi): the windows i (of n, window i = [s_i, s_i + W), s_i from window_starts) with s_i < end
    and s_i + W > start."""
    starts = window_starts(n, window_sec, stride_sec, duration)
    lo = int(np.searchsorted(starts + window_sec, start, side="right"))
    hi = int(np.searchsorted(starts, end, side="left"))
    return lo, max(lo, hi)


def pool_frames(x: np.ndarray, frames: int, how: str = "mean") -> np.ndarray:
    """x [k, D] (k >= 1 windows, in time order) -> [frames, D].

    mean: frame j is the mean of windows [floor(j*k/T), max(floor((j+1)*k/T), lo+1)), contiguous
    groups covering all k windows (k < T repeats windows); uniform: frame j is window
    floor((j + 0.5) * k / T), the centre of group j.
    """
    k = len(x)
    if how == "uniform":
        return x[[int((j + 0.5) * k / frames) for j in range(frames)]].astype(np.float32)
    out = np.empty((frames, x.shape[1]), np.float32)
    for j in range(frames):
        lo = j * k // frames
        hi = max((j + 1) * k // frames, lo + 1)
        out[j] = x[lo:hi].astype(np.float32).mean(axis=0)
    return out


# --------------------------------------------------------------------------- sources
class _Folder:
    """Per-video tensors of a folder, one held at a time."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.files = {}
        for f in sorted(folder.iterdir()):
            for suf in TENSOR_SUFFIXES:
                if f.name.endswith(suf):
                    self.files.setdefault(f.name[: -len(suf)], f)
        self.stem, self.arr, self.video = None, None, None

    @staticmethod
    def stem_of(video: str) -> str:
        return Path(video).name.split(".")[0] if video else ""

    def key_of(self, clip_id: str, sync_id: str, video: str) -> str:
        """The tensor name of a row: Ego-Exo4D's per-camera feature file `<take_uid>_<cam_id>_<stream_id>`
        (its features/omnivore_video part; stream "rgb" for Aria, "0" for GoPros) when the folder has
        it, else the video's stem (Ego4D's `<video_uid>`)."""
        take = (sync_id or clip_id).split("/")[0].split("@")[0]
        cam = clip_id.rsplit("/", 1)[-1].split("#")[0]
        ee = f"{take}_{cam}_{'rgb' if cam.lower().startswith('aria') else '0'}"
        return ee if "/" in clip_id and ee in self.files else self.stem_of(video)

    def get(self, video: str, where, key: str | None = None) -> tuple[np.ndarray, Path]:
        """where: the row's description, or a callable giving it (built only for an error); key: the
        tensor name (key_of), default the video's stem."""
        if video == self.video and key in (None, self.stem):
            return self.arr, self.files[self.stem]
        stem = key or self.stem_of(video)
        if stem not in self.files:
            where = where() if callable(where) else where
            raise InputNotFound(f"{where}: video {video!r} has no tensor {stem}.npy/.pt in {self.folder}",
                                hint="add the file, or drop the row from the CSV")
        if stem != self.stem:
            self.stem, self.arr, self.video = None, None, None  # free the previous tensor before loading the next
            self.arr, self.stem = load_array(self.files[stem]), stem
        self.video = video
        return self.arr, self.files[stem]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------------- the stage
def run(cfg: ImportConfig, progress: Progress = SILENT, text_encoder: TextEncoder | None = None) -> ImportResult:
    """Import cfg.features for the rows of cfg.clips into the store cfg.out (see the module docstring)."""
    cfg.check()
    if cfg.text_encoder and cfg.text_encoder != "none" and text_encoder is None:
        raise UsageError(f"--text-encoder {cfg.text_encoder}: the caller did not pass the encoder")
    clips_csv, feats_path = Path(cfg.clips), Path(cfg.features)
    clips = read_clips_csv(clips_csv)
    if not feats_path.exists():
        raise InputNotFound(f"{feats_path}: no such features file or folder")
    timing = cfg.timing()
    if timing is not None and not feats_path.is_dir():
        raise UsageError(f"--features {feats_path} is a file; the by-time import reads a folder of per-video tensors",
                         hint="give the folder, or drop the timing flags to import the file row by row")
    text = _text_array(cfg, len(clips), clips_csv)
    rows = _RowSource(feats_path, clips, clips_csv, timing, cfg)
    frames, dim, dtype = rows.shape()
    text_dim = text.shape[1] if text is not None else None
    sig = _signature(cfg, clips_csv, feats_path, frames, dim)
    store, skipped = _open_output(cfg, clips, frames, dim, text_dim, dtype, sig, text_encoder)
    if text_encoder is not None:
        text_dim = store.text_dim
    status = store.status()
    todo = int((status != schema.DONE).sum())
    progress.start("import", len(clips), done=len(clips) - todo, unit="rows")
    imported = 0
    try:
        for a, b in store.blocks():
            need = np.flatnonzero(status[a:b] != schema.DONE)
            if not len(need):
                continue
            imported += _import_block(store, rows, clips, a, b, text, text_encoder)
            progress.advance(b - a - int((status[a:b] == schema.DONE).sum()), info=Path(str(clips["video"].iat[b - 1])).name)
    finally:
        store.close()
    with Store.open(cfg.out, mode="r+") as s:
        s.finalize()
        st = s.status()
        failed = [(int(i), str(s.errors(slice(int(i), int(i) + 1))[0])) for i in np.flatnonzero(st == schema.FAILED)[:3]]
        n_failed = int((st == schema.FAILED).sum())
    return ImportResult(str(cfg.out), len(clips), imported, skipped, frames, dim, text_dim,
                        "by-time" if timing else "in-order", sig.get("timing") or {}, n_failed, failed)


def _import_block(store: Store, rows: "_RowSource", clips, a: int, b: int, text, text_encoder) -> int:
    """Rows [a, b): features (and text), done; on a bad row, write what came before it, mark it failed, raise."""
    out = np.zeros((b - a, store.frames, store.dim), np.float32)
    for i in range(a, b):
        try:
            out[i - a] = rows.row(i)
        except (AnnotationError, DimensionMismatch, InputNotFound) as e:
            if i > a:
                store.write_rows(a, features=out[: i - a], text=_text_block(clips, a, i, text, text_encoder),
                                 status=schema.DONE)
            store.write_rows(i, status=[schema.FAILED], errors=[str(e)])
            raise
    txt = _text_block(clips, a, b, text, text_encoder)
    status, errors = finite_status(out, txt, lambda i: rows.where(a + i))
    store.write_rows(a, features=out, text=txt, status=status, errors=errors)
    return int((status == schema.DONE).sum())


def finite_status(feats: np.ndarray, text: np.ndarray | None, where) -> tuple[np.ndarray, list[str]]:
    """(status [n], errors [n]) of a block: a row with NaN or Inf in its features or text is failed, alone,
    with the reason (a reader would otherwise get NaN scores, or silently never match it)."""
    n = len(feats)
    bad_f = nonfinite_rows(feats)
    bad_t = nonfinite_rows(text) if text is not None else np.zeros(n, bool)
    status = np.where(bad_f | bad_t, schema.FAILED, schema.DONE).astype(np.uint8)
    errors = [f"{where(i)}: NaN/Inf in its {'features' if bad_f[i] else 'text embedding'}" if bad_f[i] or bad_t[i]
              else "" for i in range(n)]
    return status, errors


def _text_block(clips, a: int, b: int, text, text_encoder):
    if text is not None:
        return np.asarray(text[a:b], np.float32)
    if text_encoder is not None:
        return np.asarray(text_encoder.encode(list(clips["narration"].iloc[a:b])), np.float32)
    return None


class _RowSource:
    """The [T, D] feature of each CSV row, from one file (memory-mapped) or a folder (one video at a time)."""

    def __init__(self, path: Path, clips, clips_csv: Path, timing, cfg: ImportConfig):
        self.clips, self.csv, self.timing = clips, clips_csv, timing
        # plain arrays: a pandas lookup per row costs more than the pooling itself
        self.videos, self.ids = clips["video"].tolist(), clips["clip_id"].tolist()
        self.starts, self.ends = clips["start"].to_numpy(float), clips["end"].to_numpy(float)
        self.T = cfg.frames or 1
        self.pool = cfg.pool
        self.folder = _Folder(path) if path.is_dir() else None
        self.durations = read_durations(Path(cfg.durations)) if cfg.durations else {}
        self.durations_path = cfg.durations
        if self.folder is None:
            arr = np.load(path, mmap_mode="r", allow_pickle=False) if path.suffix == ".npy" else load_array(path)
            self.file, self.arr = path, arr[:, None, :] if arr.ndim == 2 else arr
            if len(self.arr) != len(clips):
                raise AnnotationError(f"{clips_csv}: has {len(clips)} rows but {path} has {len(self.arr)} feature rows",
                                      hint="give one CSV row per feature row")
        else:
            self.keys = [self.folder.key_of(c, s, v) for c, s, v in zip(self.ids, clips["sync_id"], self.videos)]
            stems = pd.Series(self.keys)
            self.cursor = stems.groupby(stems).cumcount().to_numpy()  # k-th row of its tensor (in-order mode)
        self.dim = None

    def where(self, i: int) -> str:
        return f"{self.csv}: row {i} (line {i + 2}, clip {self.ids[i]!r})"

    def shape(self) -> tuple[int, int, str]:
        """(T, D, dtype) of the store, from the first row's tensor."""
        if self.folder is None:
            arr = self.arr
        elif len(self.clips) == 0:
            raise AnnotationError(f"{self.csv}: has no rows")
        else:
            arr, _ = self.folder.get(self.videos[0], self.where(0), self.keys[0])
        self.dim = int(arr.shape[-1])
        dtype = str(arr.dtype) if arr.dtype in (np.float16, np.float32) else "float32"
        frames = self.T if self.timing else (int(arr.shape[1]) if arr.ndim == 3 else 1)
        return frames, self.dim, dtype

    def row(self, i: int) -> np.ndarray:
        if self.folder is None:
            return self.arr[i]
        arr, f = self.folder.get(self.videos[i], lambda: self.where(i), self.keys[i])
        if arr.shape[-1] != self.dim:
            raise DimensionMismatch(f"{self.where(i)}: {f} has D={arr.shape[-1]}, the store has D={self.dim} (from row 0)",
                                    hint="import tensors of one encoder only")
        if self.timing is None:
            k = int(self.cursor[i])
            if k >= len(arr):
                raise AnnotationError(f"{self.where(i)}: more rows for video {self.videos[i]!r} "
                                      f"than the {len(arr)} windows in {f}")
            return arr[k][None] if arr.ndim == 2 else arr[k]
        return self._by_time(i, arr, f)

    def _by_time(self, i: int, arr: np.ndarray, f: Path) -> np.ndarray:
        if arr.ndim == 3 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.ndim != 2:
            raise DimensionMismatch(f"{self.where(i)}: {f} has shape {tuple(arr.shape)}; the by-time import needs "
                                    "[windows, D] (one feature per window)")
        W, S_ = self.timing
        n = len(arr)
        duration = self._duration(i, n, f)
        span = float(window_starts(n, W, S_, duration)[-1]) + W if n else 0.0
        start = 0.0 if math.isnan(self.starts[i]) else float(self.starts[i])
        end = span if math.isnan(self.ends[i]) else float(self.ends[i])
        lo, hi = overlapping_windows(n, W, S_, start, end, duration)
        if end < start or hi <= lo or end > span + S_:
            raise AnnotationError(f"{self.where(i)}: clip [{start:g}, {end:g}] s is outside the {n} windows of {f} "
                                  f"(0 to {span:g} s at window {W:g} s, stride {S_:g} s)",
                                  hint="check the clip times and --fps/--window/--stride (or --preset)")
        return pool_frames(np.asarray(arr[lo:hi]), self.T, self.pool)


    def _duration(self, i: int, n: int, f: Path) -> float | None:
        """The video's duration from --durations (None without it); one that the windows cannot span fails the row."""
        if not self.durations:
            return None
        stem = _Folder.stem_of(self.videos[i])
        d = self.durations.get(stem)
        if d is None:
            raise AnnotationError(f"{self.where(i)}: video {stem!r} has no duration in {self.durations_path}",
                                  hint="add it, or drop --durations to assume evenly spaced windows")
        W, S_ = self.timing
        if n > 1 and not ((n - 2) * S_ + W - 1e-6 <= d <= (n - 1) * S_ + W + 1e-6):
            raise AnnotationError(f"{self.where(i)}: {f} has {n} windows, which do not fit the {d:g} s that "
                                  f"{self.durations_path} gives video {stem!r} (window {W:g} s, stride {S_:g} s)",
                                  hint="check --durations and the timing flags (or --preset)")
        return d


def read_durations(path: Path) -> dict[str, float]:
    """{video_uid: duration_sec} from Ego4D's metadata file ego4d.json ({"videos": [{video_uid, duration_sec}]})."""
    import json

    if not path.is_file():
        raise InputNotFound(f"{path}: no such durations file", hint="pass Ego4D's ego4d.json")
    try:
        videos = json.loads(path.read_text(encoding="utf-8")).get("videos")
    except (ValueError, AttributeError, UnicodeDecodeError) as e:
        raise AnnotationError(f"{path}: not Ego4D metadata ({type(e).__name__})", hint="pass Ego4D's ego4d.json") from None
    if not isinstance(videos, list):
        raise AnnotationError(f"{path}: field 'videos' must be a list", hint="pass Ego4D's ego4d.json")
    out = {}
    for v in videos:  # entries without both fields cannot place a window: skipped, so their rows fail alone
        uid, d = (v.get("video_uid"), v.get("duration_sec")) if isinstance(v, dict) else (None, None)
        if isinstance(uid, str) and isinstance(d, (int, float)) and not isinstance(d, bool) and math.isfinite(d) and d > 0:
            out[uid] = float(d)
    return out


def _text_array(cfg: ImportConfig, n: int, clips_csv: Path):
    if not cfg.text:
        return None
    path = Path(cfg.text)
    if not path.exists():
        raise InputNotFound(f"{path}: no such text-embedding file")
    emb = np.load(path, mmap_mode="r", allow_pickle=False)
    if emb.ndim != 2 or len(emb) != n:
        raise DimensionMismatch(f"{path}: shape {emb.shape}, expected [{n}, Dt] to match {clips_csv}")
    return emb


def _signature(cfg: ImportConfig, clips_csv: Path, feats: Path, frames: int, dim: int) -> dict:
    """What a resumed import must share with the store it continues."""
    timing = cfg.timing()
    t = None if timing is None else {"window_sec": timing[0], "stride_sec": timing[1], "frames": frames,
                                     "pool": cfg.pool, "preset": cfg.preset, "fps": cfg.fps,
                                     "window": cfg.window, "stride": cfg.stride}
    if t is not None and cfg.durations:  # only when given, so the signatures of earlier stores still match
        t["durations"] = str(Path(cfg.durations).absolute())
    return {"clips_sha256": _sha256(clips_csv), "features": str(feats.absolute()), "frames": frames, "dim": dim,
            "timing": t, "text": str(Path(cfg.text).absolute()) if cfg.text else None, "text_encoder": cfg.text_encoder}


def _open_output(cfg: ImportConfig, clips, frames, dim, text_dim, dtype, sig: dict, text_encoder) -> tuple[Store, int]:
    """(the store to write, rows already done): resumed when --resume and the signature matches, else created."""
    from rosetta_cli.store.remote import as_path

    out = as_path(cfg.out)  # a Path, or an s3:// / gs:// URL (a store made in place)
    action = output_action(out, out.exists(), what="a store", overwrite=cfg.overwrite, resume=cfg.resume)
    if action is Action.RESUME:
        store = Store.open(out, mode="r+", kind=cfg.kind)
        if store.meta.get("import") != sig:
            old = store.meta.get("import") or {}
            diff = sorted(k for k in set(sig) | set(old) if sig.get(k) != old.get(k))
            store.close()
            raise UsageError(f"{out}: was imported with other inputs or options ({', '.join(diff) or 'not by store import'})",
                             hint="rerun with the same --clips/--features/options, or pass --overwrite")
        return store, int((store.status() == schema.DONE).sum())
    if text_encoder is not None:
        probe = np.asarray(text_encoder.encode(list(clips["narration"].iloc[:1]) or [""]), np.float32)
        text_dim = probe.shape[1]
    attrs = {"encoder": {"name": "imported", "source": str(cfg.features)},
             "text_encoder": (text_encoder.info() if text_encoder is not None
                              else {"name": "imported", "source": str(cfg.text)} if cfg.text else None),
             "import": sig}
    store = Store.create(out, kind=cfg.kind, clips=clips, frames=frames, dim=dim, text_dim=text_dim, dtype=dtype,
                         chunk_rows=cfg.chunk_rows, attrs=attrs, config=cfg, overwrite=action is Action.REPLACE)
    return store, 0
