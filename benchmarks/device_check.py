"""The device check: every stage through the CLI on one device, each against its bound measured in the same run.

    python benchmarks/device_check.py [--device cuda] [--out device_check.json]     # ~8 min on one H100
    python benchmarks/device_check.py --device cpu --tiny                           # seconds; CI runs it

It makes its own inputs, then runs each stage as a child process (`python -m rosetta_cli ...`):

- extract, on 1080p-class and 288p H.264 videos it renders (key frame every second), with a randomly
  initialised LaViLa-B-shaped encoder (`lavila:CKPT` on a checkpoint of random weights in LaViLa's layout:
  the weights do not matter for speed). Bound: decode-only clips/s, the same clips decoded and cropped by
  the same number of processes, nothing else (rosetta_cli.video.read_clip + encoders.base.resize_crop).
- train-rst, translate, mine, pretrain and embed, on paper-shaped feature stores: LaViLa's [N, 1, 256]
  and EfficientNet's [N, 4, 1280] (--dims), >= 100k rows each at full size. Bounds, built from the public
  model and loss APIs only (rst.models, rst.diffusion, contrastive.model, contrastive.losses):
  train-rst and pretrain, the same training step (forward, loss, backward, AdamW) on batches already
  resident on the device; translate, the sampler alone (rst.diffusion.sample) on resident rows; embed,
  the dual encoder's forward on resident rows; mine, the card's fp16 matmul peak (a measured 8192^3
  torch matmul, and the datasheet value from PEAK_TFLOPS by card name), the stage's exact flat search
  given as TFLOP/s (2 x queries x candidates x dims / search seconds).

Prints one row per stage: throughput, bound, ratio (with the issue's target beside it), the child's
peak host RSS and peak device memory (nvidia-smi, polled), and writes the table as JSON (--out).
A stage's throughput is the rate the stage itself reports for its loop where it reports one (extract
clips_per_s, translate rows_per_s, mine seconds.search, train-rst/pretrain metrics.jsonl samples_per_s);
otherwise work / the child's wall time, start-up included ("source": "wall").
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Switch to `rosetta prep` once it is on this branch: True renders only the 1080p-class videos and makes the
# 288p set with `rosetta prep --videos BIG --out SMALL`, extracting with `--prepped SMALL`; False renders the
# 288p set directly (same content, same key-frame spacing) and extracts it as its own manifest.
USE_ROSETTA_PREP = False

# The targets on one H100: each stage's throughput / its bound (mine: / the card's fp16 peak).
TARGETS = {"extract 288p": 0.8, "train-rst": 0.8, "translate": 0.8, "pretrain": 0.8, "mine search": 0.3}

# Dense fp16 tensor-core peaks (TFLOP/s, no sparsity) from the datasheets, matched by substring of the card name.
# Order matters: the first key found in torch.cuda.get_device_name() wins (SXM H100s report "H100 80GB HBM3").
PEAK_TFLOPS = {"GH200": 989.0, "H200": 989.0, "H100 PCIe": 756.0, "H100 NVL": 835.0, "H100": 989.0, "H800": 989.0,
               "A100": 312.0, "A800": 312.0, "L40S": 362.0, "L40": 181.0, "L4": 121.0, "A10G": 70.0, "A10": 125.0,
               "RTX 4090": 165.0, "RTX 6000 Ada": 364.0, "V100": 125.0, "T4": 65.0}


@dataclass(frozen=True)
class Sizes:
    """Everything the check makes and runs; FULL fits ~8 min on one H100, TINY runs in seconds on a CPU."""

    videos: int = 16            # per resolution
    seconds: int = 30
    fps: int = 30
    big: tuple = (1920, 1080)
    small: tuple = (512, 288)
    window: float = 2.0
    stride: float = 0.25
    frames: int = 4
    extract_batch: int = 64
    workers: int = max(1, (os.cpu_count() or 2) - 2)
    lavila: dict = None         # SpaceTimeConfig / TextConfig overrides (None: LaViLa TSF-B)
    rows: int = 100_000         # ego / exo / paired rows per store
    mine_exo: int = 400_000     # candidates of the mine stage (D=256)
    text_dim: int = 256
    rst_size: str = "B"
    rst_steps: int = 200
    rst_batch: int = 256
    sampling_steps: int = 25
    translate_batch: int = 4096
    pretrain_steps: int = 300
    pretrain_batch: int = 1024
    embed_batch: int = 8192
    bound_steps: int = 30
    search: tuple = (100_000, 1_250_000, 1664)  # mine's search alone: queries, candidates, dims (the paper's 1280+384)
    timeout_s: int = 600


FULL = Sizes()
TINY = Sizes(videos=2, seconds=4, fps=8, big=(320, 180), small=(128, 72), stride=1.0, extract_batch=8, workers=1,
             lavila={"vision": {"width": 64, "layers": 1, "image_size": 32}, "text": {"width": 32, "layers": 1}},
             rows=256, mine_exo=512, text_dim=32, rst_size="tiny", rst_steps=2, rst_batch=32, sampling_steps=2,
             translate_batch=256, pretrain_steps=2, pretrain_batch=64, embed_batch=256, bound_steps=2, search=(256, 2048, 64),
             timeout_s=120)


# ---------------------------------------------------------------------------- children and memory
class GpuMemPoll:
    """Peak device memory (MiB) of one process, polled from nvidia-smi every 0.2 s (None without it)."""

    def __init__(self, pid: int, enabled: bool):
        self.pid, self.peak, self._stop = pid, None, threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True) if enabled else None
        if self._t:
            self._t.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                                     capture_output=True, text=True, timeout=5).stdout
            except (OSError, subprocess.TimeoutExpired):
                return
            for line in out.splitlines():
                pid, _, mem = line.partition(",")
                if pid.strip() == str(self.pid) and mem.strip().isdigit():
                    self.peak = max(self.peak or 0, int(mem))
            self._stop.wait(0.2)

    def stop(self) -> float | None:
        self._stop.set()
        if self._t:
            self._t.join()
        return self.peak


def child(args: list, log: Path, device: str, timeout: int) -> dict:
    """Run `python -m rosetta_cli ARGS`: rc, wall seconds, stdout, peak host RSS (MiB), peak device MiB."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    argv = [sys.executable, "-m", "rosetta_cli", *map(str, args)]
    t0 = time.perf_counter()
    note(f"rosetta {args[0]} ...")
    with open(log, "w") as err, tempfile.TemporaryFile("w+") as out:
        p = subprocess.Popen(argv, stdout=out, stderr=err, env=env, cwd=ROOT)
        poll = GpuMemPoll(p.pid, device == "cuda")
        deadline = threading.Timer(timeout, p.kill)
        deadline.start()
        _, status, ru = os.wait4(p.pid, 0)
        deadline.cancel()
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        stdout = out.read()
    return {"rc": p.returncode, "wall_s": time.perf_counter() - t0, "stdout": stdout, "log": str(log),
            "peak_rss_mb": ru.ru_maxrss / 1024, "peak_dev_mb": poll.stop(), "argv": " ".join(map(str, args))}


_T0 = time.perf_counter()


def note(msg: str) -> None:
    """Progress on stderr, with the seconds since the check started."""
    print(f"[{time.perf_counter() - _T0:6.1f} s] {msg}", file=sys.stderr, flush=True)


def as_json(res: dict) -> dict:
    try:
        return json.loads(res["stdout"])
    except (json.JSONDecodeError, TypeError):
        return {}


# ---------------------------------------------------------------------------- inputs: videos
def render_video(path: Path, size: tuple, seconds: int, fps: int, seed: int) -> None:
    """An H.264 MP4 of moving, textured content at size (w, h), a key frame every second (libx264)."""
    import av

    w, h = size
    rng = np.random.default_rng(seed)
    # smooth texture (upsampled noise) twice the frame, panned: real motion, realistic bit rate
    base = rng.integers(0, 256, (h // 8 + 2, w // 4 + 2, 3), dtype=np.uint8)
    tex = np.repeat(np.repeat(base, 8, 0), 8, 1)[: h + 8, : 2 * w]
    with av.open(str(path), mode="w") as c:
        st = c.add_stream("libx264", rate=fps)
        st.width, st.height, st.pix_fmt = w, h, "yuv420p"
        st.time_base = Fraction(1, fps)
        st.options = {"preset": "ultrafast", "crf": "23", "g": str(fps), "threads": "1"}
        for i in range(seconds * fps):
            x = (i * max(1, w // (4 * fps))) % w
            frame = tex[(i % 8): (i % 8) + h, x: x + w]
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            vf.pts = i
            for pkt in st.encode(vf):
                c.mux(pkt)
        for pkt in st.encode(None):
            c.mux(pkt)


def _render_one(a):
    render_video(*a)
    return a[0]


def render_set(folder: Path, size: tuple, sz: Sizes) -> list[Path]:
    from concurrent.futures import ProcessPoolExecutor

    folder.mkdir(parents=True, exist_ok=True)
    note(f"rendering {sz.videos} videos of {size[0]}x{size[1]}, {sz.seconds} s each")
    jobs = [(folder / f"v{i:03d}.mp4", size, sz.seconds, sz.fps, i) for i in range(sz.videos)]
    with ProcessPoolExecutor(max(1, min(len(jobs), os.cpu_count() or 1))) as ex:
        return list(ex.map(_render_one, jobs))


def manifest(videos: list[Path], sz: Sizes, path: Path):
    """manifest.csv with the windows [k*stride, k*stride + window] of every video; returns the DataFrame."""
    import pandas as pd

    rows = []
    for v in videos:
        for k, s in enumerate(np.arange(0.0, sz.seconds - sz.window + 1e-9, sz.stride)):
            rows.append({"clip_id": f"{v.stem}-{k:04d}", "video": str(v), "start": round(float(s), 3),
                         "end": round(float(s) + sz.window, 3), "view": "ego"})
    df = pd.DataFrame(rows)
    df.to_csv(path, index=False)
    return df


def lavila_checkpoint(path: Path, sz: Sizes) -> Path:
    """A LaViLa dual-encoder checkpoint of random weights (TSF-B shapes unless sz.lavila shrinks them), saved
    the way LaViLa saves it ({'state_dict': {'module.' + name}, 'args'}), so `lavila:CKPT` loads it."""
    import torch

    from rosetta_cli.encoders.lavila import SpaceTimeConfig, TextConfig, build_model

    over = sz.lavila or {}
    model = build_model(SpaceTimeConfig(**over.get("vision", {})), TextConfig(**over.get("text", {})))
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() > 1:
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)
            elif name.endswith("weight"):
                p.fill_(1.0)
            else:
                p.zero_()
    torch.save({"state_dict": {"module." + k: v for k, v in model.state_dict().items()},
                "args": {"model": "CLIP_OPENAI_TIMESFORMER_BASE"}}, path)
    return path


def _decode_share(a) -> int:
    """Decode + crop clips (video, start, end) in this process → how many."""
    clips, frames, size = a
    import torch

    from rosetta_cli.encoders.base import Preprocess, resize_crop
    from rosetta_cli.video import read_clip

    torch.set_num_threads(1)
    pre = Preprocess(resize=size, crop=size)
    for v, s, e in clips:
        resize_crop(read_clip(v, s, e, frames), pre)
    return len(clips)


def decode_bound(df, sz: Sizes, image_size: int) -> float:
    """clips/s when `workers` processes only decode and crop the manifest's clips (each its contiguous share,
    in video order as extraction reads them)."""
    from concurrent.futures import ProcessPoolExecutor

    note(f"decode bound: {len(df)} clips")
    clips = list(zip(df["video"], df["start"], df["end"]))
    w = max(1, sz.workers)
    shares = [(clips[i * len(clips) // w:(i + 1) * len(clips) // w], sz.frames, image_size) for i in range(w)]
    with ProcessPoolExecutor(w) as ex:
        list(ex.map(_decode_share, [(s[0][:2], s[1], s[2]) for s in shares]))   # warm: imports, first open
        t0 = time.perf_counter()
        n = sum(ex.map(_decode_share, shares))
    return n / (time.perf_counter() - t0)


# ---------------------------------------------------------------------------- inputs: feature stores
def write_store(path: Path, n: int, frames: int, dim: int, text_dim: int, view: str, seed: int,
                sync: np.ndarray | None = None, views: np.ndarray | None = None, block: int = 16_384) -> Path:
    """A done features store of n rows [n, frames, dim] float16 + unit narration embeddings [n, text_dim],
    written block by block through the real store API. Features share a low-rank structure, so that
    mining and training see something learnable (not needed for speed, but it keeps the losses finite)."""
    import pandas as pd

    from rosetta_cli.store import DONE, Store

    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((16, dim)).astype(np.float32) / 4
    tbasis = rng.standard_normal((16, text_dim)).astype(np.float32) / 4
    views = views if views is not None else np.full(n, view)
    ids = np.char.add(np.char.add(views.astype(str), "-"), np.arange(n).astype(str))
    clips = pd.DataFrame({"clip_id": ids, "video": ids, "start": 0.0, "end": 2.0, "view": views,
                          "sync_id": sync if sync is not None else "", "narration": "n", "label": "", "split": "train"})
    s = Store.create(path, kind="features", clips=clips, frames=frames, dim=dim, text_dim=text_dim, overwrite=True)
    for a in range(0, n, block):
        b = min(a + block, n)
        r = np.random.default_rng([seed, a])
        lat = r.standard_normal((b - a, 16), dtype=np.float32)
        f = (lat @ basis)[:, None, :] + 0.5 * r.standard_normal((b - a, frames, dim), dtype=np.float32)
        t = lat @ tbasis + 0.3 * r.standard_normal((b - a, text_dim), dtype=np.float32)
        s.write_rows(a, features=f.astype(np.float16), text=t / np.linalg.norm(t, axis=1, keepdims=True), status=DONE)
    s.finalize()
    s.close()
    return path


def make_stores(d: Path, dim: int, sz: Sizes) -> dict:
    """paired (rows/2 moments x ego, exo), ego and exo stores of [N, T, dim]; T = 1 for 256 (LaViLa), 4 otherwise."""
    frames = 1 if dim == 256 else 4
    note(f"writing feature stores [N, {frames}, {dim}]")
    half = sz.rows // 2
    takes = np.char.add("t", (np.arange(half) // 50).astype(str))
    sync = np.char.add(np.char.add(takes, "/"), (np.arange(half) % 50).astype(str))
    paths = {"paired": write_store(d / "paired.zarr", 2 * half, frames, dim, sz.text_dim, "ego", 1,
                                   sync=np.concatenate([sync, sync]),
                                   views=np.array(["ego"] * half + ["exo"] * half)),
             "ego": write_store(d / "ego.zarr", sz.rows, frames, dim, sz.text_dim, "ego", 2),
             "exo": write_store(d / "exo.zarr", sz.mine_exo if dim == 256 else sz.rows, frames, dim, sz.text_dim,
                                "exo", 3)}
    return {"frames": frames, **paths}


# ---------------------------------------------------------------------------- bounds (resident tensors)
def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def _timed(step, n: int, device: str) -> float:
    """Seconds per call of step() over n calls, after two warm-up calls."""
    note("bound ...")
    for _ in range(2):
        step()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    _sync(device)
    return (time.perf_counter() - t0) / n


def _autocast(device: str):
    import contextlib

    import torch

    return torch.autocast("cuda", dtype=torch.bfloat16) if device == "cuda" else contextlib.nullcontext()


def rst_models(dim: int, frames: int, sz: Sizes, device: str):
    from rosetta_cli.rst.config import RSTModelConfig
    from rosetta_cli.rst.diffusion import make_scheduler
    from rosetta_cli.rst.models import build_model

    cfg = RSTModelConfig(size=sz.rst_size, exo_frames=frames, exo_dim=dim, ego_frames=frames, ego_dim=dim)
    return build_model(cfg).to(device), make_scheduler("ddpm", 1000, "squaredcos_cap_v2")


def rst_train_bound(dim: int, frames: int, sz: Sizes, device: str) -> float:
    """samples/s of the RST training step (predict_eps, MSE, backward, AdamW) on a resident batch, noise on device."""
    import torch
    import torch.nn.functional as F

    from rosetta_cli.rst.diffusion import predict_eps

    model, sched = rst_models(dim, frames, sz, device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x0 = torch.randn(sz.rst_batch, frames, dim, device=device)
    ego = torch.randn(sz.rst_batch, frames, dim, device=device)
    sched.alphas_cumprod = sched.alphas_cumprod.to(device)
    g = torch.Generator(device).manual_seed(0)

    def step():
        t = torch.randint(0, 1000, (sz.rst_batch,), device=device, generator=g)
        noise = torch.randn(x0.shape, device=device, generator=g)
        drop = torch.rand(sz.rst_batch, device=device, generator=g) < 0.1
        with _autocast(device):
            eps = predict_eps(model, sched, sched.add_noise(x0, noise, t), t, ego, drop)
        loss = F.mse_loss(eps.float(), noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return sz.rst_batch / _timed(step, sz.bound_steps, device)


def translate_bound(dim: int, frames: int, sz: Sizes, device: str) -> float:
    """rows/s of the sampler alone (rst.diffusion.sample, DDIM, the stage's steps) on resident ego rows."""
    import torch

    from rosetta_cli.rst.diffusion import make_scheduler, row_generators, sample

    model, _ = rst_models(dim, frames, sz, device)
    model.eval()
    sampler = make_scheduler("ddim", 1000, "squaredcos_cap_v2")
    b = min(sz.translate_batch, sz.rows)
    ego = torch.randn(b, frames, dim, device=device)
    gens = row_generators(0, range(b), 1)

    def step():
        with _autocast(device):
            sample(model, sampler, ego, gens, (frames, dim), sz.sampling_steps)
    return b / _timed(step, max(1, sz.bound_steps // 10), device)


def dual_encoder(dim: int, frames: int, sz: Sizes, device: str):
    from rosetta_cli.contrastive.config import ModelConfig
    from rosetta_cli.contrastive.model import build_model

    return build_model(ModelConfig(input_dim=dim, frames=frames, text_dim=sz.text_dim, init="orthogonal")).to(device)


def pretrain_bound(dim: int, frames: int, sz: Sizes, device: str) -> float:
    """samples/s of the dual encoder's step (L_vv + L_vt + L_vs, backward, AdamW) on resident batches."""
    import torch

    from rosetta_cli.contrastive.losses import total_loss, video_synthetic_loss, video_text_loss, video_video_loss

    model = dual_encoder(dim, frames, sz, device)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    b = sz.pretrain_batch
    ego, exo, syn = (torch.randn(b, frames, dim, device=device) for _ in range(3))
    text = torch.randn(b, sz.text_dim, device=device)
    tgt = torch.arange(b, device=device)

    def step():
        with _autocast(device):
            fe, fx, fs, gt = model.encode_video(ego), model.encode_video(exo), model.encode_video(syn), model.encode_text(text)
            s = model.logit_scale()
            loss = total_loss(video_video_loss(fe, fx, tgt, s), video_text_loss(fe, gt, tgt, s),
                              video_synthetic_loss(fe, fs, tgt, s), 0.5, 0.5)
        opt.zero_grad(set_to_none=True)
        loss.float().backward()
        opt.step()
    return b / _timed(step, sz.bound_steps, device)


def embed_bound(dim: int, frames: int, sz: Sizes, device: str) -> float:
    """rows/s of the dual encoder's video forward on resident rows (embed's work without the stores)."""
    import torch

    model = dual_encoder(dim, frames, sz, device).eval()
    z = torch.randn(sz.embed_batch, frames, dim, device=device)

    def step():
        with torch.no_grad(), _autocast(device):
            model.encode_video(z)
    return sz.embed_batch / _timed(step, sz.bound_steps, device)


def matmul_peak(device: str) -> tuple[float, str]:
    """Measured dense matmul TFLOP/s: fp16 8192^3 on cuda, fp32 2048^3 on the CPU; and what was measured."""
    import torch

    n, dt = (8192, torch.float16) if device == "cuda" else (1024, torch.float32)
    a, b = torch.randn(n, n, device=device, dtype=dt), torch.randn(n, n, device=device, dtype=dt)
    s = _timed(lambda: a @ b, 20 if device == "cuda" else 3, device)
    return 2 * n ** 3 / s / 1e12, f"{'fp16' if device == 'cuda' else 'fp32'} {n}^3 matmul"


def search_tflops(sz: Sizes, device: str) -> tuple[float, dict]:
    """mine's exact search alone, in this process: the plan `rosetta mine --index auto` makes on this machine
    (mining.index.choose_plan: GPU fp16 flat blocks with faiss-gpu), uniform random vectors added in chunks,
    queries searched in mine's 16,384-row blocks with its tie rule (search_topk, k = 1). → (TFLOP/s, plan)."""
    from rosetta_cli.mining import config as mcfg
    from rosetta_cli.mining.index import choose_plan, gpu_info, new_index, plan_meta, to_device
    from rosetta_cli.mining.run import GPU_MAX_K
    from rosetta_cli.mining.search import search_topk

    nq, nc, dim = sz.search
    info = gpu_info()
    plan = choose_plan(nq, nc, dim, device, info.n_gpus, info.gpu_mem, info.faiss_has_gpu, index="flat")
    note(f"mine search alone: {nq:,} x {nc:,} x {dim} ({plan.reason})")
    index = new_index(plan, dim, 0)
    rng = np.random.default_rng(0)
    for a in range(0, nc, 65_536):
        index.add(rng.random((min(65_536, nc - a), dim), dtype=np.float32) - 0.5)
    index, where = to_device(index, plan)
    blocks = [rng.random((min(mcfg.DEFAULT_BLOCK_ROWS, nq - a), dim), dtype=np.float32) - 0.5
              for a in range(0, nq, mcfg.DEFAULT_BLOCK_ROWS)]
    search_topk(index, blocks[0][:64], 1, nc, GPU_MAX_K if where != "cpu" else None)   # warm-up
    t0 = time.perf_counter()
    for xq in blocks:
        search_topk(index, xq, 1, nc, GPU_MAX_K if where != "cpu" else None)
    secs = time.perf_counter() - t0
    return 2.0 * nq * nc * dim / secs / 1e12, {**plan_meta(plan), "device": where, "seconds": round(secs, 3)}


def card(device: str) -> tuple[str, float | None]:
    """(device name, datasheet fp16 TFLOP/s or None)."""
    if device != "cuda":
        return platform.processor() or platform.machine(), None
    import torch

    name = torch.cuda.get_device_name(0)
    return name, next((v for k, v in PEAK_TFLOPS.items() if k in name), None)


def bound_peak_mb(device: str) -> float | None:
    import torch

    if device != "cuda":
        return None
    mb = torch.cuda.max_memory_allocated() / 2**20
    torch.cuda.reset_peak_memory_stats()
    return round(mb, 1)


# ---------------------------------------------------------------------------- stages
def metrics_rate(run_dir: Path) -> float | None:
    """The last samples_per_s a trainer wrote to RUN/metrics.jsonl (its own loop timing)."""
    f = run_dir / "metrics.jsonl"
    if not f.exists():
        return None
    rates = [json.loads(x).get("samples_per_s") for x in f.read_text().splitlines() if x.strip()]
    rates = [r for r in rates if r]
    return float(rates[-1]) if rates else None


def row(stage: str, res: dict, rate: float | None, work: float, unit: str, bound: float | None, bound_what: str,
        bound_mb: float | None = None, target_key: str | None = None) -> dict:
    """One table row; throughput from the stage's own timing (rate) or work / wall."""
    ok = res["rc"] == 0
    src = "loop" if rate else "wall"
    thr = rate if rate else (work / res["wall_s"] if ok and res["wall_s"] > 0 else None)
    ratio = thr / bound if ok and thr and bound else None
    error = None if ok or not res["log"] else \
        (Path(res["log"]).read_text(errors="replace").strip().splitlines() or ["(no output)"])[-1]
    return {"stage": stage, "ok": ok, "rc": res["rc"], "throughput": thr, "unit": unit, "source": src,
            "bound": bound, "bound_what": bound_what, "ratio": ratio,
            "target": TARGETS.get(target_key or stage), "wall_s": round(res["wall_s"], 2),
            "peak_rss_mb": round(res["peak_rss_mb"], 1), "peak_dev_mb": res["peak_dev_mb"],
            "bound_peak_dev_mb": bound_mb, "command": "rosetta " + res["argv"], "log": res["log"],
            "error": error}


def extract_rows(d: Path, sz: Sizes, device: str, ckpt: Path) -> list[dict]:
    """Render both video sets, then per resolution: the decode bound, then `rosetta extract`."""
    from rosetta_cli.encoders.lavila import SpaceTimeConfig

    image = SpaceTimeConfig(**(sz.lavila or {}).get("vision", {})).image_size
    big = render_set(d / "videos-1080p", sz.big, sz)
    sets = [("1080p", big, [])]
    if USE_ROSETTA_PREP:
        res = child(["prep", "--videos", d / "videos-1080p", "--out", d / "videos-288p"], d / "prep.log", device,
                    sz.timeout_s)
        if res["rc"] != 0:
            raise SystemExit(f"device_check: rosetta prep failed (see {res['log']})")
        small = sorted((d / "videos-288p").rglob("*.mp4"))
        sets.append(("288p", big, ["--prepped", d / "videos-288p"]))   # extract reads the prepped copies
    else:
        small = render_set(d / "videos-288p", sz.small, sz)
        sets.append(("288p", small, []))
    rows = []
    for res_name, vids, extra in sets:
        df = manifest(vids, sz, d / f"clips-{res_name}.csv")
        decode_df = manifest(small, sz, d / "decode-288p.csv") if extra else df
        bound = decode_bound(decode_df, sz, image)
        res = child(["extract", "--videos", d / f"clips-{res_name}.csv", "--dataset", "csv", "--out",
                     d / f"extract-{res_name}.zarr", "--encoder", f"lavila:{ckpt}", "--text-encoder", "none",
                     "--frames", sz.frames, "--batch-size", sz.extract_batch, "--workers", sz.workers,
                     "--device", device, "--precision", "bf16" if device == "cuda" else "fp32", *extra, "--json"],
                    d / f"extract-{res_name}.log", device, sz.timeout_s)
        rate = as_json(res).get("clips_per_s")
        rows.append(row(f"extract {res_name}", res, rate, len(df), "clips/s", bound,
                        f"decode-only, {sz.workers} processes"))
    return rows


def feature_rows(d: Path, dim: int, sz: Sizes, device: str) -> list[dict]:
    """train-rst, translate, mine, pretrain, embed on [N, T, dim] stores, each beside its bound."""
    st = make_stores(d, dim, sz)
    T, tag = st["frames"], f" D={dim}"
    rows = []
    log = lambda name: d / f"{name}.log"  # noqa: E731

    res = child(["train-rst", "--paired", st["paired"], "--out", d / "rst", "--size", sz.rst_size, "--steps",
                 sz.rst_steps, "--batch-size", sz.rst_batch, "--device", device, "--val-frac", 0.02], log("train-rst"),
                device, sz.timeout_s)
    b = rst_train_bound(dim, T, sz, device)
    rows.append(row("train-rst" + tag, res, metrics_rate(d / "rst"), sz.rst_steps * sz.rst_batch, "samples/s", b,
                    "same step on resident tensors", bound_peak_mb(device), "train-rst"))

    res = child(["translate", "--rst", d / "rst", "--ego", st["ego"], "--out", d / "ego_tr.zarr", "--sampling-steps",
                 sz.sampling_steps, "--batch-size", sz.translate_batch, "--device", device, "--json"],
                log("translate"), device, sz.timeout_s)
    b = translate_bound(dim, T, sz, device)
    rows.append(row("translate" + tag, res, as_json(res).get("rows_per_s"), sz.rows, "rows/s", b,
                    "sampler alone on resident rows", bound_peak_mb(device), "translate"))

    tr = d / "ego_tr.zarr"
    mine_args = ["mine", "--ego", st["ego"], "--exo", st["exo"], "--out", d / "pairs.zarr", "--device", device,
                 "--topk", 1, "--json"] + (["--translated", tr] if tr.exists() else ["--strategy", "visual"])
    res = child(mine_args, log("mine"), device, sz.timeout_s)
    js = as_json(res)
    n_exo = sz.mine_exo if dim == 256 else sz.rows
    qdim = (js.get("index") or {}).get("dim") or dim + sz.text_dim
    search_s = (js.get("seconds") or {}).get("search")
    tflops = 2.0 * sz.rows * n_exo * qdim / search_s / 1e12 if search_s else None
    peak, what = matmul_peak(device)
    name, sheet = card(device)
    r = row("mine" + tag, res, tflops, 0, "TFLOP/s", peak, f"measured {what}; stage search s incl. reads",
            bound_peak_mb(device), "mine")
    r["datasheet_peak"] = sheet
    r["ratio_to_datasheet"] = tflops / sheet if tflops and sheet else None
    r["index"] = (js.get("index") or {}).get("kind"), (js.get("index") or {}).get("device")
    rows.append(r)

    has_pairs = (d / "pairs.zarr").exists()
    pre = ["pretrain", "--paired", st["paired"], "--out", d / "model", "--steps", sz.pretrain_steps,
           "--eval-every", sz.pretrain_steps, "--batch-size", sz.pretrain_batch, "--init", "orthogonal",
           "--device", device]
    if has_pairs:
        pre += ["--ego", st["ego"], "--exo", st["exo"], "--pairs", d / "pairs.zarr"] + (
            ["--translated", tr] if tr.exists() else [])
    res = child(pre, log("pretrain"), device, sz.timeout_s)
    b = pretrain_bound(dim, T, sz, device)
    rows.append(row("pretrain" + tag, res, metrics_rate(d / "model"), sz.pretrain_steps * sz.pretrain_batch,
                    "samples/s", b, "same step on resident tensors", bound_peak_mb(device), "pretrain"))

    res = child(["embed", "--model", d / "model", "--store", st["exo"], "--out", d / "exo_emb.zarr", "--device", device,
                 "--batch-size", sz.embed_batch, "--json"], log("embed"), device, sz.timeout_s)
    b = embed_bound(dim, T, sz, device)
    rows.append(row("embed" + tag, res, None, n_exo, "rows/s", b, "forward on resident rows", bound_peak_mb(device),
                    "embed"))
    return rows


def mine_search_row(sz: Sizes, device: str) -> dict:
    """mine's exact search alone (search_tflops) against the measured matmul peak and the datasheet's."""
    t0 = time.perf_counter()
    try:
        tflops, plan = search_tflops(sz, device)
        res = {"rc": 0, "log": "", "argv": "(in-process) mining.index.choose_plan + search.search_topk"}
    except Exception as e:  # noqa: BLE001 - a failed row is reported, the table still printed
        tflops, plan = None, {}
        res = {"rc": 1, "log": "", "argv": "(in-process) mining search", "error": f"{type(e).__name__}: {e}"}
    import resource

    res.update(wall_s=time.perf_counter() - t0, peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
               peak_dev_mb=None, stdout="")
    peak, what = matmul_peak(device)
    name, sheet = card(device)
    r = row("mine search", res, tflops, 0, "TFLOP/s", peak, f"measured {what}", bound_peak_mb(device))
    r.update(datasheet_peak=sheet, ratio_to_datasheet=tflops / sheet if tflops and sheet else None,
             index=(plan.get("kind"), plan.get("device")), plan=plan, error=res.get("error"),
             command="python benchmarks/device_check.py (in-process)")
    return r


# ---------------------------------------------------------------------------- report
def fmt(x, nd=1) -> str:
    if x is None:
        return "-"
    return f"{x:,.{nd}f}" if abs(x) >= 0.1 or x == 0 else f"{x:.3g}"


def table(rows: list[dict]) -> str:
    head = "| stage | throughput | bound | ratio (target) | peak RSS MiB | peak device MiB (bound) | ok |"
    lines = [head, "|" + "---|" * 7]
    for r in rows:
        tgt = f" (≥ {r['target']})" if r.get("target") else ""
        lines.append(f"| {r['stage']} | {fmt(r['throughput'])} {r['unit']} [{r['source']}] | {fmt(r['bound'])} "
                     f"({r['bound_what']}) | {fmt(r['ratio'], 2)}{tgt} | {fmt(r['peak_rss_mb'], 0)} | "
                     f"{fmt(r['peak_dev_mb'], 0)} ({fmt(r.get('bound_peak_dev_mb'), 0)}) | "
                     f"{'yes' if r['ok'] else 'NO, rc ' + str(r['rc']) + ': ' + str(r['error'])} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    ap.add_argument("--tiny", action="store_true", help="small inputs: a functional check in seconds (CI)")
    ap.add_argument("--dims", default=None, help="feature dims to run, comma-separated (default 256,1280; --tiny: 256)")
    ap.add_argument("--out", type=Path, default=Path("device_check.json"), help="write the table as JSON here")
    ap.add_argument("--workdir", type=Path, default=None, help="keep inputs and outputs here (default: a temp dir)")
    a = ap.parse_args(argv)
    sz = TINY if a.tiny else FULL
    dims = [int(x) for x in (a.dims or ("256" if a.tiny else "256,1280")).split(",")]
    if a.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            print("device_check: --device cuda, but torch sees no CUDA GPU (scripts/install.sh --cuda; or --device cpu)",
                  file=sys.stderr)
            return 2
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="device-check-") as tmp:
        d = a.workdir or Path(tmp)
        d.mkdir(parents=True, exist_ok=True)
        rows = extract_rows(d / "extract", sz, a.device, lavila_checkpoint(_mk(d / "extract") / "lavila-random.pth", sz))
        for dim in dims:
            rows += feature_rows(_mk(d / f"d{dim}"), dim, sz, a.device)
        rows.append(mine_search_row(sz, a.device))
        name, sheet = card(a.device)
        report = {"device": a.device, "card": name, "datasheet_fp16_tflops": sheet, "tiny": a.tiny,
                  "sizes": asdict(sz), "cpu_count": os.cpu_count(), "python": platform.python_version(),
                  "use_rosetta_prep": USE_ROSETTA_PREP, "seconds": round(time.perf_counter() - t0, 1), "rows": rows}
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(report, indent=2, default=str))
    print(f"device check on {name} ({a.device}{', tiny' if a.tiny else ''}), {report['seconds']} s")
    print(table(rows))
    print(f"wrote {a.out}")
    return 0 if all(r["ok"] for r in rows) else 1


def _mk(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


if __name__ == "__main__":
    sys.exit(main())
