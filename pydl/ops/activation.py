"""Elementwise activations: numpy in, numpy out (float32 and float64, any shape).

Each function returns a new array of the input's shape and dtype (C-contiguous). float32 runs
the vectorised kernel of the active ISA (AVX-512, AVX2 or portable; tanh within 3 ulp, sigmoid
within 2.83 ulp over all float32 inputs; gelu within 4 ulp and gelu(approximate="tanh") within
4 ulp wherever the result is a normal float32, negative tail included: see docs/RELIABILITY.md,
"Numerics at the tails"), float64 uses libm (gelu through erfc). NaN propagates (``relu(nan)`` is nan) and infinities follow the formulas
(``tanh(inf) == 1``, ``sigmoid(-inf) == 0``, ``gelu(-inf)`` is nan as in torch).
"""
from __future__ import annotations

import numbers

import numpy as np

from .. import _C
from .._typing import Array
from .._validate import as_float_array

__all__ = ["relu", "leaky_relu", "sigmoid", "tanh", "gelu", "activation_forward", "activation_backward",
           "derivative_from_output", "ACTIVATIONS"]

#: The kernels' activation names (``activation=`` of activation_forward, linear, ...).
ACTIVATIONS = ("none", "relu", "leaky_relu", "sigmoid", "tanh", "gelu", "gelu_tanh")


def _apply(activation: str, x: Array, negative_slope: float = 0.0) -> Array:
    # (as_float_array returns 0-d input as shape (1,): restore the shape)
    x = as_float_array(x, "x").reshape(np.shape(x))
    out = np.empty_like(x)
    _C.activation_forward(activation, x, out, negative_slope)
    return out


def activation_forward(x: Array, activation: str, negative_slope: float = 0.0) -> Array:
    """y = activation(x) elementwise, a new C-contiguous array of x's shape and dtype.

    Parameters
    ----------
    x : ndarray of float32 or float64, any shape
    activation : one of :data:`ACTIVATIONS`
    negative_slope : float
        leaky_relu's slope for x < 0.
    """
    x = np.ascontiguousarray(x)
    out = np.empty_like(x)
    _C.activation_forward(activation, x, out, negative_slope)
    return out


def activation_backward(grad_out: Array, x: Array | None, out: Array | None, activation: str,
                        negative_slope: float = 0.0) -> Array:
    """dL/dx = dL/dy * activation'(x), elementwise.

    relu, leaky_relu and gelu read the forward input ``x``; sigmoid (y (1 - y)) and tanh
    (1 - y^2) read the forward output ``out``. The other may be None.

    Parameters
    ----------
    grad_out : ndarray, float32 or float64
    x, out : ndarray of grad_out's shape and dtype, or None
    activation : one of :data:`ACTIVATIONS`
    negative_slope : float
    """
    g = np.ascontiguousarray(grad_out)
    gx = np.empty_like(g)
    _C.activation_backward(activation, g, x, out, gx, negative_slope)
    return gx


def derivative_from_output(activation: str, negative_slope: float = 0.0) -> bool:
    """True when activation'(x) is a function of y = activation(x) alone (decided in C++).

    Such an activation can run in a GEMM epilogue and take its backward from the output
    (relu, sigmoid, tanh, leaky_relu with negative_slope >= 0, none); gelu cannot.
    """
    return _C.activation_derivative_from_output(activation, negative_slope)


def relu(x: Array) -> Array:
    """Rectified linear unit, ``max(x, 0)`` elementwise (NaN stays NaN).

    Parameters
    ----------
    x : ndarray of float32 or float64, any shape

    Returns
    -------
    ndarray, same shape and dtype as ``x``
    """
    return _apply("relu", x)


def leaky_relu(x: Array, negative_slope: float = 0.01) -> Array:
    """Leaky ReLU: ``x`` where ``x >= 0``, ``negative_slope * x`` elsewhere.

    Parameters
    ----------
    x : ndarray of float32 or float64, any shape
    negative_slope : float, default 0.01
    """
    if isinstance(negative_slope, bool) or not isinstance(negative_slope, numbers.Real):
        raise TypeError(f"negative_slope: expected a real number, got {type(negative_slope).__name__}")
    return _apply("leaky_relu", x, float(negative_slope))


def sigmoid(x: Array) -> Array:
    """Logistic sigmoid, ``1 / (1 + exp(-x))`` elementwise.

    Parameters
    ----------
    x : ndarray of float32 or float64, any shape
    """
    return _apply("sigmoid", x)


def tanh(x: Array) -> Array:
    """Hyperbolic tangent elementwise (``tanh(+-inf) == +-1``).

    Parameters
    ----------
    x : ndarray of float32 or float64, any shape
    """
    return _apply("tanh", x)


def gelu(x: Array, approximate: str = "none") -> Array:
    """Gaussian error linear unit, as ``torch.nn.functional.gelu``.

    ``approximate="none"``: ``x * Phi(x) = x/2 * (1 + erf(x / sqrt(2)))``;
    ``approximate="tanh"``: ``x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))``.

    Both are evaluated without the ``1 + erf`` / ``1 + tanh`` cancellation (through
    ``erfc(-x / sqrt(2)) / 2`` and ``sigmoid(2u)``), so the relative error stays within 4 ulp
    (float32) down to the end of the normal range (x ~ -13.2, resp. -10.1); gradients within
    5 (gelu) and 9 ulp (tanh form) except near their zero at x ~ -0.752, where the error is
    absolute, below 2^-23.

    Parameters
    ----------
    x : ndarray of float32 or float64, any shape
    approximate : {"none", "tanh"}
    """
    if not isinstance(approximate, str):
        raise TypeError(f"approximate: expected 'none' or 'tanh', got {type(approximate).__name__}")
    if approximate not in ("none", "tanh"):
        raise ValueError(f"approximate: expected 'none' or 'tanh', got {approximate!r}")
    return _apply("gelu" if approximate == "none" else "gelu_tanh", x)
