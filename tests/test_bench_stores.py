"""synthetic.bench_stores writes block by block; the rows must not depend on the block size."""

import numpy as np

from rosetta_cli.store import Store
from rosetta_cli.synthetic.bench_stores import make_stores


def _features(paths) -> list[np.ndarray]:
    out = []
    for p in paths:
        s = Store.open(p)
        out.append(s.features(slice(0, s.n_rows)).copy())
        s.close()
    return out


def test_blocks_give_the_same_rows_as_one_write(tmp_path):
    kw = dict(n_ego=9, n_exo_train=11, n_classes=3, dim=8, frames=2, seed=3)
    whole = _features(make_stores(tmp_path / "whole", block=10**6, **kw))
    blocks = _features(make_stores(tmp_path / "blocks", block=4, **kw))
    for w, b in zip(whole, blocks):
        np.testing.assert_array_equal(w, b)


def test_block_size_does_not_change_the_row_count(tmp_path):
    ego, exo = make_stores(tmp_path, n_ego=9, exo_per_ego=2, n_exo_train=11, n_classes=3, dim=8, block=4)
    assert [Store.open(ego).n_rows, Store.open(exo).n_rows] == [9, 9 * 2 + 11]
