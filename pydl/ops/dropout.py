"""Inverted dropout: keep each element with probability 1 - p and scale it by 1 / (1 - p).

The keep mask is drawn by a counter-based generator (splitmix64 of seed and element index), so
the same (seed, p) gives the same mask for any thread count. Backward: dx = dy * mask / (1 - p).
"""
from __future__ import annotations

import numpy as np

from .. import _C
from .._typing import Array

__all__ = ["dropout", "dropout_backward"]


def dropout(x: Array, p: float, seed: int) -> tuple[Array, Array]:
    """Returns (y, mask): y = x * mask / (1 - p), mask a uint8 array of x's shape (1 = kept).

    Parameters
    ----------
    x : ndarray, float32 or float64, any shape
    p : float in [0, 1]
    seed : int in [0, 2**64)
    """
    x = np.ascontiguousarray(x)
    y = np.empty_like(x)
    mask = np.empty(x.shape, np.uint8)
    _C.dropout_forward(x, y, mask, p, seed)
    return y, mask


def dropout_backward(grad_out: Array, mask: Array, p: float) -> Array:
    """dx = grad_out * mask / (1 - p), of grad_out's shape and dtype."""
    g = np.ascontiguousarray(grad_out)
    gx = np.empty_like(g)
    _C.dropout_backward(g, mask, gx, p)
    return gx
