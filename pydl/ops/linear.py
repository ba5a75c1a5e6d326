"""Linear layer kernels: y = act(x W^T + b) and its fused backward.

Shapes: ``x`` (N, in), ``weight`` (out, in), ``bias`` (out,), ``y`` (N, out). The forward is one
GEMM whose epilogue adds the bias and applies the activation while each block of rows is in
cache. The backward computes, in one call::

    dz = dy * act'(y)          (act' from the output y: relu, leaky_relu with slope >= 0, sigmoid, tanh)
    dx = dz W                  (skipped with input_grad=False)
    dW (+)= dz^T x
    db (+)= sum_rows dz

Arrays are validated by the compiled layer (dtype, rank, shape, contiguity, aliasing), whose
errors name the argument. ``x`` of any rank >= 1 is read as (N, in) over its last axis.
"""
from __future__ import annotations

import numpy as np

from .. import _C
from .._typing import Array
from .._validate import check_array

__all__ = ["linear", "linear_backward"]


def linear(x: Array, weight: Array, bias: Array | None = None, activation: str = "none",
           negative_slope: float = 0.0) -> Array:
    """y = activation(x @ weight.T + bias) over the last axis of ``x``.

    Parameters
    ----------
    x : ndarray of shape (*, in_features), float32 or float64
    weight : ndarray of shape (out_features, in_features), the dtype of ``x``
    bias : ndarray of shape (out_features,) or None
    activation : {"none", "relu", "leaky_relu", "sigmoid", "tanh", "gelu", "gelu_tanh"}
    negative_slope : float
        leaky_relu's slope for x < 0.

    Returns
    -------
    ndarray of shape (*, out_features)
    """
    check_array(x, "x")
    check_array(weight, "weight")
    shape = x.shape
    x2 = x if x.ndim == 2 else x.reshape(-1, shape[-1] if shape else 1)
    if not x2.flags.c_contiguous:
        x2 = np.ascontiguousarray(x2)
    y = np.empty((x2.shape[0], weight.shape[0]), x.dtype)
    _C.linear_forward(x2, weight, bias, y, activation, negative_slope)
    return y if len(shape) == 2 else y.reshape(shape[:-1] + (weight.shape[0],))


def linear_backward(grad_out: Array, x: Array, weight: Array, out: Array | None = None, activation: str = "none",
                    negative_slope: float = 0.0, has_bias: bool = True, input_grad: bool = True,
                    grad_weight: Array | None = None, grad_bias: Array | None = None
                    ) -> tuple[Array | None, Array, Array | None]:
    """Gradients of y = activation(x W^T + b) given dL/dy.

    Parameters
    ----------
    grad_out : ndarray of shape (*, out_features)
    x : ndarray of shape (*, in_features), the forward input
    weight : ndarray of shape (out_features, in_features)
    out : ndarray of shape (*, out_features) or None
        The forward output; needed when ``activation`` is not "none". The activation's
        derivative must follow from it (``_C.activation_derivative_from_output``).
    activation, negative_slope : as in :func:`linear`
    has_bias : bool
        Compute the bias gradient.
    input_grad : bool
        Compute dL/dx (False skips its GEMM and returns None in its place).
    grad_weight, grad_bias : ndarray or None
        When given, the gradient is added into them in place (accumulation); otherwise new
        arrays are returned.

    Returns
    -------
    (grad_input or None, grad_weight, grad_bias or None)
    """
    check_array(grad_out, "grad_out")
    check_array(x, "x")
    check_array(weight, "weight")
    if weight.ndim != 2:
        raise ValueError(f"weight: expected shape (out_features, in_features), got {weight.shape}")
    out_f = weight.shape[0]
    flat = x.ndim != 2
    g, x2, y2 = grad_out, x, (None if activation == "none" else out)
    if flat or grad_out.ndim != 2:
        g, x2 = grad_out.reshape(-1, out_f), x.reshape(-1, weight.shape[1])
        y2 = None if y2 is None else y2.reshape(-1, out_f)
    if not g.flags.c_contiguous:
        g = np.ascontiguousarray(g)
    if not x2.flags.c_contiguous:
        x2 = np.ascontiguousarray(x2)
    acc_w = grad_weight is not None
    gw = grad_weight if grad_weight is not None else np.empty_like(weight)
    acc_b = grad_bias is not None
    gb = (grad_bias if acc_b else np.empty(out_f, weight.dtype)) if has_bias else None
    gx = np.empty_like(x2) if input_grad else None
    _C.linear_backward(g, x2, weight, y2, gx, gw, gb, activation, negative_slope, acc_w, acc_b)
    if flat and gx is not None:
        gx = gx.reshape(x.shape)
    return gx, gw, gb
