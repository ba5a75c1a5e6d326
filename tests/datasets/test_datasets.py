import numpy as np
import pytest

import pydl
from pydl import datasets


def test_digits_shapes_classes_values():
    b = datasets.load_digits()
    assert b.data.shape == (1797, 64) and b.data.dtype == np.float32
    assert b.images.shape == (1797, 8, 8) and b.images.dtype == np.float32
    np.testing.assert_array_equal(b.images.reshape(1797, 64), b.data)
    assert b.target.shape == (1797,) and b.target.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(b.target),
                                  [178, 182, 177, 183, 181, 182, 181, 179, 174, 180])
    np.testing.assert_array_equal(b.target_names, np.arange(10))
    assert b.data.min() == 0 and b.data.max() == 16
    np.testing.assert_array_equal(b.data, np.round(b.data))
    assert "Alpaydin" in b.DESCR and b["data"] is b.data
    X, y = datasets.load_digits(return_X_y=True, dtype=np.float64)
    assert X.dtype == np.float64
    np.testing.assert_array_equal(X, b.data)
    np.testing.assert_array_equal(y, b.target)


def test_digits_equal_scikit_learn():
    sk = pytest.importorskip("sklearn.datasets")
    ref = sk.load_digits()
    b = datasets.load_digits(dtype=np.float64)
    np.testing.assert_array_equal(b.data, ref.data)
    np.testing.assert_array_equal(b.images, ref.images)
    np.testing.assert_array_equal(b.target, ref.target)


def test_digits_bad_args():
    with pytest.raises(TypeError, match="dtype"):
        datasets.load_digits(dtype=np.int32)
    with pytest.raises(TypeError, match="return_X_y"):
        datasets.load_digits(return_X_y="yes")


def test_moons_formula_and_scikit_learn():
    X, y = datasets.make_moons(11, shuffle=False, dtype=np.float64)
    n_out, n_in = 5, 6
    t_out, t_in = np.linspace(0, np.pi, n_out), np.linspace(0, np.pi, n_in)
    np.testing.assert_allclose(X[:n_out], np.c_[np.cos(t_out), np.sin(t_out)], atol=1e-15)
    np.testing.assert_allclose(X[n_out:], np.c_[1 - np.cos(t_in), 0.5 - np.sin(t_in)], atol=1e-15)
    np.testing.assert_array_equal(y, [0] * n_out + [1] * n_in)
    sk = pytest.importorskip("sklearn.datasets")
    Xs, ys = sk.make_moons(11, shuffle=False, noise=0.0)
    np.testing.assert_allclose(X, Xs, atol=1e-15)
    np.testing.assert_array_equal(y, ys)


def test_moons_noise_and_seed():
    X1, y1 = datasets.make_moons(400, noise=0.1, random_state=0)
    X2, y2 = datasets.make_moons(400, noise=0.1, random_state=0)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert X1.shape == (400, 2) and X1.dtype == np.float32 and y1.sum() == 200
    # distance of class-0 points to the unit circle is about |N(0, 0.1^2)| noise
    r = np.hypot(X1[y1 == 0, 0], X1[y1 == 0, 1]) - 1
    assert 0.05 < r.std() < 0.2
    pydl.manual_seed(5)
    a = datasets.make_moons(50, noise=0.1)[0]
    pydl.manual_seed(5)
    np.testing.assert_array_equal(a, datasets.make_moons(50, noise=0.1)[0])


def test_spirals():
    X, y = datasets.make_spirals(301, n_classes=3, shuffle=False, dtype=np.float64)
    assert X.shape == (301, 2) and np.bincount(y).tolist() == [101, 100, 100]
    r = np.hypot(X[:, 0], X[:, 1])
    assert r.max() == pytest.approx(1.0)
    # arm k is arm 0 rotated by 2 pi k / 3 (same number of samples in arms 1 and 2)
    a1, a2 = X[y == 1], X[y == 2]
    c, s = np.cos(2 * np.pi / 3), np.sin(2 * np.pi / 3)
    np.testing.assert_allclose(a2, a1 @ np.array([[c, s], [-s, c]]), atol=1e-12)
    Xn, yn = datasets.make_spirals(100, noise=0.05, random_state=1)
    assert Xn.dtype == np.float32 and set(yn.tolist()) == {0, 1}
    with pytest.raises(ValueError, match="n_classes"):
        datasets.make_spirals(10, n_classes=1)


def test_regression_1d():
    X, y = datasets.make_regression_1d(2000, noise=0.0, random_state=0, dtype=np.float64)
    assert X.shape == (2000, 1) and y.shape == (2000, 1)
    np.testing.assert_allclose(y, np.sin(2 * np.pi * X), atol=1e-15)
    assert 0 <= X.min() and X.max() < 1
    X, y = datasets.make_regression_1d(20000, noise=0.3, random_state=0, dtype=np.float64)
    assert np.std(y - np.sin(2 * np.pi * X)) == pytest.approx(0.3, rel=0.05)


@pytest.mark.parametrize("fn", [datasets.make_moons, datasets.make_spirals, datasets.make_regression_1d])
def test_generators_bad_args(fn):
    with pytest.raises(ValueError, match="noise"):
        fn(10, noise=-1.0)
    with pytest.raises(ValueError, match="noise"):
        fn(10, noise=float("nan"))
    with pytest.raises(TypeError, match="n_samples"):
        fn(10.0)
    with pytest.raises(ValueError, match="n_samples"):
        fn(0)
    with pytest.raises(ValueError, match="random_state"):
        fn(10, random_state=-3)
