"""MNIST-1D (Greydanus 2020, "Scaling down deep learning"), built locally by the ``mnist1d`` package.

Each sample is one of ten 1-D digit templates (12 points), padded, scaled, translated, sheared,
with correlated and i.i.d. noise added, and resampled to 40 points; the whole set is then
standardised. The defaults are the paper's: 5000 samples, 4000 for training and 1000 for test,
seed 42. Nothing is downloaded: the ``mnist1d`` package's own generator builds the data
(about 4 s), and this module keeps the result for the rest of the process.
"""
from __future__ import annotations

import functools
import random
from typing import Literal, overload

import numpy as np

from .._typing import Array, DTypeLike
from .._validate import check_float_dtype
from ._digits import Bunch

DESCR = """MNIST-1D (Greydanus 2020): 1-D signals of 40 points, 10 classes, built by the mnist1d
package's generator with the paper's settings (4000 training and 1000 test samples, seed 42)."""


def _mnist1d_package():
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as e:
        raise ImportError("load_mnist1d needs the optional 'mnist1d' package: pip install 'pydl[mnist1d]' "
                          f"(or pip install mnist1d); importing it failed: {e}") from e
    return get_dataset_args, make_dataset


@functools.lru_cache(maxsize=4)
def _build(num_samples, seed):
    get_dataset_args, make_dataset = _mnist1d_package()
    args = get_dataset_args()
    args.num_samples, args.seed = num_samples, seed
    # the generator seeds numpy's and Python's global RNGs: leave the caller's streams as they were
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        d = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    return (np.asarray(d["x"], np.float64), np.asarray(d["y"], np.int64),
            np.asarray(d["x_test"], np.float64), np.asarray(d["y_test"], np.int64), np.asarray(d["t"], np.float64))


@overload
def load_mnist1d(return_X_y: Literal[False] = ..., dtype: DTypeLike = ..., as_images: bool = ...,
                 num_samples: int = ..., seed: int = ...) -> Bunch: ...
@overload
def load_mnist1d(return_X_y: Literal[True], dtype: DTypeLike = ..., as_images: bool = ..., num_samples: int = ...,
                 seed: int = ...) -> tuple[Array, Array, Array, Array]: ...
def load_mnist1d(return_X_y: bool = False, dtype: DTypeLike = np.float32, as_images: bool = False,
                 num_samples: int = 5000, seed: int = 42) -> Bunch | tuple[Array, Array, Array, Array]:
    """Load MNIST-1D, built locally by the ``mnist1d`` package (an optional extra).

    Parameters
    ----------
    return_X_y : bool, default False
        Return ``(x_train, y_train, x_test, y_test)`` instead of a Bunch.
    dtype : float32 or float64, default float32
    as_images : bool, default False
        Signals with one channel, shape (N, 1, 40) (NCL, for Conv1d), instead of (N, 40).
    num_samples : int, default 5000
        Total samples; 80 % go to the training split (the paper: 4000 / 1000).
    seed : int, default 42
        The generator's seed (the paper's data set is seed 42).

    Returns
    -------
    Bunch with x_train (N_train, 40), y_train (N_train,) int64, x_test, y_test, t (40,) the
    sample positions, DESCR; or the tuple with ``return_X_y``.

    Raises
    ------
    ImportError
        The ``mnist1d`` package is not installed (``pip install 'pydl[mnist1d]'``).
    """
    for name, flag in (("return_X_y", return_X_y), ("as_images", as_images)):
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(f"{name}: expected a bool, got {type(flag).__name__}")
    dt = check_float_dtype(dtype)
    for name, v, lo in (("num_samples", num_samples, 10), ("seed", seed, 0)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"{name}: expected an int, got {type(v).__name__}")
        if v < lo:
            raise ValueError(f"{name}: expected an int >= {lo}, got {v}")
    x, y, xt, yt, t = _build(int(num_samples), int(seed))
    shape = (1, x.shape[1]) if as_images else (x.shape[1],)
    x = np.ascontiguousarray(x.reshape((-1,) + shape), dtype=dt)
    xt = np.ascontiguousarray(xt.reshape((-1,) + shape), dtype=dt)
    y, yt = y.copy(), yt.copy()
    if return_X_y:
        return x, y, xt, yt
    return Bunch(x_train=x, y_train=y, x_test=xt, y_test=yt, t=t.astype(dt), DESCR=DESCR)
