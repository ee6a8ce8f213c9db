"""Stage-4 data plumbing: sync pairs and the take split, pseudo-pair weights, deterministic streams."""

import numpy as np
import pandas as pd

from rosetta_cli.contrastive.data import ItemStream, paired_items, pseudo_items
from rosetta_cli.eval.split import held_out_takes, take_of
from rosetta_cli.store import DONE, FAILED, Store


def test_take_split_is_stable_and_about_a_tenth():
    takes = [f"take{i}" for i in range(50)]
    a, b = held_out_takes(takes, 0.1), held_out_takes(list(reversed(takes)), 0.1)
    assert a == b
    assert len(a) == 5
    assert held_out_takes(takes, 0.1, seed=1) != a        # the seed is what picks them
    assert held_out_takes(["only"], 0.1) == []
    assert list(take_of(np.array(["t1/3", "t2", "t3/a/b"], dtype=object))) == ["t1", "t2", "t3"]


def test_paired_items_match_sync_ids_among_done_rows(tmp_path):
    sync = ["a/0", "a/0", "a/0", "b/1", "b/1", "", "c/2", "c/2"]
    view = ["ego", "exo", "exo", "ego", "exo", "ego", "ego", "exo"]
    df = pd.DataFrame({"clip_id": [f"c{i}" for i in range(8)], "view": view, "sync_id": sync})
    s = Store.create(tmp_path / "p.zarr", kind="features", clips=df, frames=1, dim=2)
    status = np.full(8, DONE, np.uint8)
    status[4] = FAILED                                      # b/1 loses its exo row
    s.write_rows(0, features=np.zeros((8, 1, 2)), status=status)
    items = paired_items(s, val_frac=0.0)
    assert sorted(zip(items.ego_rows, items.exo_rows)) == [(0, 1), (0, 2), (6, 7)]   # two exo cameras for a/0
    held = paired_items(s, val_frac=0.34)                  # 1 of 3 takes held out, never trained on
    val_takes = set(take_of(s.column("sync_id")[held.val_ego]))
    assert held.n_val_takes == 1 and len(val_takes) == 1
    assert not val_takes & set(take_of(s.column("sync_id")[held.ego_rows]))


def test_pseudo_weights_are_clipped_and_no_soft_means_one(tmp_path):
    ego = Store.create(tmp_path / "e.zarr", kind="features", clips=pd.DataFrame({"clip_id": list("abcd")}), frames=1, dim=2)
    ego.write_rows(0, features=np.zeros((4, 1, 2)), status=np.array([DONE, DONE, DONE, FAILED], np.uint8))
    exo = Store.create(tmp_path / "x.zarr", kind="features", clips=pd.DataFrame({"clip_id": list("wxyz")}), frames=1, dim=2)
    exo.write_rows(0, features=np.zeros((4, 1, 2)), status=np.full(4, DONE, np.uint8))
    table = pd.DataFrame({"query_row": [0, 1, 2, 3, 0], "query_clip_id": list("abcda"), "candidate_row": [1, 2, 3, 0, 2],
                          "candidate_clip_id": list("xyzwy"), "rank": [0, 0, 0, 0, 1], "score": 1.0,
                          "weight": [0.8, -0.3, np.nan, 0.5, 0.9]})
    pairs = Store.create_pairs(tmp_path / "pairs.zarr", table)
    it = pseudo_items(pairs, ego, exo, max_rank=1, soft=True)
    assert list(it.query_rows) == [0, 1, 2] and it.dropped == 1       # row 3 failed; rank 1 not used
    np.testing.assert_allclose(it.weight, [0.8, 0.0, 1.0])
    assert list(pseudo_items(pairs, ego, exo, max_rank=2, soft=False).weight) == [1.0] * 4


def test_item_stream_is_a_pure_function_of_step():
    keys = np.arange(100)
    a, b = ItemStream(keys, 16, 8, seed=3, stream_id=0), ItemStream(keys, 16, 8, seed=3, stream_id=0)
    seq = [a.global_batch(s) for s in range(30)]                       # crosses pass boundaries (12 steps/pass)
    assert all(np.array_equal(b.global_batch(s), seq[s]) for s in reversed(range(30)))
    first_pass = np.concatenate(seq[:12])
    assert len(np.unique(first_pass)) == 96                             # no repeats within a pass
    assert not np.array_equal(seq[0], seq[12])                          # a new shuffle each pass
