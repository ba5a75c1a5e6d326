"""Batch normalization over (N, C): per channel c, with the batch's biased variance,

    xhat = (x - mean_c) * invstd_c,  invstd_c = 1 / sqrt(var_c + eps),  y = weight_c xhat + bias_c

Training updates the running statistics in place (PyTorch): running = (1 - momentum) running +
momentum batch, with the *unbiased* batch variance for running_var. Backward with batch
statistics:

    dbias_c = sum_n dy,  dweight_c = sum_n dy xhat,
    dx = weight_c invstd_c (dy - mean_n(dy) - xhat mean_n(dy xhat))

and with fixed (running) statistics dx = weight_c invstd_c dy.
"""
from __future__ import annotations

import numpy as np

from .. import _C
from .._typing import Array

__all__ = ["batch_norm_train", "batch_norm_eval", "batch_norm_backward"]


def batch_norm_train(x: Array, weight: Array | None, bias: Array | None, eps: float, running_mean: Array | None = None,
                     running_var: Array | None = None, momentum: float = 0.0) -> tuple[Array, Array, Array]:
    """Normalize ``x`` (N, C) with its own batch statistics.

    Parameters
    ----------
    x : ndarray of shape (N, C), float32 or float64
    weight, bias : ndarray of shape (C,) or None (both or neither)
    eps : float
    running_mean, running_var : ndarray of shape (C,) or None
        Updated in place with ``momentum`` when given.
    momentum : float

    Returns
    -------
    (y, mean, invstd): y (N, C); the batch mean and 1/sqrt(var + eps), each (C,), for backward.
    """
    x = np.ascontiguousarray(x)
    y = np.empty_like(x)
    mean = np.empty(x.shape[1:2], x.dtype)
    invstd = np.empty(x.shape[1:2], x.dtype)
    _C.batchnorm_forward_train(x, weight, bias, y, mean, invstd, running_mean, running_var, eps, momentum)
    return y, mean, invstd


def batch_norm_eval(x: Array, weight: Array | None, bias: Array | None, running_mean: Array, running_var: Array,
                    eps: float) -> Array:
    """Normalize ``x`` (N, C) with the running statistics; returns y (N, C)."""
    x = np.ascontiguousarray(x)
    y = np.empty_like(x)
    _C.batchnorm_forward_eval(x, weight, bias, running_mean, running_var, y, eps)
    return y


def batch_norm_backward(grad_out: Array, x: Array, mean: Array, invstd: Array, weight: Array | None, batch_stats: bool,
                        grad_weight: Array | None = None, grad_bias: Array | None = None
                        ) -> tuple[Array, Array | None, Array | None]:
    """Gradients of batch normalization.

    Parameters
    ----------
    grad_out, x : ndarray of shape (N, C)
    mean, invstd : ndarray of shape (C,), as the forward used them
    weight : ndarray of shape (C,) or None (no affine parameters: no weight/bias gradients)
    batch_stats : bool
        The forward normalized with batch statistics (training) rather than running ones.
    grad_weight, grad_bias : ndarray of shape (C,) or None
        When both are given the gradients are added into them in place; otherwise new arrays.

    Returns
    -------
    (grad_input, grad_weight or None, grad_bias or None)
    """
    g = np.ascontiguousarray(grad_out)
    x = np.ascontiguousarray(x)
    gx = np.empty_like(x)
    if weight is None:
        _C.batchnorm_backward(g, x, mean, invstd, None, gx, None, None, batch_stats, False)
        return gx, None, None
    acc = grad_weight is not None and grad_bias is not None
    gw = grad_weight if acc else np.empty_like(weight)
    gb = grad_bias if acc else np.empty_like(weight)
    _C.batchnorm_backward(g, x, mean, invstd, weight, gx, gw, gb, batch_stats, acc)
    return gx, gw, gb
