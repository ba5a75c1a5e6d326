import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import pydl
from pydl.data import DataLoader


def _epoch_indices(loader):
    out = []
    for xb, yb in loader:
        np.testing.assert_array_equal(xb[:, 0], yb)  # x and y stay paired
        out.append(yb)
    return out


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 50), b=st.integers(1, 60), shuffle=st.booleans(), drop_last=st.booleans())
def test_every_sample_once_per_epoch(n, b, shuffle, drop_last):
    x = np.stack([np.arange(n), -np.arange(n)], axis=1)
    loader = DataLoader(x, np.arange(n), batch_size=b, shuffle=shuffle, drop_last=drop_last, seed=1)
    batches = _epoch_indices(loader)
    assert len(batches) == len(loader)
    expected_len = n // b if drop_last else -(-n // b)
    assert len(loader) == expected_len
    assert all(len(bt) == b for bt in batches[: n // b])
    seen = np.concatenate(batches) if batches else np.array([], int)
    assert len(np.unique(seen)) == len(seen)  # no sample twice
    if drop_last:
        assert len(seen) == (n // b) * b
    else:
        np.testing.assert_array_equal(np.sort(seen), np.arange(n))
    if not shuffle:
        np.testing.assert_array_equal(seen, np.arange(len(seen)))


def test_batch_size_none_is_one_full_batch():
    x = np.random.default_rng(0).standard_normal((7, 3))
    loader = DataLoader(x, batch_size=None)
    assert len(loader) == 1
    (xb,) = list(loader)
    np.testing.assert_array_equal(xb, x)


def test_x_only_yields_arrays():
    loader = DataLoader(np.arange(5), batch_size=2)
    assert [b.tolist() for b in loader] == [[0, 1], [2, 3], [4]]


def test_new_permutation_each_epoch_and_seed_reproducible():
    n = 100
    a = DataLoader(np.arange(n), np.arange(n), batch_size=n, shuffle=True, seed=3)
    b = DataLoader(np.arange(n), np.arange(n), batch_size=n, shuffle=True, seed=3)
    e1, e2 = next(iter(a))[1], next(iter(a))[1]
    assert not np.array_equal(e1, e2)
    np.testing.assert_array_equal(e1, next(iter(b))[1])
    np.testing.assert_array_equal(e2, next(iter(b))[1])
    np.testing.assert_array_equal(e1, np.random.default_rng(3).permutation(n))


def test_global_seed_reproducible():
    x = np.arange(50)
    pydl.manual_seed(11)
    first = np.concatenate(list(DataLoader(x, batch_size=8, shuffle=True)))
    pydl.manual_seed(11)
    again = np.concatenate(list(DataLoader(x, batch_size=8, shuffle=True)))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, x)


def test_transform_called_with_x_and_y():
    calls = []

    def t(x, y=None):
        calls.append(y is None)
        return (x * 2, y + 1) if y is not None else x * 2

    out = list(DataLoader(np.arange(4.0), np.arange(4), batch_size=2, transform=t))
    np.testing.assert_array_equal(out[1][0], [4.0, 6.0])
    np.testing.assert_array_equal(out[1][1], [3, 4])
    out = list(DataLoader(np.arange(4.0), batch_size=2, transform=t))
    np.testing.assert_array_equal(out[0], [0.0, 2.0])
    assert calls == [False, False, True, True]


def test_bad_inputs():
    with pytest.raises(ValueError, match="10 samples.*9 samples"):
        DataLoader(np.zeros((10, 2)), np.zeros(9))
    with pytest.raises(ValueError, match="empty"):
        DataLoader(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(np.zeros(3), batch_size=0)
    with pytest.raises(TypeError, match="batch_size"):
        DataLoader(np.zeros(3), batch_size=2.0)
    with pytest.raises(TypeError, match="transform"):
        DataLoader(np.zeros(3), transform=3)
    with pytest.raises(TypeError, match="shuffle"):
        DataLoader(np.zeros(3), shuffle="yes")
    with pytest.raises(ValueError, match="seed"):
        DataLoader(np.zeros(3), seed=-1)
