"""Seeded synthetic ego/exo stores with known structure, for tests and benchmarks/bench.py.

Clip features: x = signal * c_label + shift_view + skill_dir * (+-1) + noise, per frame,
so labels are recoverable across views but a view shift separates ego from exo.
Rows: n_ego ego test clips; exo_per_ego exo test clips per ego (sharing its sync_id);
n_exo_train exo train clips.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from rosetta_cli.store import DONE, Store


def make_clips(n: int, view: str, split: str, labels: np.ndarray, skills: np.ndarray, sync: list[str]) -> pd.DataFrame:
    return pd.DataFrame({
        "clip_id": [f"{view}-{split}-{i}" for i in range(n)], "video": [""] * n,
        "start": np.zeros(n), "end": np.ones(n), "view": [view] * n, "sync_id": sync,
        "narration": [""] * n, "label": [f"step {y:03d}" for y in labels],
        "skill": np.where(skills > 0, "good", "bad"), "split": [split] * n,
    })


def make_stores(out_dir, *, n_ego: int = 200, exo_per_ego: int = 2, n_exo_train: int = 400, n_classes: int = 20,
                dim: int = 64, frames: int = 4, signal: float = 0.5, shift: float = 1.0, noise: float = 1.5,
                seed: int = 0, dtype: str = "float16", block: int = 4096) -> tuple[Path, Path]:
    """Write out_dir/ego.zarr and out_dir/exo.zarr (`block` rows per write); returns their paths."""
    rng = np.random.default_rng(seed)
    cent = rng.normal(size=(n_classes, dim)).astype(np.float32)
    shifts = {v: shift * rng.normal(size=dim).astype(np.float32) for v in ("ego", "exo")}
    skill_dir = rng.normal(size=dim).astype(np.float32)
    y_ego = rng.integers(0, n_classes, n_ego)
    k_ego = rng.integers(0, 2, n_ego)
    sync = [f"m{i}" for i in range(n_ego)]
    parts = {"ego": [(make_clips(n_ego, "ego", "test", y_ego, k_ego, sync), y_ego, k_ego)]}
    y_x, k_x = np.repeat(y_ego, exo_per_ego), np.repeat(k_ego, exo_per_ego)
    y_tr, k_tr = rng.integers(0, n_classes, n_exo_train), rng.integers(0, 2, n_exo_train)
    parts["exo"] = [(make_clips(len(y_x), "exo", "test", y_x, k_x, list(np.repeat(sync, exo_per_ego))), y_x, k_x),
                    (make_clips(n_exo_train, "exo", "train", y_tr, k_tr, [""] * n_exo_train), y_tr, k_tr)]
    paths = []
    for view, items in parts.items():
        clips = pd.concat([c for c, _, _ in items], ignore_index=True)
        y, k = np.concatenate([i[1] for i in items]), np.concatenate([i[2] for i in items])
        path = Path(out_dir) / f"{view}.zarr"
        s = Store.create(path, kind="features", clips=clips, frames=frames, dim=dim, dtype=dtype, overwrite=True)
        # Block by block, so memory stays flat at the paper's benchmark size (27k x 4 x 1280); the
        # generator draws in sequence, so the rows are the same as from one whole-array draw.
        for a in range(0, len(y), block):
            b = min(a + block, len(y))
            base = signal * cent[y[a:b]] + shifts[view] + 0.1 * skill_dir * (2 * k[a:b, None] - 1)
            feats = base[:, None, :] + noise * rng.normal(size=(b - a, frames, dim)).astype(np.float32)
            s.write_rows(a, features=feats, status=DONE)
        s.finalize()
        paths.append(path)
    return paths[0], paths[1]
