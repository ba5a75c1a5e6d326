"""Softmax and log-softmax over the last axis: numpy in, numpy out (float32, float64, ndim >= 1).

Per row (last axis), with ``m = max(x)``: ``softmax(x) = exp(x - m) / sum(exp(x - m))`` and
``log_softmax(x) = x - m - log(sum(exp(x - m)))``. Subtracting the max avoids overflow; IEEE
special values follow that formula as numpy would compute it: a row holding ``+inf`` or made of
``-inf`` only gives NaN, and NaN spreads to its whole row.
"""
import numpy as np

from .. import _C
from .._validate import as_float_array

__all__ = ["softmax", "log_softmax"]


def _apply(x, log):
    x = as_float_array(x, "x", min_ndim=1)
    out = np.empty_like(x)
    _C.softmax_forward(x, out, log)
    return out


def softmax(x):
    """Softmax over the last axis.

    Parameters
    ----------
    x : ndarray of float32 or float64, shape (..., C)

    Returns
    -------
    ndarray, same shape and dtype; each row along the last axis sums to 1.
    """
    return _apply(x, False)


def log_softmax(x):
    """Log-softmax over the last axis, ``x - logsumexp(x)``.

    Parameters
    ----------
    x : ndarray of float32 or float64, shape (..., C)
    """
    return _apply(x, True)
