"""DataLoader(shard=(rank, world_size)): each rank's slice of every global batch."""
import numpy as np
import pytest

from pydl.data import DataLoader


@pytest.mark.parametrize("n,batch,k,shuffle,drop_last", [(23, 8, 3, True, False), (23, 8, 3, False, True),
                                                          (10, 4, 4, True, False), (7, None, 2, False, False)])
def test_shards_partition_every_global_batch(n, batch, k, shuffle, drop_last):
    x = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
    y = np.arange(n)
    whole = list(DataLoader(x, y, batch_size=batch, shuffle=shuffle, drop_last=drop_last, seed=5))
    ranks = [list(DataLoader(x, y, batch_size=batch, shuffle=shuffle, drop_last=drop_last, seed=5,
                             shard=(r, k))) for r in range(k)]
    lengths = {len(DataLoader(x, y, batch_size=batch, drop_last=drop_last, shard=(r, k))) for r in range(k)}
    assert lengths == {len(ranks[0])}
    seen = []
    for b, parts in enumerate(zip(*ranks)):
        ys = [p[1] for p in parts]
        sizes = [len(v) for v in ys]
        assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1
        glued = np.concatenate(ys)
        if b < len(whole) and len(glued) == len(whole[b][1]):
            np.testing.assert_array_equal(glued, whole[b][1])        # the same global batch, in order
        for xb, yb in parts:
            np.testing.assert_array_equal(xb[:, 0], 2 * yb)
        seen.append(glued)
    seen = np.concatenate(seen)
    assert len(seen) == len(set(seen.tolist()))
    expected = n - (n % batch if drop_last and batch else 0)
    assert len(seen) == expected


def test_small_last_batch_joins_the_one_before():
    x = np.arange(9.0)[:, None]
    parts = [list(DataLoader(x, batch_size=4, shard=(r, 2))) for r in range(2)]
    assert [[len(b) for b in p] for p in parts] == [[2, 2], [2, 3]]     # 4 + 5 (the 1-sample tail joined)
    assert len(DataLoader(x, batch_size=4, shard=(0, 2))) == 2


@pytest.mark.parametrize("shard,err", [((2, 2), ValueError), ((0, 0), ValueError), ((-1, 2), ValueError),
                                       ((0,), TypeError), ("0,2", TypeError), ((0.0, 2), TypeError),
                                       ((True, 2), TypeError)])
def test_bad_shard(shard, err):
    with pytest.raises(err, match="shard"):
        DataLoader(np.zeros((4, 1)), shard=shard)
