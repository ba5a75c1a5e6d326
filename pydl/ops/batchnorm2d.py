"""Batch normalization over the channel axis of (N, C, *spatial) arrays (BatchNorm2d on NCHW).

Per channel c, over the M = N * prod(spatial) values x[:, c, ...], with the biased variance::

    xhat = (x - mean_c) * invstd_c,  invstd_c = 1 / sqrt(var_c + eps),  y = weight_c xhat + bias_c

Training updates the running statistics in place (PyTorch): running = (1 - momentum) running +
momentum batch, with the *unbiased* batch variance var * M / (M - 1) for running_var. Backward
with batch statistics::

    dbias_c = sum dy,  dweight_c = sum dy xhat,
    dx = weight_c invstd_c (dy - mean(dy) - xhat mean(dy xhat))

and with fixed (running) statistics dx = weight_c invstd_c dy.

Kernels: csrc/ops/batchnorm2d.cpp, on the NCHW layout itself (each channel is N contiguous blocks
of H*W); sums in double in an order fixed by the shape; threads split channels, so results are
bitwise identical for any thread count. The arrays' checks (dtype, shape, contiguity, aliasing)
are the compiled argument layer's; errors name the argument.
"""
from __future__ import annotations

import numpy as np

from .. import _C
from .._typing import Array
from .._validate import check_array

__all__ = ["batch_norm2d_train", "batch_norm2d_eval", "batch_norm2d_backward"]


def _ncs(a: Array, name: str) -> Array:
    """(N, C, *spatial) C-contiguous -> the (N, C, S) view the kernels take."""
    check_array(a, name)
    if a.ndim < 2:
        raise ValueError(f"{name}: expected an array of shape (N, C, *spatial), got shape {a.shape}")
    a = np.ascontiguousarray(a)
    return a.reshape(a.shape[0], a.shape[1], -1) if a.ndim != 3 else a


def batch_norm2d_train(x: Array, weight: Array | None, bias: Array | None, eps: float,
                       running_mean: Array | None = None, running_var: Array | None = None,
                       momentum: float = 0.0) -> tuple[Array, Array, Array]:
    """Normalize ``x`` (N, C, *spatial) with its own per-channel batch statistics.

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W), or any (N, C, ...); float32 or float64
    weight, bias : ndarray of shape (C,), or both None (affine=False)
    eps : float, added to the biased batch variance
    running_mean, running_var : ndarray of shape (C,), or None (not tracked)
        When given, updated in place: ``r = (1 - momentum) r + momentum * batch statistic``
        (the unbiased variance for running_var).
    momentum : float

    Returns
    -------
    y : ndarray shaped like ``x``
    mean, invstd : ndarray of shape (C,)
        The batch mean and 1 / sqrt(var + eps), for :func:`batch_norm2d_backward`.
    """
    x3 = _ncs(x, "x")
    y, stats = np.empty_like(x3), np.empty((2, x3.shape[1]), x3.dtype)  # rows: mean, invstd
    _C.batchnorm2d_forward_train(x3, weight, bias, y, stats[0], stats[1], running_mean, running_var, eps, momentum)
    return y.reshape(x.shape), stats[0], stats[1]


def batch_norm2d_eval(x: Array, weight: Array | None, bias: Array | None, running_mean: Array, running_var: Array,
                      eps: float) -> Array:
    """Normalize ``x`` (N, C, *spatial) with the running statistics; returns y shaped like x."""
    x3 = _ncs(x, "x")
    y = np.empty_like(x3)
    _C.batchnorm2d_forward_eval(x3, weight, bias, running_mean, running_var, y, eps)
    return y.reshape(x.shape)


def batch_norm2d_backward(grad_out: Array, x: Array, mean: Array, invstd: Array, weight: Array | None,
                          batch_stats: bool, grad_weight: Array | None = None, grad_bias: Array | None = None,
                          input_grad: bool = True) -> tuple[Array | None, Array | None, Array | None]:
    """Gradients of :func:`batch_norm2d_train` / :func:`batch_norm2d_eval`.

    Parameters
    ----------
    grad_out : ndarray shaped like ``x``, dL/dy
    x : ndarray of shape (N, C, *spatial), the forward's input
    mean, invstd : ndarray of shape (C,), the statistics the forward normalized with
    weight : ndarray of shape (C,), or None when there are no affine parameters (then no
        weight/bias gradients either)
    batch_stats : bool
        True when the forward used batch statistics (training), False for running ones (eval).
    grad_weight, grad_bias : ndarray of shape (C,) or None
        Both given: the gradients are accumulated into them in place. Otherwise fresh arrays.
    input_grad : bool
        False skips dL/dx (None in its place).

    Returns
    -------
    grad_input : ndarray shaped like ``x``, or None
    grad_weight, grad_bias : ndarray of shape (C,), or None without affine parameters
    """
    g3, x3 = _ncs(grad_out, "grad_out"), _ncs(x, "x")
    gx = np.empty_like(x3) if input_grad else None
    acc = weight is not None and grad_weight is not None and grad_bias is not None
    if acc or weight is None:
        gw, gb = grad_weight if acc else None, grad_bias if acc else None
    else:
        check_array(weight, "weight")
        gw, gb = np.empty((2,) + weight.shape, weight.dtype)
    _C.batchnorm2d_backward(g3, x3, mean, invstd, weight, gx, gw, gb, batch_stats, acc)
    return (None if gx is None else gx.reshape(x.shape)), gw, gb
