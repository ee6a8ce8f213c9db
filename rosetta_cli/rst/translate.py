"""`rosetta translate`: an ego store → a store of kind "translations" (hallucinated exo features).

The output is row-aligned with the ego store: same clip table (labels in the same vocabulary order),
same chunking, the ego text embeddings copied (mining builds concat(T(z_ego), e_ego) from one store),
features [N, T_exo, D] (the exo shape the RST was trained on; [N, 1, D] for clip-level features).
Parents: role "ego" (the ego store) and role "rst" (id = fingerprint = sha256 of the RST weights).

Row i's noise is seeded from (seed, i, draw), so the output is the same for any --batch-size, --shard
split or number of torchrun ranks. Blocks are chunk-aligned, so shards write disjoint chunks; rerunning
the command skips rows already done (resume).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from rosetta_cli.errors import InputNotFound, PartialFailure, StoreError, UsageError
from rosetta_cli.rst.ckpt import Translator
from rosetta_cli.rst.config import TranslateConfig
from rosetta_cli.runtime import dist
from rosetta_cli.runtime.guard import Action, output_action
from rosetta_cli.runtime.progress import SILENT, Progress
from rosetta_cli.runtime.shard import parse_shard
from rosetta_cli.store.remote import as_path
from rosetta_cli.store import schema
from rosetta_cli.store.core import Store


@dataclass
class TranslateResult:
    """Counts of the output store after this process's blocks (status counts over all rows)."""

    store: str
    rows: int
    done: int
    failed: int
    pending: int
    translated_now: int
    seconds: float
    rows_per_s: float | None

    def to_dict(self) -> dict:
        return asdict(self)


def run(cfg: TranslateConfig, progress: Progress = SILENT) -> TranslateResult:
    """Translate every done ego row of this process's blocks (resuming cfg.out when it matches)."""
    cfg.check()
    rst_dir, ego_path, out_path, overwrite = Path(cfg.rst), as_path(cfg.ego), as_path(cfg.out), cfg.overwrite
    info = dist.init_from_env(cfg.device)
    index, count = _shard(parse_shard(cfg.shard), info)
    if Path(out_path).resolve() == Path(ego_path).resolve():
        raise UsageError(f"--out {out_path} is the --ego store", hint="write the translations to a new store")
    ego = Store.open(ego_path, kind="features")
    try:
        ego.require_view("ego", "--ego", hint="pass the ego store (the RST translates ego clips into the exo view)")
        tr = Translator(rst_dir, device=info.device)
        tr.check_input(ego.frames, ego.dim, str(ego_path))
        if index == 0:  # once, not once per shard or rank
            for note in tr.notes:
                progress.note(f"note: {note}")
        out = _open_output(out_path, ego, tr, cfg, rst_dir, overwrite, creator=index == 0, info=info)
        t0 = time.perf_counter()
        blocks = list(out.blocks())[index::count]
        done_now, bad = 0, 0
        progress.start("translate", _todo(ego, out, blocks), unit="rows")
        for a, b in blocks:
            n, nb = _translate_block(tr, ego, out, a, b, cfg, progress)
            done_now, bad = done_now + n, bad + nb
        dist.barrier(info)
        summary = _finish(out, done_now, bad, time.perf_counter() - t0, index, info)
        out.close()
        return summary
    finally:
        ego.close()
        dist.cleanup(info)


def _shard(shard: tuple[int, int], info) -> tuple[int, int]:
    if info.distributed:
        if shard != (0, 1):
            raise UsageError("--shard cannot be combined with torchrun", hint="torchrun ranks shard the rows already")
        return info.rank, info.world
    return shard


def _open_output(out_path, ego, tr, cfg, rst_dir, overwrite, creator: bool, info):
    """Create the output (the creator) or open it to resume / join; check it matches this run."""
    out_path = as_path(out_path)  # a Path, or an s3:// / gs:// URL
    ident = {"rst": tr.fingerprint, "ego": ego.id, **cfg.resume_identity()}
    action = output_action(out_path, out_path.exists(), what="a store", overwrite=overwrite,
                           resume=not overwrite)  # translate resumes by default; --overwrite replaces
    if creator and action is not Action.RESUME:
        out = _create(out_path, ego, tr, cfg, rst_dir, ident, overwrite)
        out.close()
    dist.barrier(info)
    out = _wait_open(out_path, creator)
    if out.meta.get("translate") != ident:
        old = out.meta.get("translate") or {}
        differ = sorted(k for k in set(ident) | set(old) if ident.get(k) != old.get(k))
        out.close()
        raise UsageError(f"{out_path}: was written from another ego store, RST or sampling options "
                         f"(differs: {', '.join(differ)})",
                         hint="pass --overwrite to replace it, or choose another --out")
    return out


def _create(out_path, ego, tr, cfg, rst_dir, ident: dict, overwrite: bool):
    clips = ego.clips()
    clips.attrs["labels"], clips.attrs["skills"] = ego.labels, ego.skills  # keep the vocabulary order
    c = tr.cfg
    attrs = {"encoder": ego.meta.get("encoder"), "text_encoder": ego.meta.get("text_encoder"), "translate": ident,
             "rst": {"path": str(rst_dir), "fingerprint": tr.fingerprint, "model": c.model, "size": c.size}}
    out = Store.create(out_path, kind="translations", clips=clips, frames=c.exo_frames, dim=c.exo_dim,
                       text_dim=ego.text_dim, dtype=ego.dtype, chunk_rows=ego.chunk_rows, attrs=attrs,
                       config=cfg, overwrite=overwrite)
    out.add_parent("ego", ego)
    out.add_parent("rst", {"role": "rst", "id": tr.fingerprint, "fingerprint": tr.fingerprint,
                           "path": str(rst_dir), "kind": "rst"})
    return out


def _wait_open(out_path: Path, creator: bool, timeout_s: float = 120.0):
    """Non-creator shards (--shard I/N, I > 0) wait for shard 0 to create the store."""
    deadline = time.monotonic() + (0 if creator else timeout_s)
    while True:
        try:
            return Store.open(out_path, mode="r+", kind="translations")
        except (InputNotFound, StoreError):
            if creator:  # the creator's error is the real one (e.g. --out is another kind of store)
                raise
            if time.monotonic() > deadline:  # other shards wait for shard 0's store to appear
                raise UsageError(f"{out_path}: not created yet", hint="start shard 0 (it creates the store) first") from None
            time.sleep(1.0)


def _translate_block(tr, ego, out, a: int, b: int, cfg: TranslateConfig, progress: Progress) -> tuple[int, int]:
    """Rows [a, b): translate done ego rows still pending; mirror failed/pending ego rows. → (done, failed)."""
    st_ego, st_out = ego.status(slice(a, b)), out.status(slice(a, b))
    todo = (st_out == schema.PENDING) & (st_ego == schema.DONE)
    mirror = (st_ego != schema.DONE) & (st_out == schema.PENDING)
    if not (todo.any() or mirror.any()):
        return 0, 0
    feats = out.features(slice(a, b)).astype(np.float32)
    status, errors = st_out.copy(), out.errors(slice(a, b)).astype(object)
    _mirror(ego, a, b, st_ego, mirror, status, errors)
    x = ego.features(slice(a, b))
    bad = 0
    idx = np.flatnonzero(todo)
    for i in range(0, len(idx), cfg.batch_size):
        sel = idx[i:i + cfg.batch_size]
        y = tr.translate(x[sel], a + sel, sampler=cfg.sampler, steps=cfg.sampling_steps, samples=cfg.samples,
                         guidance=cfg.guidance, seed=cfg.seed)                 # [b, T_exo, D]
        ok = np.isfinite(y).all(axis=(1, 2))
        feats[sel] = np.where(ok[:, None, None], y, 0.0)
        status[sel] = np.where(ok, schema.DONE, schema.FAILED)
        errors[sel] = np.where(ok, "", "translation produced NaN/Inf")
        bad += int((~ok).sum())
        progress.advance(len(sel))
    text = ego.text(slice(a, b)) if ego.text_dim else None
    out.write_rows(a, features=feats, text=text, status=status, errors=errors)
    return int(len(idx)) - bad, bad


def _todo(ego, out, blocks) -> int:
    """Rows of these blocks still to translate (done in ego, pending in out): the progress total."""
    todo = (out.status() == schema.PENDING) & (ego.status() == schema.DONE)
    return int(sum(todo[a:b].sum() for a, b in blocks))


def _mirror(ego, a, b, st_ego, mirror, status, errors) -> None:
    """Failed ego rows stay failed (their message kept); pending ones stay pending with a note."""
    if not mirror.any():
        return
    ego_err = ego.errors(slice(a, b))
    for j in np.flatnonzero(mirror):
        if st_ego[j] == schema.FAILED:
            status[j], errors[j] = schema.FAILED, f"ego row failed: {ego_err[j]}"
        else:
            errors[j] = "ego row pending (not extracted yet); rerun translate after extraction"


def _finish(out, done_now: int, bad: int, seconds: float, index: int, info) -> TranslateResult:
    counts = out.status_counts()
    # complete when every translatable row is done; one process then marks the new revision,
    # and only if some rank wrote rows (a no-op rerun must not make downstream stages stale)
    changed = dist.all_reduce_mean(float(done_now + bad), info) > 0 or out.meta.get("revision") is None
    if (counts["pending"] == 0 or _nothing_left(out)) and changed:
        if (info.distributed and info.is_main) or not info.distributed:
            out.finalize()
    summary = TranslateResult(str(out.path), out.n_rows, counts["done"], counts["failed"], counts["pending"], done_now,
                              round(seconds, 3), round(done_now / seconds, 1) if seconds > 0 else None)
    if bad:
        raise PartialFailure(f"{out.path}: {bad} row(s) could not be translated (NaN/Inf)",
                             hint="see `rosetta store info`; check the RST's training loss")
    return summary


def _nothing_left(out) -> bool:
    errs = out.errors()
    st = out.status()
    return bool(np.all((st != schema.PENDING) | (errs != "")))
