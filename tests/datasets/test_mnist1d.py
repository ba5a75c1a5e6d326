"""pydl.datasets.load_mnist1d and load_digits(as_images=True)."""
import random
import sys

import numpy as np
import pytest

from pydl import datasets


def test_digits_as_images_is_nchw_view_of_rows():
    flat = datasets.load_digits()
    img = datasets.load_digits(as_images=True)
    assert img.data.shape == (1797, 1, 8, 8) and img.data.dtype == np.float32
    np.testing.assert_array_equal(img.data.reshape(1797, 64), flat.data)
    np.testing.assert_array_equal(img.data[:, 0], flat.images)
    x, y = datasets.load_digits(return_X_y=True, as_images=True, dtype=np.float64)
    assert x.shape == (1797, 1, 8, 8) and x.dtype == np.float64 and y.shape == (1797,)
    with pytest.raises(TypeError, match="as_images"):
        datasets.load_digits(as_images="yes")


def test_mnist1d_paper_split_standardised_and_balanced():
    pytest.importorskip("mnist1d")
    d = datasets.load_mnist1d()
    assert d.x_train.shape == (4000, 40) and d.x_test.shape == (1000, 40)
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int64
    x_all = np.concatenate([d.x_train, d.x_test]).astype(np.float64)
    assert abs(x_all.mean()) < 1e-6 and abs(x_all.std() - 1.0) < 1e-6  # the generator standardises the whole set
    y_all = np.concatenate([d.y_train, d.y_test])
    np.testing.assert_array_equal(np.bincount(y_all, minlength=10), np.full(10, 500))
    assert d.t.shape == (40,)


def test_mnist1d_matches_the_package_generator_and_keeps_global_rng():
    mnist1d_data = pytest.importorskip("mnist1d.data")
    np.random.seed(123)
    random.seed(7)
    before_np, before_py = np.random.random(), random.random()
    np.random.seed(123)
    random.seed(7)
    x, y, xt, yt = datasets.load_mnist1d(return_X_y=True, as_images=True, dtype=np.float64, num_samples=200, seed=3)
    assert np.random.random() == before_np and random.random() == before_py  # caller's streams untouched
    args = mnist1d_data.get_dataset_args()
    args.num_samples, args.seed = 200, 3
    ref = mnist1d_data.make_dataset(args)
    assert x.shape == (160, 1, 40) and xt.shape == (40, 1, 40)
    np.testing.assert_array_equal(x[:, 0], ref["x"])
    np.testing.assert_array_equal(xt[:, 0], ref["x_test"])
    np.testing.assert_array_equal(y, ref["y"])
    np.testing.assert_array_equal(yt, ref["y_test"])


def test_mnist1d_bad_args():
    with pytest.raises(TypeError, match="num_samples"):
        datasets.load_mnist1d(num_samples=1.5)
    with pytest.raises(ValueError, match="num_samples"):
        datasets.load_mnist1d(num_samples=0)
    with pytest.raises(TypeError, match="dtype"):
        datasets.load_mnist1d(dtype=np.int32)


def test_mnist1d_missing_extra_names_it(monkeypatch):
    from pydl.datasets import _mnist1d

    _mnist1d._build.cache_clear()
    monkeypatch.setitem(sys.modules, "mnist1d", None)
    monkeypatch.setitem(sys.modules, "mnist1d.data", None)
    with pytest.raises(ImportError, match=r"pydl\[mnist1d\]"):
        datasets.load_mnist1d(num_samples=100, seed=1)
