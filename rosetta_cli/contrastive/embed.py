"""`rosetta embed`: a features store → an "embeddings" store of f_theta outputs [N, 1, d].

The clip table (label/skill vocabulary order included) and per-row status are copied;
rows that are not DONE keep zero features. With text=True the narration embeddings are
mapped through g_psi into `text` [N, d]. Parents: the source store and the model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from rosetta_cli.contrastive.api import DualEncoder, load_dual_encoder
from rosetta_cli.errors import UsageError
from rosetta_cli.runtime.progress import SILENT, Progress
from rosetta_cli.store import DONE, Store


@dataclass
class EmbedConfig:
    model: str
    store: str
    out: str
    text: bool = False       # also embed narrations with g_psi (needs `text` in the store)
    batch_size: int = 4096   # rows per forward pass; chunk-aligned reads keep memory bounded
    device: str = "cpu"
    overwrite: bool = False  # replace an existing --out (embedding is cheap: no resume)


@dataclass
class EmbedResult:
    out: str
    rows: int
    done: int
    dim: int

    def to_dict(self) -> dict:
        return asdict(self)


def model_parent(enc: DualEncoder) -> dict:
    return {"role": "model", "id": enc.meta.get("run_id", ""), "fingerprint": enc.fingerprint(),
            "path": str(enc.path), "kind": "checkpoint"}


def create_output(cfg: EmbedConfig, src: Store, enc: DualEncoder) -> Store:
    df = src.clips()
    df.attrs["labels"], df.attrs["skills"] = src.labels, src.skills  # keep the vocabulary order
    encoder = {"name": enc.name, "kind": "dual-encoder", "path": str(enc.path), "fingerprint": enc.fingerprint(),
               "input_encoder": src.meta.get("encoder")}
    out = Store.create(cfg.out, kind="embeddings", clips=df, frames=1, dim=enc.dim,
                       text_dim=enc.dim if cfg.text else None, dtype="float32", chunk_rows=src.chunk_rows,
                       attrs={"encoder": encoder, "text_encoder": encoder if cfg.text else None},
                       config=cfg, overwrite=cfg.overwrite)
    out.add_parent("store", src)
    out.add_parent("model", model_parent(enc))
    return out


def run(cfg: EmbedConfig, progress: Progress = SILENT) -> EmbedResult:
    """Encode every DONE row of cfg.store into cfg.out."""
    from rosetta_cli.runtime.dist import resolve_device

    if cfg.batch_size < 1:
        raise UsageError(f"--batch-size {cfg.batch_size}: must be >= 1")
    enc = load_dual_encoder(cfg.model, device=resolve_device(cfg.device))
    src = Store.open(cfg.store, kind=("features", "translations"))
    if src.dim != enc.input_dim:
        from rosetta_cli.errors import DimensionMismatch

        raise DimensionMismatch(f"{src.path}: features are {src.dim}-d but {enc.path} expects {enc.input_dim}-d",
                                hint="embed a store made with the encoder the model was trained on")
    if cfg.text and not src.text_dim:
        raise UsageError(f"{src.path}: has no narration embeddings for --text", hint="drop --text")
    out = create_output(cfg, src, enc)
    progress.start("embed", src.n_rows, unit="rows")
    step = max(src.chunk_rows, (cfg.batch_size // src.chunk_rows) * src.chunk_rows)
    for start, stop in src.blocks(step):
        status = src.status(slice(start, stop))
        done = status == DONE
        feats = np.zeros((stop - start, 1, enc.dim), np.float32)
        text = np.zeros((stop - start, enc.dim), np.float32) if cfg.text else None
        if done.any():
            feats[done, 0] = enc.encode_video(src.features(slice(start, stop))[done])
            if cfg.text:
                text[done] = enc.encode_text(src.text(slice(start, stop))[done])
        out.write_rows(start, features=feats, text=text, status=status, errors=src.errors(slice(start, stop)))
        progress.advance(stop - start)
    out.finalize()
    return EmbedResult(str(out.path), src.n_rows, int((src.status() == DONE).sum()), enc.dim)
