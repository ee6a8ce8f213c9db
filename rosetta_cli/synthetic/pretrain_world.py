"""A small synthetic ego/exo world with a hidden shared cause, for tests and the benchmark.

Each moment has a latent c = class centre + moment detail. The two views see it through
*different* random nonlinear maps plus view-specific nuisance, so frozen ego and exo
features are not comparable (cross-view retrieval ≈ chance) although they share c:

    z_view[t] = tanh(A_view (c + frame noise) + B_view u_view) + noise     [T, D]
    narration e = normalise(E c_class + noise)                            [Dt]

Pseudo-pairs for an unpaired ego clip pick an exo clip of the same class (a stand-in for
mining; `pair_noise` of them are random instead) with w = cosine of the narrations.
The same construction (maps fixed by `seed`) gives the paired, ego, exo and translation stores.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from rosetta_cli.store import DONE, Store


@dataclass
class World:
    dim: int = 64            # D
    frames: int = 4          # T
    text_dim: int = 16       # Dt
    latent: int = 8          # k
    classes: int = 8
    detail: float = 0.6      # moment-specific share of the latent (what sync-level retrieval needs)
    noise: float = 0.05
    seed: int = 0

    def __post_init__(self):
        r = np.random.default_rng(self.seed)
        self.centres = r.standard_normal((self.classes, self.latent))
        self.maps = {v: r.standard_normal((self.dim, self.latent)) / np.sqrt(self.latent) for v in ("ego", "exo")}
        self.nuis = {v: r.standard_normal((self.dim, 4)) for v in ("ego", "exo")}
        self.bias = {v: r.standard_normal(self.dim) for v in ("ego", "exo")}
        self.text_map = r.standard_normal((self.text_dim, self.latent))

    def moments(self, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
        """n latents [n, k] and their classes [n]."""
        y = rng.integers(0, self.classes, n)
        return self.centres[y] + self.detail * rng.standard_normal((n, self.latent)), y

    def view(self, c: np.ndarray, view: str, rng) -> np.ndarray:
        """[n, k] latents → frozen features [n, T, D] float32 as the `view` camera sees them."""
        n = len(c)
        frames = c[:, None, :] + 0.2 * rng.standard_normal((n, self.frames, self.latent))
        u = rng.standard_normal((n, 1, 4))
        z = np.tanh(frames @ self.maps[view].T + u @ self.nuis[view].T + self.bias[view])
        return (z + self.noise * rng.standard_normal(z.shape)).astype(np.float32)

    def text(self, y: np.ndarray, rng) -> np.ndarray:
        e = self.centres[y] @ self.text_map.T + 0.5 * rng.standard_normal((len(y), self.text_dim))
        return (e / np.linalg.norm(e, axis=1, keepdims=True)).astype(np.float32)


def _write(path, df: pd.DataFrame, feats: np.ndarray, text: np.ndarray | None, chunk_rows: int, kind: str = "features") -> Store:
    s = Store.create(path, kind=kind, clips=df, frames=feats.shape[1], dim=feats.shape[2],
                     text_dim=None if text is None else text.shape[1], chunk_rows=chunk_rows, overwrite=True)
    s.write_rows(0, features=feats, text=text, status=np.full(len(df), DONE))
    s.finalize()
    return s


def _clips(view: str, y: np.ndarray, sync: list | None = None) -> pd.DataFrame:
    n = len(y)
    return pd.DataFrame({"clip_id": [f"{view}{i}" for i in range(n)], "video": [f"v{i}" for i in range(n)],
                         "start": 0.0, "end": 1.0, "view": view, "sync_id": sync or [""] * n,
                         "narration": [f"step {k}" for k in y], "label": [f"k{k}" for k in y]})


def make_paired(world: World, path, takes: int, per_take: int, seed: int, chunk_rows: int = 256) -> Store:
    """takes × per_take synchronized moments: ego rows then exo rows, sync_id 'take/moment'."""
    rng = np.random.default_rng(seed)
    c, y = world.moments(takes * per_take, rng)
    sync = [f"t{t}/{m}" for t in range(takes) for m in range(per_take)]
    df = pd.concat([_clips("ego", y, sync), _clips("exo", y, sync)], ignore_index=True)
    feats = np.concatenate([world.view(c, "ego", rng), world.view(c, "exo", rng)])
    text = world.text(np.concatenate([y, y]), rng)
    return _write(path, df, feats, text, chunk_rows)


def make_unpaired(world: World, root: Path, n_ego: int, n_exo: int, seed: int, pair_noise: float = 0.0,
                  chunk_rows: int = 256, translate: bool = True, suffix: str = ".zarr") -> dict:
    """ego, exo, pairs (+ translations: the exo view of each ego clip's own latent) stores under root."""
    rng = np.random.default_rng(seed)
    ce, ye = world.moments(n_ego, rng)
    cx, yx = world.moments(n_exo, rng)
    te, tx = world.text(ye, rng), world.text(yx, rng)
    root = Path(root)
    ego = _write(root / f"ego{suffix}", _clips("ego", ye), world.view(ce, "ego", rng), te, chunk_rows)
    exo = _write(root / f"exo{suffix}", _clips("exo", yx), world.view(cx, "exo", rng), tx, chunk_rows)
    cand = np.array([rng.choice(np.flatnonzero(yx == k)) if (yx == k).any() else 0 for k in ye])
    rand = rng.random(n_ego) < pair_noise
    cand[rand] = rng.integers(0, n_exo, rand.sum())
    table = pd.DataFrame({"query_row": np.arange(n_ego), "query_clip_id": [f"ego{i}" for i in range(n_ego)],
                          "candidate_row": cand, "candidate_clip_id": [f"exo{i}" for i in cand], "rank": 0,
                          "score": 1.0, "weight": (te * tx[cand]).sum(axis=1)})
    pairs = Store.create_pairs(root / f"pairs{suffix}", table, attrs={"strategy": "synthetic-oracle"}, overwrite=True)
    pairs.add_parent("ego", ego)
    pairs.add_parent("exo", exo)
    out = {"ego": ego, "exo": exo, "pairs": pairs}
    if translate:  # a perfect "RST": the exo view of the ego clip's latent, clip-level (T = 1)
        tr = world.view(ce, "exo", rng).mean(axis=1, keepdims=True)
        out["translated"] = _write(root / f"translated{suffix}", _clips("ego", ye), tr, None, chunk_rows, kind="translations")
        out["translated"].add_parent("source", ego)
    return out
