"""Stage-4 data plumbing: sync pairs and the take split, pseudo-pair weights, deterministic streams."""

import numpy as np
import pandas as pd

from rosetta_cli.contrastive.data import ItemStream, paired_items, pseudo_items
from rosetta_cli.eval.split import held_out_takes, in_takes, take_of
from rosetta_cli.store import DONE, FAILED, Store


def test_take_split_is_stable_and_about_a_tenth():
    takes = [f"take{i}" for i in range(50)]
    a, b = held_out_takes(takes, 0.1), held_out_takes(list(reversed(takes)), 0.1)
    assert a == b
    assert len(a) == 5
    assert held_out_takes(takes, 0.1, seed=1) != a        # the seed is what picks them
    assert held_out_takes(["only"], 0.1) == []
    assert list(take_of(np.array(["t1/3", "t2", "t3/a/b"], dtype=object))) == ["t1", "t2", "t3"]


def test_in_takes_matches_set_membership():
    takes = take_of(np.array(["t1/3", "t2", "t10/a", "", "t1"], dtype=object))
    assert list(in_takes(takes, ["t1", ""])) == [True, False, False, True, True]
    assert list(in_takes(takes, [])) == [False] * 5
    assert in_takes(np.array([], dtype=object), ["t1"]).shape == (0,)


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
    assert held.n_val_takes == 1
    assert len(val_takes) == 1
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
    assert list(it.query_rows) == [0, 1, 2]
    assert it.dropped == 1  # row 3 failed; rank 1 not used
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


# ---------------------------------------------------------------------------- prefetching reads
def test_gather_window_returns_exactly_what_each_read_would(tmp_path):
    from rosetta_cli.contrastive.data import ArrayReader
    from rosetta_cli.store.stream import ChunkCache, RowReader, gather_window

    rng = np.random.default_rng(0)
    arr = rng.standard_normal((300, 2, 3)).astype(np.float16)
    s = Store.create(tmp_path / "f.zarr", kind="features", clips=pd.DataFrame({"clip_id": [f"c{i}" for i in range(300)]}),
                     frames=2, dim=3, chunk_rows=32)
    s.write_rows(0, features=arr, status=DONE)
    readers = {"mem": ArrayReader(arr), "rows": RowReader(s.features),
               "cache": ChunkCache(s.features, 300, 32, max_chunks=1)}
    # repeats within and across steps, random order, an empty read
    reads = [[(n, rng.integers(0, 300, 17)) for n in readers] + [("rows", np.array([5, 5, 299, 0]))] for _ in range(4)]
    reads[2].append(("mem", np.zeros(0, np.int64)))
    got = gather_window(reads, readers)
    for step_reads, step_got in zip(reads, got):
        assert len(step_got) == len(step_reads)
        for (name, rows), a in zip(step_reads, step_got):
            assert a.dtype == np.float16
            assert a.shape == (len(rows), 2, 3)
            np.testing.assert_array_equal(a, arr[rows])        # bit-exact against the array itself


def test_prefetcher_serves_each_step_its_own_item_in_any_order():
    from rosetta_cli.store.stream import Prefetcher

    calls = []

    def load(a, b):
        calls.append((a, b))
        return [("item", s) for s in range(a, b)]

    p = Prefetcher(load, window=4, stop=10)
    try:
        assert [p.get(s) for s in range(10)] == [("item", s) for s in range(10)]
        assert p.get(3) == ("item", 3)
        assert p.get(17) == ("item", 17)  # a jump back (a resume) and past stop
        p.get(18)
    finally:
        p.close()
    # windows start where asked, the last one is cut at stop, nothing is prefetched past stop
    assert calls[:3] == [(0, 4), (4, 8), (8, 10)]
    assert (3, 7) in calls
    assert (17, 21) in calls
    assert not any(a >= 10 and a != 17 for a, _ in calls)


def test_prefetcher_raises_the_threads_error_at_the_step_that_needs_it():
    import pytest

    from rosetta_cli.store.stream import Prefetcher

    def load(a, b):
        if a >= 2:
            raise OSError(f"disk gone at {a}")
        return list(range(a, b))

    p = Prefetcher(load, window=2)
    try:
        assert p.get(0) == 0
        assert p.get(1) == 1
        with pytest.raises(OSError, match="disk gone at 2"):
            p.get(2)
    finally:
        p.close()
