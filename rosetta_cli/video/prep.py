"""`rosetta prep`: transcode a dataset's videos to a small short side, key frames about every second.

    run_prep(PrepConfig(videos="data/ego4d/v2", out="data/ego4d-288"), progress) -> PrepResult

Decoding, not the encoder, bounds extraction: a 1080p frame costs ~14x the pixels of a 288p one,
and the frames are resized to 224 px anyway. LaViLa and EgoVLP preprocess the same way (short side
288/256, short GOPs). The output mirrors the input folder (`a/b.mp4` → `OUT/a/b.mp4`; another
container `a/b.mkv` → `OUT/a/b.mkv.mp4`), so `rosetta extract --prepped OUT` finds each video's copy.

Timestamps are copied frame by frame, so variable-frame-rate videos keep their timing and clip times
need no change; rotation metadata is applied to the pixels (the copy is stored upright). Audio is
dropped. Each video is written under a temporary name and renamed when complete, so a rerun skips
finished videos and redoes the rest; a video that fails is recorded in OUT/prep-log.jsonl and the
others carry on. OUT/prep.json records the settings; a rerun with other settings is refused.
"""

from __future__ import annotations

import fractions
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rosetta_cli.errors import UsageError
from rosetta_cli.runtime.progress import SILENT, Progress

SETTINGS_FILE, LOG_FILE, TEMP_TAG = "prep.json", "prep-log.jsonl", "prep"
VIDEO_EXTS = (".mp4", ".mkv", ".webm", ".avi", ".mov")  # as datasets.videos (the folder loader's list)
SETTING_KEYS = ("short_side", "gop", "codec", "crf", "preset")  # what makes two preps' outputs differ


@dataclass
class PrepConfig:
    videos: str                     # source folder (searched recursively) or one video file
    out: str                        # output folder (mirrors the source's layout)
    short_side: int = 288           # output short side in px (never upscaled; even sizes for yuv420p)
    gop: str = "1s"                 # key frame interval: seconds ("1s", "0.5s") or frames ("30")
    codec: str = "auto"             # auto (libx264 if PyAV has it, else mpeg4) | libx264 | mpeg4 | ...
    crf: int = 23                   # libx264 quality (lower = better, bigger)
    preset: str = "veryfast"        # libx264 speed/size trade-off
    workers: int | None = None      # transcoding processes; None = one per core, 0 = in this process

    def check(self) -> None:
        if self.short_side < 16 or self.short_side % 2:
            raise UsageError(f"--short-side {self.short_side}: must be an even number >= 16")
        gop_frames(self.gop, 30.0)  # raises UsageError for a bad spec
        if self.workers is not None and self.workers < 0:
            raise UsageError("--workers must be >= 0")
        src = Path(self.videos)
        if not src.exists():
            raise UsageError(f"{src}: no such folder or file", hint="give the dataset's video folder to --videos")
        out = Path(self.out).absolute()
        if src.is_dir() and (out == src.absolute() or src.absolute() in out.parents):
            raise UsageError(f"--out {self.out} lies inside --videos {self.videos}", hint="choose an --out outside the source")

    def settings(self) -> dict:
        """What prep.json records (besides the source): the options that change the output bytes."""
        d = asdict(self)
        d["codec"] = resolve_codec(self.codec)
        return {k: d[k] for k in SETTING_KEYS}


@dataclass
class PrepResult:
    out: str
    videos: int                     # videos found in the source
    done: int                       # transcoded by this run
    skipped: int                    # already done by an earlier run
    failed: int
    seconds: float
    failures: list = field(default_factory=list)   # (relative path, one-line error), at most 50
    bytes_in: int = 0               # sizes of the videos this run transcoded
    bytes_out: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def gop_frames(spec: str, fps: float) -> int:
    """Key frame interval in frames: "1s" → round(fps), "0.5s" → round(fps / 2), "30" → 30 (at least 1)."""
    s = str(spec).strip().lower()
    try:
        n = float(s[:-1]) * fps if s.endswith("s") else float(int(s))
    except ValueError:
        raise UsageError(f"--gop {spec!r}: give seconds (e.g. 1s) or a frame count (e.g. 30)") from None
    if n <= 0:
        raise UsageError(f"--gop {spec!r}: must be positive")
    return max(1, int(round(n)))


def resolve_codec(codec: str) -> str:
    """'auto' → libx264 when this PyAV build can encode it (pip wheels can), else mpeg4."""
    if codec != "auto":
        return codec
    import av

    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def output_path(rel: str) -> str:
    """The prepped copy's relative path: `a/b.mp4` stays, `a/b.mkv` becomes `a/b.mkv.mp4` (no collisions)."""
    return rel if rel.lower().endswith(".mp4") else rel + ".mp4"


def scaled_size(w: int, h: int, short: int) -> tuple[int, int]:
    """(w, h) with the short side `short` (never larger than the source), both even, aspect kept."""
    s = min(1.0, short / min(w, h))
    return max(2, int(round(w * s / 2)) * 2), max(2, int(round(h * s / 2)) * 2)


def list_sources(src: Path) -> list[str]:
    """Video paths relative to the source folder, sorted (hidden files and folders skipped)."""
    if src.is_file():
        return [src.name]
    found = []
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [(Path(dirpath) / f).relative_to(src).as_posix() for f in filenames
                  if not f.startswith(".") and f.lower().endswith(VIDEO_EXTS)]
    return sorted(found)


# ------------------------------------------------------------------------------------ one video
def transcode(src: str, dst: str, settings: dict) -> dict:
    """Transcode `src` into `dst` (written under a temporary sibling, renamed when complete).

    Returns {"frames", "width", "height", "gop", "seconds"}; raises on any failure (the temporary is removed).
    """
    import av

    av.logging.set_level(None)
    t0 = time.perf_counter()
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{TEMP_TAG}-{os.getpid()}.mp4")
    try:
        info = _transcode(src, tmp, settings)
        os.replace(tmp, dst)
    finally:
        if tmp.exists():
            tmp.unlink()
    return {**info, "seconds": round(time.perf_counter() - t0, 3)}


def _transcode(src: str, tmp: Path, settings: dict) -> dict:
    import av

    with av.open(str(src)) as inp:
        if not inp.streams.video:
            raise UsageError(f"{src}: has no video stream")
        ist = inp.streams.video[0]
        ist.thread_count = 1  # one process per core already
        rate = ist.average_rate or ist.guessed_rate or fractions.Fraction(30)
        frames = inp.decode(ist)
        first = next(frames, None)
        if first is None:
            raise UsageError(f"{src}: no frame decodes")
        k = _quarter_turns(first)
        w, h = (first.width, first.height) if k % 2 == 0 else (first.height, first.width)  # displayed size
        ow, oh = scaled_size(w, h, settings["short_side"])
        gop = gop_frames(settings["gop"], float(rate))
        with av.open(str(tmp), "w", format="mp4") as out:
            ost = _output_stream(out, settings, rate, ost_tb=ist.time_base, size=(ow, oh), gop=gop)
            n = _pump(first, frames, ost, out, k, (ow, oh), ist.time_base, rate)
    return {"frames": n, "width": ow, "height": oh, "gop": gop}


def _quarter_turns(frame) -> int:
    """Counter-clockwise quarter turns that display the frame upright (as the readers apply them)."""
    return int(round((getattr(frame, "rotation", 0) or 0) / 90.0)) % 4


def _output_stream(out, settings: dict, rate, *, ost_tb, size, gop: int):
    codec = settings["codec"]
    opts = {"threads": "1"}
    if codec == "libx264":  # fixed GOP: a key frame exactly every `gop` frames, none in between
        opts.update(crf=str(settings["crf"]), preset=settings["preset"],
                    **{"x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0"})
    ost = out.add_stream(codec, rate=rate, options=opts)
    ost.width, ost.height = size
    ost.pix_fmt = "yuv420p"
    ost.codec_context.gop_size = gop
    if ost_tb:  # keep the source's clock: each frame's pts is copied, so VFR timing survives
        ost.codec_context.time_base = ost.time_base = ost_tb
    return ost


def _pump(first, frames, ost, out, k: int, size, tb, rate) -> int:
    """Scale (and turn upright) every decoded frame, encode and mux it in pts order; → frames written.

    Some files decode with presentation stamps slightly out of order (B-frames muxed with wrong pts, e.g. the
    test video box.mp4); the encoder needs them increasing, so a small heap puts them back in order (as
    decord's frame index does) and exact duplicates are dropped.
    """
    import heapq
    import itertools

    n, last_pts, seq, heap = 0, None, 0, []
    step = max(1, int(round(1 / (float(rate) * float(tb))))) if tb else 1
    for frame in itertools.chain([first], frames):
        pts = frame.pts if frame.pts is not None else (0 if not heap and last_pts is None else
                                                       max([last_pts or 0] + [h[0] for h in heap]) + step)
        heapq.heappush(heap, (pts, seq, _small(frame, k, size)))
        seq += 1
        if len(heap) > REORDER:
            n, last_pts = _emit(heapq.heappop(heap), ost, out, tb, n, last_pts)
    while heap:
        n, last_pts = _emit(heapq.heappop(heap), ost, out, tb, n, last_pts)
    for p in ost.encode():
        out.mux(p)
    return n


REORDER = 16  # frames held back to restore pts order (more than any B-frame pyramid's depth)


def _small(frame, k: int, size):
    """The frame scaled to `size` (displayed orientation) as yuv420p, turned upright by k quarter turns."""
    import av
    import numpy as np

    if not k:
        return frame.reformat(width=size[0], height=size[1], format="yuv420p", interpolation="BICUBIC")
    sw, sh = (size[1], size[0]) if k % 2 else size  # scale in coded orientation, then turn
    img = np.rot90(frame.reformat(width=sw, height=sh, format="rgb24", interpolation="BICUBIC").to_ndarray(), k)
    return av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24").reformat(format="yuv420p")


def _emit(item, ost, out, tb, n: int, last_pts):
    import av

    pts, _, small = item
    if last_pts is not None and pts <= last_pts:  # a duplicate stamp: the muxer would refuse it
        return n, last_pts
    small.pts, small.time_base = pts, tb
    small.pict_type = av.video.frame.PictureType.NONE  # the source's I frames would force extra key frames
    for p in ost.encode(small):
        out.mux(p)
    return n + 1, pts


def _job(args: tuple) -> tuple:
    """Pool entry: (rel, src, dst, settings) → (rel, info or None, error or None). Never raises."""
    rel, src, dst, settings = args
    try:
        return rel, transcode(src, dst, settings), None
    except Exception as e:  # a corrupt video fails alone
        msg = " ".join(str(e).split()) or type(e).__name__
        return rel, None, f"{src}: {type(e).__name__}: {msg[:300]}"


# ------------------------------------------------------------------------------------ the stage
def run(cfg: PrepConfig, progress: Progress = SILENT) -> PrepResult:
    """Transcode every video of `cfg.videos` not yet in `cfg.out`. Progress: phase "prep" in videos."""
    cfg.check()
    src, out = Path(cfg.videos).absolute(), Path(cfg.out).absolute()
    settings = cfg.settings()
    root = src if src.is_dir() else src.parent
    _claim(out, root, settings)
    rels = list_sources(src)
    if not rels:
        raise UsageError(f"{cfg.videos}: no videos found ({', '.join(VIDEO_EXTS)})", hint="check --videos")
    _remove_stale_temps(out)
    todo = [r for r in rels if not (out / output_path(r)).exists()]
    if len(todo) < len(rels):
        progress.note(f"{out}: resuming, {len(rels) - len(todo)} of {len(rels)} videos are done")
    progress.start("prep", len(rels), done=len(rels) - len(todo), unit="videos")
    jobs = [(r, str(root / r), str(out / output_path(r)), settings) for r in todo]
    t0 = time.perf_counter()
    result = PrepResult(out=str(out), videos=len(rels), done=0, skipped=len(rels) - len(todo), failed=0, seconds=0.0)
    with open(out / LOG_FILE, "a") as log:
        for rel, info, err in _results(jobs, cfg.workers):
            _record(log, result, rel, info, err, root, out)
            progress.advance(1, info=_rate_info(result, time.perf_counter() - t0))
    result.seconds = time.perf_counter() - t0
    return result


def _claim(out: Path, root: Path, settings: dict) -> None:
    """Create OUT/prep.json, or check that an existing one has the same source and settings."""
    from rosetta_cli import __version__
    from rosetta_cli.runtime import atomic

    out.mkdir(parents=True, exist_ok=True)
    path = out / SETTINGS_FILE
    if path.exists():
        old = read_settings(out)
        diff = [k for k in SETTING_KEYS if old.get(k) != settings[k]] + (["source"] if old.get("source") != str(root) else [])
        if diff:
            was = ", ".join(f"{k}={old.get(k)!r}" for k in diff)
            raise UsageError(f"{out}: was prepared with other settings ({was})",
                             hint="rerun with those settings to resume, or choose another --out")
        return
    atomic.write_text(path, json.dumps({"source": str(root), **settings, "audio": False, "pix_fmt": "yuv420p",
                                        "rosetta": __version__}, indent=2) + "\n")


def read_settings(prepped) -> dict:
    """OUT/prep.json as a dict; UsageError if `prepped` is not a `rosetta prep` output."""
    path = Path(prepped) / SETTINGS_FILE
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError):
        raise UsageError(f"{prepped}: not a `rosetta prep` output (no readable {SETTINGS_FILE})",
                         hint="run `rosetta prep --videos SRC --out DIR` first") from None
    if not isinstance(d, dict) or "source" not in d:
        raise UsageError(f"{path}: malformed (no 'source')", hint="rerun `rosetta prep` into a new --out")
    return d


def _remove_stale_temps(out: Path) -> None:
    """Temporaries of killed runs (their pid is gone): .NAME.prep-PID.mp4 anywhere under OUT."""
    import psutil

    for p in out.rglob(f".*.{TEMP_TAG}-*.mp4"):
        try:
            pid = int(p.name.rsplit("-", 1)[1].split(".")[0])
        except (ValueError, IndexError):
            continue
        if not psutil.pid_exists(pid):
            p.unlink(missing_ok=True)


def _results(jobs: list, workers: int | None):
    """(rel, info, error) per job as they finish: in this process (workers=0) or a pool of processes."""
    if workers == 0 or len(jobs) <= 1:
        yield from map(_job, jobs)
        return
    from concurrent.futures import ProcessPoolExecutor, as_completed

    n = min(workers or os.cpu_count() or 1, len(jobs))
    with ProcessPoolExecutor(n) as pool:
        futures = [pool.submit(_job, j) for j in jobs]
        for f in as_completed(futures):
            yield f.result()


def _record(log, result: PrepResult, rel: str, info, err, root: Path, out: Path) -> None:
    """Count and log one finished video (one JSON line, flushed: the log survives a kill)."""
    if err is None:
        result.done += 1
        result.bytes_in += (root / rel).stat().st_size
        result.bytes_out += (out / output_path(rel)).stat().st_size
        entry = {"video": rel, "status": "done", **info}
    else:
        result.failed += 1
        if len(result.failures) < 50:
            result.failures.append((rel, err))
        entry = {"video": rel, "status": "failed", "error": err}
    log.write(json.dumps({**entry, "time": time.strftime("%Y-%m-%dT%H:%M:%S")}) + "\n")
    log.flush()


def _rate_info(r: PrepResult, seconds: float) -> str:
    mb = r.bytes_in / 1e6 / seconds if seconds > 0 else 0.0
    return f"{mb:.1f} MB/s in" + (f", {r.failed} failed" if r.failed else "")


# ------------------------------------------------------------------------------------ reading the copies
def prepped_paths(videos: list[str], prepped) -> tuple[list[str], dict]:
    """The prepped copy of each source video path, and the prep's settings (for the store's signature).

    UsageError (before any work) when a video does not lie under the prep's source folder: that prep was
    made from other videos. A video whose copy is missing (its transcoding failed) keeps its copy's path:
    its rows fail alone, naming that path, as a missing source video's would.
    """
    settings = read_settings(prepped)
    src, base = Path(settings["source"]), Path(prepped).absolute()
    out, outside = [], []
    for v in videos:
        p = Path(os.path.abspath(v))
        if p.is_relative_to(src):
            out.append(str(base / output_path(p.relative_to(src).as_posix())))
        else:
            outside.append(v)
            out.append(v)
    if outside:
        raise UsageError(f"--prepped {prepped}: {len(outside)} video(s) lie outside its source {src}, e.g. {outside[0]}",
                         hint="prep the videos this extraction reads (rosetta prep --videos THEIR_FOLDER), or drop --prepped")
    return out, {"dir": str(base), **{k: settings.get(k) for k in SETTING_KEYS}}
