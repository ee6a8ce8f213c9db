"""Input checks and the vectors each strategy ranks by.

Every vector is a concatenation of L2-normalised, clip-pooled parts scaled so that
an inner product is a weighted sum of cosines (W = text weight):

    query     = [sqrt(1-W) * n(v_q), sqrt(W) * n(e_ego)]     v_q = T(z_ego) (rst) or z_ego (visual)
    candidate = [sqrt(1-W) * n(z_exo), sqrt(W) * n(e_exo)]
    <query, candidate> = (1-W) * cos(v_q, z_exo) + W * cos(e_ego, e_exo)

Parts with zero weight are left out (W=0: visual only, W=1: text only). An optional
projection P [D, d'] (PCA, see fit_pca) maps both sides to d' dims.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rosetta_cli.errors import DimensionMismatch, StoreError, UsageError
from rosetta_cli.eval.metrics import l2_normalize
from rosetta_cli.mining.config import PCA_SAMPLE_ROWS, MineConfig, default_text_weight
from rosetta_cli.store import DONE, Store
from rosetta_cli.store.core import check_ego_exo, check_translations, require_finite


def pooled(store: Store, lo: int, hi: int) -> np.ndarray:
    """Store.pooled(slice(lo, hi)) [n, D] float32 without the extra copies when T == 1."""
    f = store.features(slice(lo, hi))
    return f[:, 0] if f.shape[1] == 1 else f.mean(axis=1, dtype=np.float32)


def _scale_rows(x: np.ndarray, scale: float) -> None:
    """In place: x[i] *= scale / ||x[i]|| (zero rows stay zero)."""
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))
    x *= (scale / np.maximum(norms, 1e-12))[:, None]


def groups(rows: np.ndarray, span: int):
    """Split sorted global rows into runs inside one [b*span, (b+1)*span) window: yields (b, rows)."""
    if len(rows) == 0:
        return
    b = rows // span
    cuts = np.flatnonzero(np.diff(b)) + 1
    for part in np.split(rows, cuts):
        yield int(part[0] // span), part


class VectorSource:
    """Builds [n, d] float32 vectors for sorted global rows of one side (query or candidate)."""

    def __init__(self, visual: Store | None, text: Store | None, w: float, span: int):
        self.visual, self.textstore, self.w, self.span = visual, text, float(w), span
        self.proj: np.ndarray | None = None

    @property
    def raw_dim(self) -> int:
        d = self.visual.dim if self.w < 1 else 0
        return d + (self.textstore.text_dim if self.w > 0 else 0)

    @property
    def dim(self) -> int:
        return self.proj.shape[1] if self.proj is not None else self.raw_dim

    def _window(self, rows: np.ndarray, project: bool) -> np.ndarray:
        """Vectors for rows inside one read window; written in place into one buffer (no hstack copies)."""
        lo, hi = int(rows[0]), int(rows[-1]) + 1
        sel = slice(None) if hi - lo == len(rows) else rows - lo   # all rows done: no fancy-index copy
        dv = self.visual.dim if self.w < 1 else 0
        x = np.empty((len(rows), self.raw_dim), np.float32)
        if self.w < 1:
            x[:, :dv] = pooled(self.visual, lo, hi)[sel]
            require_finite(self.visual, x[:, :dv], rows)
            _scale_rows(x[:, :dv], np.sqrt(1 - self.w))
        if self.w > 0:
            x[:, dv:] = self.textstore.text(slice(lo, hi))[sel]
            require_finite(self.textstore, x[:, dv:], rows, "text embeddings")
            _scale_rows(x[:, dv:], np.sqrt(self.w))
        if project and self.proj is not None:
            x = x @ self.proj
        return x

    def vectors(self, rows: np.ndarray, project: bool = True) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) == 0:
            return np.zeros((0, self.dim if project else self.raw_dim), np.float32)
        parts = [self._window(part, project) for _, part in groups(rows, self.span)]
        return parts[0] if len(parts) == 1 else np.vstack(parts)


def normalized_text(store: Store, rows: np.ndarray, span: int, dtype=np.float32) -> np.ndarray:
    """n(e) for sorted rows: [n, Dt] (reads window by window)."""
    out = [l2_normalize(store.text(slice(int(p[0]), int(p[-1]) + 1))[p - p[0]]).astype(dtype) for _, p in groups(rows, span)]
    return np.vstack(out) if out else np.zeros((0, store.text_dim or 0), dtype)


def sample_rows(rows: np.ndarray, chunk: int, n_wanted: int, seed: int) -> np.ndarray:
    """Whole random chunks of `rows` (cheap to read) until >= n_wanted rows; sorted."""
    if len(rows) <= n_wanted:
        return rows
    chunk_ids = np.unique(rows // chunk)
    order = np.random.default_rng(seed).permutation(chunk_ids)
    counts = np.bincount(np.searchsorted(chunk_ids, rows // chunk), minlength=len(chunk_ids))
    need = int(np.searchsorted(np.cumsum(counts[np.searchsorted(chunk_ids, order)]), n_wanted)) + 1
    keep = np.isin(rows // chunk, order[:need])
    return rows[keep]


def fit_pca(source: VectorSource, rows: np.ndarray, dim: int, seed: int) -> dict:
    """Uncentred PCA (top right-singular vectors of a sample) → source.proj [D, dim].

    Uncentred, because inner products (not distances to the mean) must survive the
    projection: <Pq, Px> ≈ <q, x> when the sample's energy is concentrated in P.
    """
    if not 0 < dim < source.raw_dim:
        raise UsageError(f"--pca {dim}: must be between 1 and the vector dimension ({source.raw_dim})")
    sample = sample_rows(rows, source.span, max(PCA_SAMPLE_ROWS, 20 * dim), seed)
    x = source.vectors(sample, project=False).astype(np.float64)
    gram = x.T @ x
    vecs, vals = _top_eigh(gram, dim, seed)
    source.proj = np.ascontiguousarray(vecs, dtype=np.float32)
    energy = float(vals.sum() / max(np.trace(gram), 1e-30))
    return {"dim": dim, "from_dim": source.raw_dim, "sample_rows": int(len(sample)), "energy": round(energy, 6),
            "centered": False}


def _top_eigh(gram: np.ndarray, dim: int, seed: int, iters: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Top-dim eigenpairs of a PSD [D, D] matrix by block subspace iteration (a full eigh of
    D=1664 takes 10+ s on 2 busy cores; this takes well under 1 s)."""
    d = gram.shape[0]
    width = dim + 32
    if width >= d // 2:
        vals, vecs = np.linalg.eigh(gram)
        top = np.argsort(vals)[::-1][:dim]
        return vecs[:, top], vals[top]
    q = np.random.default_rng(seed).standard_normal((d, width))
    for _ in range(iters):
        q = _orthonormalize(gram @ q)
    vals, v = np.linalg.eigh(q.T @ gram @ q)
    top = np.argsort(vals)[::-1][:dim]
    return q @ v[:, top], vals[top]


def _orthonormalize(a: np.ndarray) -> np.ndarray:
    """Columns of a [D, m] → orthonormal basis of their span (Cholesky-QR2 via a small eigh;
    LAPACK's Householder QR is ~30x slower here under load)."""
    for _ in range(2):
        w, v = np.linalg.eigh(a.T @ a)
        a = a @ (v / np.sqrt(np.maximum(w, 1e-12 * w.max())))
    return a


@dataclass
class Inputs:
    """Opened, checked inputs and the rows that take part."""

    ego: Store
    exo: Store
    translated: Store | None
    strategy: str
    w: float
    q_rows: np.ndarray
    c_rows: np.ndarray
    skipped: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)

    @property
    def has_text(self) -> bool:
        return self.ego.text_dim is not None and self.exo.text_dim is not None

    def close(self) -> None:
        for s in (self.ego, self.exo, self.translated):
            if s is not None:
                s.close()


def open_inputs(cfg: MineConfig) -> Inputs:
    """Open and check the stores for cfg.strategy; find the done rows on each side."""
    w = _text_weight(cfg)
    ego = Store.open(cfg.ego, kind="features")
    exo = Store.open(cfg.exo, kind="features")
    check_ego_exo(ego, exo)
    tr = Store.open(cfg.translated, kind="translations") if cfg.translated else None
    inp = Inputs(ego, exo, tr, cfg.strategy, w, np.zeros(0, np.int64), np.zeros(0, np.int64))
    try:
        _check(inp, cfg)
        _select_rows(inp)
    except Exception:
        inp.close()
        raise
    return inp


def _text_weight(cfg: MineConfig) -> float:
    if cfg.text_weight is None:
        return default_text_weight(cfg.strategy)
    if cfg.strategy in ("text", "random"):
        raise UsageError(f"--text-weight applies to --strategy rst or visual, not {cfg.strategy}",
                         hint="drop --text-weight (text ranks by narrations only; random ignores scores)")
    if not 0.0 <= cfg.text_weight <= 1.0:
        raise UsageError(f"--text-weight {cfg.text_weight}: must be in [0, 1]")
    return float(cfg.text_weight)


def _check(inp: Inputs, cfg: MineConfig) -> None:
    if inp.strategy == "rst":
        if inp.translated is None:
            raise UsageError("--strategy rst needs --translated (the ego store translated by `rosetta translate`)",
                             hint="pass --translated TR.zarr, or use --strategy visual/text/random")
        inp.notes += check_translations(inp.translated, inp.ego)
    elif inp.translated is not None:
        inp.notes.append(f"--translated is ignored by --strategy {inp.strategy}")
        inp.translated.close()
        inp.translated = None
    vis_q = inp.translated if inp.strategy == "rst" else inp.ego
    if inp.strategy in ("rst", "visual") and inp.w < 1 and vis_q.dim != inp.exo.dim:
        raise DimensionMismatch(f"{vis_q.path}: feature dim {vis_q.dim} != {inp.exo.path}: {inp.exo.dim}",
                                hint="queries and candidates must come from the same encoder (translate into the exo space)")
    needs_text = inp.strategy == "text" or (inp.strategy in ("rst", "visual") and inp.w > 0)
    if needs_text:
        _check_text(inp, cfg)


def _check_text(inp: Inputs, cfg: MineConfig) -> None:
    for s in (inp.ego, inp.exo):
        if s.text_dim is None:
            why = "--strategy text" if inp.strategy == "text" else f"--text-weight {inp.w:g}"
            raise StoreError(f"{s.path}: has no narration embeddings, needed by {why}",
                             hint="extract with a text encoder, or use --text-weight 0 (rst/visual)")
    if inp.ego.text_dim != inp.exo.text_dim:
        raise DimensionMismatch(f"{inp.ego.path}: text dim {inp.ego.text_dim} != {inp.exo.path}: {inp.exo.text_dim}",
                                hint="embed both narrations with the same text encoder")


def _select_rows(inp: Inputs) -> None:
    q_ok = inp.ego.status() == DONE
    inp.skipped["ego_not_done"] = int((~q_ok).sum())
    if inp.translated is not None:
        t_ok = inp.translated.status() == DONE
        inp.skipped["translated_not_done"] = int((q_ok & ~t_ok).sum())
        q_ok &= t_ok
    c_ok = inp.exo.status() == DONE
    inp.skipped["exo_not_done"] = int((~c_ok).sum())
    inp.q_rows, inp.c_rows = np.flatnonzero(q_ok), np.flatnonzero(c_ok)


def sources(inp: Inputs, span_q: int, span_c: int) -> tuple[VectorSource, VectorSource]:
    """(query source, candidate source) for the strategy (random: both None); span = rows read at once."""
    if inp.strategy == "random":
        return None, None
    w = 1.0 if inp.strategy == "text" else inp.w
    vis_q = inp.translated if inp.strategy == "rst" else inp.ego
    return VectorSource(vis_q, inp.ego, w, span_q), VectorSource(inp.exo, inp.exo, w, span_c)
