"""Benchmark rows (split test/val) never become training pairs for the RST or the dual encoder."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rosetta_cli.store import DONE, Store


def _paired_store(path):
    rows = []
    for take, split in (("t0", "train"), ("t1", "train"), ("t2", "train"), ("t3", "test"), ("t4", "val")):
        for seg in range(2):
            for view in ("ego", "exo", "exo"):
                rows.append({"clip_id": f"{take}/{seg}/{view}{len(rows)}", "view": view, "sync_id": f"{take}/{seg}", "split": split})
    s = Store.create(path, kind="features", clips=pd.DataFrame(rows), frames=1, dim=4)
    s.write_rows(0, features=np.random.default_rng(0).standard_normal((len(rows), 1, 4)), status=DONE)
    return s, pd.DataFrame(rows)


def test_rst_pairs_skip_eval_splits(tmp_path):
    from rosetta_cli.rst.data import build_pairs

    s, rows = _paired_store(tmp_path / "p.zarr")
    pairs, _ = build_pairs([s], val_frac=0.0, split_seed=0)
    used = set(rows["split"].to_numpy()[np.r_[pairs.ego, pairs.exo]])
    assert used == {"train"}
    assert len(pairs.ego) == 3 * 2 * 2  # 3 train takes x 2 moments x 2 exo cameras


def test_pretrain_pairs_skip_eval_splits(tmp_path):
    from rosetta_cli.contrastive.data import paired_items

    s, rows = _paired_store(tmp_path / "p.zarr")
    items = paired_items(s, val_frac=0.0)
    rows_used = np.r_[items.ego_rows, items.exo_rows, items.val_ego, items.val_exo]
    assert set(rows["split"].to_numpy()[rows_used]) == {"train"}
    assert len(items.ego_rows) == 12
