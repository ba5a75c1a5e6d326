"""Synthetic data sets with documented formulas (2-D classification toys, a 1-D regression curve).

``random_state``: None draws from pydl's global generator (``pydl.manual_seed`` makes it
reproducible), an int seeds a fresh ``np.random.default_rng``, a Generator is used as is.
"""
from __future__ import annotations

import numpy as np

from .._random import make_rng, rng_or_global
from .._typing import Array, DTypeLike, SeedLike
from .._validate import check_bool, check_float, check_float_dtype, check_int


def _finish(X, y, noise, shuffle, rng, dtype):
    """Add N(0, noise^2) to every coordinate of X, shuffle the samples, cast."""
    if shuffle:
        order = rng.permutation(X.shape[0])
        X, y = X[order], y[order]
    if noise > 0:
        X = X + noise * rng.standard_normal(X.shape)
    return np.ascontiguousarray(X, dtype=dtype), np.ascontiguousarray(y, dtype=np.int64)


def make_moons(n_samples: int = 100, noise: float = 0.0, random_state: SeedLike = None, shuffle: bool = True,
               dtype: DTypeLike = np.float32) -> tuple[Array, Array]:
    """Two interleaving half circles (the formula of scikit-learn's make_moons).

    With n_out = n_samples // 2 and n_in = n_samples - n_out, t spaced evenly on [0, pi]:
    class 0: (cos t, sin t) for n_out values of t; class 1: (1 - cos t, 0.5 - sin t) for n_in
    values of t. Then the samples are shuffled (if ``shuffle``) and N(0, noise^2) is added to
    each coordinate.

    Returns
    -------
    X : ndarray of shape (n_samples, 2), ``dtype``
    y : ndarray of shape (n_samples,), int64 in {0, 1}
    """
    n = check_int(n_samples, "n_samples", low=2)
    noise = check_float(noise, "noise", low=0.0)
    shuffle = check_bool(shuffle, "shuffle")
    dtype = check_float_dtype(dtype)
    rng = rng_or_global(make_rng(random_state, "random_state"))
    n_out = n // 2
    n_in = n - n_out
    t_out = np.linspace(0.0, np.pi, n_out)
    t_in = np.linspace(0.0, np.pi, n_in)
    X = np.concatenate([np.stack([np.cos(t_out), np.sin(t_out)], axis=1),
                        np.stack([1.0 - np.cos(t_in), 0.5 - np.sin(t_in)], axis=1)])
    y = np.concatenate([np.zeros(n_out, np.int64), np.ones(n_in, np.int64)])
    return _finish(X, y, noise, shuffle, rng, dtype)


def make_spirals(n_samples: int = 100, n_classes: int = 2, noise: float = 0.0, turns: float = 1.0,
                 random_state: SeedLike = None, shuffle: bool = True,
                 dtype: DTypeLike = np.float32) -> tuple[Array, Array]:
    """``n_classes`` interleaved spiral arms around the origin, one per class.

    Class k gets m_k samples (n_samples // n_classes, the first n_samples % n_classes classes one
    more); its i-th sample has t = i / (m_k - 1) (t = 0 when m_k = 1), radius r = t and angle
    phi = 2 pi k / n_classes + 2 pi turns t, at (r cos phi, r sin phi). Arm k is arm 0 rotated
    by 2 pi k / n_classes. Then samples are shuffled (if ``shuffle``) and N(0, noise^2) is added
    to each coordinate.

    Returns
    -------
    X : ndarray of shape (n_samples, 2), ``dtype``
    y : ndarray of shape (n_samples,), int64 in 0..n_classes-1
    """
    n = check_int(n_samples, "n_samples", low=1)
    k = check_int(n_classes, "n_classes", low=2)
    if n < k:
        raise ValueError(f"n_samples: expected at least n_classes={k} samples, got {n}")
    noise = check_float(noise, "noise", low=0.0)
    turns = check_float(turns, "turns", low=0.0, low_open=True)
    shuffle = check_bool(shuffle, "shuffle")
    dtype = check_float_dtype(dtype)
    rng = rng_or_global(make_rng(random_state, "random_state"))
    counts = np.full(k, n // k)
    counts[: n % k] += 1
    Xs, ys = [], []
    for c, m in enumerate(counts):
        t = np.linspace(0.0, 1.0, m) if m > 1 else np.zeros(1)
        phi = 2.0 * np.pi * c / k + 2.0 * np.pi * turns * t
        Xs.append(np.stack([t * np.cos(phi), t * np.sin(phi)], axis=1))
        ys.append(np.full(m, c, np.int64))
    return _finish(np.concatenate(Xs), np.concatenate(ys), noise, shuffle, rng, dtype)


def make_regression_1d(n_samples: int = 100, noise: float = 0.1, random_state: SeedLike = None,
                       dtype: DTypeLike = np.float32) -> tuple[Array, Array]:
    """A noisy sine on [0, 1], for bias-variance and over-fitting demos.

    x ~ U[0, 1) i.i.d., y = sin(2 pi x) + noise * e with e ~ N(0, 1). The noise-free target is
    sin(2 pi x), so the irreducible error of the MSE is noise^2.

    Returns
    -------
    X : ndarray of shape (n_samples, 1), ``dtype``
    y : ndarray of shape (n_samples, 1), ``dtype`` (a column, like the output of a model with
        one output unit, ready for ``nn.MSELoss``; use ``y.ravel()`` for a flat vector)
    """
    n = check_int(n_samples, "n_samples", low=1)
    noise = check_float(noise, "noise", low=0.0)
    dtype = check_float_dtype(dtype)
    rng = rng_or_global(make_rng(random_state, "random_state"))
    x = rng.random((n, 1))
    y = np.sin(2.0 * np.pi * x) + noise * rng.standard_normal((n, 1))
    return np.ascontiguousarray(x, dtype=dtype), np.ascontiguousarray(y, dtype=dtype)
