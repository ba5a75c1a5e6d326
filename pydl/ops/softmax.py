"""Softmax and log-softmax over the last axis: numpy in, numpy out (float32, float64, ndim >= 1).

Per row (last axis), with ``m = max(x)``: ``softmax(x) = exp(x - m) / sum(exp(x - m))`` and
``log_softmax(x) = x - m - log(sum(exp(x - m)))``. Subtracting the max avoids overflow; IEEE
special values follow that formula as numpy would compute it: a row holding ``+inf`` or made of
``-inf`` only gives NaN, and NaN spreads to its whole row.
"""
from __future__ import annotations

import numpy as np

from .. import _C
from .._typing import Array
from .._validate import as_float_array, check_array

__all__ = ["softmax", "log_softmax", "softmax_backward", "softmax_cross_entropy"]


def _apply(x: Array, log: bool) -> Array:
    x = as_float_array(x, "x", min_ndim=1)
    out = np.empty_like(x)
    _C.softmax_forward(x, out, log)
    return out


def softmax(x: Array) -> Array:
    """Softmax over the last axis.

    Parameters
    ----------
    x : ndarray of float32 or float64, shape (..., C)

    Returns
    -------
    ndarray, same shape and dtype; each row along the last axis sums to 1.
    """
    return _apply(x, False)


def log_softmax(x: Array) -> Array:
    """Log-softmax over the last axis, ``x - logsumexp(x)``.

    Parameters
    ----------
    x : ndarray of float32 or float64, shape (..., C)
    """
    return _apply(x, True)


def softmax_backward(grad_out: Array, out: Array) -> Array:
    """dL/dx of y = softmax(x) over the last axis: ``y * (dy - sum(dy * y))`` per row.

    Parameters
    ----------
    grad_out, out : ndarray of the same shape (..., C) and dtype; ``out`` is the forward's y.
    """
    check_array(grad_out, "grad_out")
    check_array(out, "out")
    if out.ndim == 0:
        raise ValueError("out: expected an array of shape (..., C), got a 0-d array")
    y2 = out.reshape(-1, out.shape[-1])
    g = np.ascontiguousarray(grad_out.reshape(y2.shape))
    gx = np.empty_like(y2)
    _C.softmax_backward(g, np.ascontiguousarray(y2), gx)
    return gx.reshape(out.shape)


def softmax_cross_entropy(logits: Array, target: Array, weight: Array | None = None, label_smoothing: float = 0.0,
                          reduction: str = "mean") -> tuple[float, Array]:
    """Fused softmax + cross-entropy: the loss and dloss/dlogits in one pass over (N, C).

    With p = softmax(logits) per row and eps = label_smoothing, the per-row loss is
    ``(1 - eps) * w[t] * (-log p[t]) + (eps / C) * sum_c w[c] * (-log p[c])`` for class indices
    ``t``, or ``-sum_c w[c] q[c] log p[c]`` for probabilities ``q`` (smoothed as PyTorch).
    "mean" divides by the sum of the target weights (PyTorch), "sum" does not.

    Parameters
    ----------
    logits : ndarray of shape (N, C), float32 or float64, C-contiguous
    target : ndarray of shape (N,) int64 class indices in [0, C), or (N, C) probabilities of logits' dtype
    weight : ndarray of shape (C,) of logits' dtype, or None
    label_smoothing : float in [0, 1]
    reduction : {"mean", "sum"}

    Returns
    -------
    (loss, grad): a Python float and dloss/dlogits, shape (N, C).
    """
    # (np.empty: cheaper than empty_like; anything but an ndarray is refused by the binding)
    g = np.empty(logits.shape, logits.dtype) if type(logits) is np.ndarray else None
    loss = _C.cross_entropy(logits, target, g, weight, label_smoothing, reduction)
    return loss, g  # type: ignore[return-value]  # (g is an array once the binding accepted logits)
