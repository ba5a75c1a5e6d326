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

from typing import Any

import numpy as np

from .. import _C
from .._typing import Array
from .._validate import check_array

__all__ = ["linear", "linear_backward", "linear_chain", "linear_chain_backward"]


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
    dtype = weight.dtype
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
    gw: Array = grad_weight if grad_weight is not None else np.empty(weight.shape, dtype)  # (cheaper than empty_like)
    acc_b = grad_bias is not None
    gb = (grad_bias if acc_b else np.empty(out_f, dtype)) if has_bias else None
    gx: Array | None = np.empty(x2.shape, x2.dtype) if input_grad else None
    _C.linear_backward(g, x2, weight, y2, gx, gw, gb, activation, negative_slope, acc_w, acc_b)
    if flat and gx is not None:
        gx = gx.reshape(x.shape)
    return gx, gw, gb


def _check_chain(x: Any, weights: Any) -> None:
    """x a 2-d array, weights a list of 2-d arrays (the binding checks the rest: dtypes, shapes)."""
    if type(x) is np.ndarray and x.ndim == 2 and type(weights) is list:
        for w in weights:  # (the common case costs a type test per layer: this runs every call)
            if type(w) is not np.ndarray or w.ndim != 2:
                break
        else:
            return
    check_array(x, "x")
    if x.ndim != 2:
        raise ValueError(f"x: expected shape (N, in_features), got {x.shape}")
    if not isinstance(weights, (list, tuple)):
        raise TypeError(f"weights: expected a list of arrays, got {type(weights).__name__}")
    for i, w in enumerate(weights):
        check_array(w, f"weights[{i}]")
        if w.ndim != 2:
            raise ValueError(f"weights[{i}]: expected shape (out_features, in_features), got {w.shape}")


def linear_chain(x: Array, weights: list[Array], biases: list[Array | None], activations: list[str],
                 negative_slopes: list[float]) -> list[Array]:
    """The outputs of a chain of dense layers, in one call: y_l = act_l(y_{l-1} W_l^T + b_l), y_{-1} = x.

    Each layer runs exactly as :func:`linear` (the same kernel, in order), so the outputs are
    bitwise those of calling it layer by layer.

    Parameters
    ----------
    x : ndarray of shape (N, in_0), C-contiguous, N >= 1
    weights : list of ndarray, weights[l] of shape (out_l, in_l), in_l = out_{l-1}, x's dtype
    biases : list of ndarray of shape (out_l,) or None
    activations : list of str
        Kernel activations whose derivative follows from the output (``derivative_from_output``).
    negative_slopes : list of float

    Returns
    -------
    list of ndarray, y_l of shape (N, out_l)
    """
    return _C.linear_chain_forward(x, weights, biases, None, activations, negative_slopes)  # (checks every argument)


def linear_chain_backward(grad_out: Array, x: Array, outs: list[Array | None], weights: list[Array],
                          activations: list[str], negative_slopes: list[float], grad_weights: list[Any],
                          grad_biases: list[Any], input_grad: bool = True
                          ) -> tuple[Array | None, list[Array], list[Array | None]]:
    """Gradients of :func:`linear_chain` given dL/dy_{L-1}, layer by layer from the last (each as
    :func:`linear_backward`).

    Parameters
    ----------
    grad_out : ndarray of shape (N, out_{L-1})
    x, outs, weights, activations, negative_slopes : as given to / returned by :func:`linear_chain`
        (``outs[-1]`` may be None when the last activation is "none": it is not read)
    grad_weights, grad_biases : list
        Per layer: an array to add the gradient into in place (accumulation), None for a new
        array; for a bias, False when the layer has none.
    input_grad : bool
        Compute dL/dx (False skips the first layer's dX GEMM and returns None in its place).

    Returns
    -------
    (grad_input or None, list of grad_weight, list of grad_bias or None)
    """
    if type(grad_out) is not np.ndarray:
        check_array(grad_out, "grad_out")
    _check_chain(x, weights)
    gx: Array | None = np.empty(x.shape, x.dtype) if input_grad else None
    if not grad_out.flags.c_contiguous:
        grad_out = np.ascontiguousarray(grad_out)
    acc = [True] * len(weights)  # every array given is added into; the binding makes the new ones (None)
    gx, gws, gbs = _C.linear_chain_backward(grad_out, x, outs, weights, gx, grad_weights, grad_biases, activations,
                                            negative_slopes, acc, acc)
    return gx, gws, gbs
