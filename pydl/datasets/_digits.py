"""The UCI optical handwritten digits, bundled as pydl/datasets/data/digits.csv.gz (see data/README.md)."""
from __future__ import annotations

import os
from typing import Literal, overload

import numpy as np

from .._typing import Array, DTypeLike
from .._validate import check_float_dtype

_DATA = os.path.join(os.path.dirname(__file__), "data", "digits.csv.gz")

DESCR = """Optical recognition of handwritten digits (UCI ML Repository, Alpaydin & Kaynak, 1998)

1797 samples, 10 classes (digits 0..9, about 180 each), 64 features: an 8x8 image of integer
pixel counts in 0..16. 32x32 binary bitmaps written by 13 people (the UCI test part) were
divided into non-overlapping 4x4 blocks and the "on" pixels of each block counted.
Licence: CC BY 4.0. Source and attribution: pydl/datasets/data/README.md.
"""


class Bunch(dict):
    """A dict whose keys are also attributes (``b.data is b["data"]``), as scikit-learn's Bunch."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key, value):
        self[key] = value

    def __dir__(self):
        return list(self.keys())


@overload
def load_digits(return_X_y: Literal[False] = ..., dtype: DTypeLike = ..., as_images: bool = ...) -> Bunch: ...
@overload
def load_digits(return_X_y: Literal[True], dtype: DTypeLike = ..., as_images: bool = ...) -> tuple[Array, Array]: ...
def load_digits(return_X_y: bool = False, dtype: DTypeLike = np.float32,
                as_images: bool = False) -> Bunch | tuple[Array, Array]:
    """Load the UCI optical handwritten digits (1797 images of 8x8 pixels, 10 classes).

    Parameters
    ----------
    return_X_y : bool, default False
        Return ``(data, target)`` instead of a Bunch.
    dtype : float32 or float64, default float32
        dtype of ``data`` and ``images``. float32 is pydl's fast path; the values are the
        integers 0..16 and are exact in either dtype (they are not rescaled: divide by 16 for
        inputs in [0, 1]).
    as_images : bool, default False
        ``data`` as images with one channel, shape (1797, 1, 8, 8) (NCHW, for convolutional
        networks), instead of flat rows.

    Returns
    -------
    Bunch with
        data : ndarray of shape (1797, 64), or (1797, 1, 8, 8) with ``as_images``, ``dtype``
        images : ndarray of shape (1797, 8, 8), ``dtype`` (``data`` reshaped, row-major)
        target : ndarray of shape (1797,), int64, the digit 0..9
        target_names : ndarray of shape (10,), int64, ``arange(10)``
        DESCR : str
    or ``(data, target)`` when ``return_X_y``.
    """
    for name, flag in (("return_X_y", return_X_y), ("as_images", as_images)):
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(f"{name}: expected a bool, got {type(flag).__name__}")
    dt = check_float_dtype(dtype)
    table = np.loadtxt(_DATA, delimiter=",", dtype=np.int64)
    if table.shape != (1797, 65):
        raise RuntimeError(f"{_DATA}: expected a (1797, 65) table, got {table.shape}: damaged install?")
    data = np.ascontiguousarray(table[:, :64], dtype=dt)
    target = np.ascontiguousarray(table[:, 64])
    images = data.reshape(-1, 8, 8)
    if as_images:
        data = data.reshape(-1, 1, 8, 8)
    if return_X_y:
        return data, target
    return Bunch(data=data, images=images, target=target,
                 target_names=np.arange(10, dtype=np.int64), DESCR=DESCR)
