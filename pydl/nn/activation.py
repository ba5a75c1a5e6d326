"""Activation layers: ReLU, LeakyReLU, Sigmoid, Tanh, GELU, Softmax (C++ kernels, any shape)."""
from __future__ import annotations

import numpy as np

from .. import ops
from .._typing import Array
from .._validate import FLOAT_DTYPES, check_input, check_min_ndim, check_real
from .module import Module


class _Activation(Module):
    """y = f(x) elementwise through ``ops.activation_forward``; backward via ``ops.activation_backward``.

    ``activation`` names the kernel and ``negative_slope`` its parameter (LeakyReLU's slope).
    A Sequential runs such a module inside the preceding Linear's GEMM epilogue when
    ``ops.derivative_from_output(activation, negative_slope)`` says its derivative follows from
    its output (and neither module overrides its passes or has hooks).
    """

    activation = "none"
    negative_slope = 0.0

    def forward(self, x: Array) -> Array:
        if type(x) is not np.ndarray or x.dtype not in FLOAT_DTYPES:
            check_input(x)
        if not x.flags.c_contiguous:
            x = np.ascontiguousarray(x)
        y = ops.activation_forward(x, self.activation, self.negative_slope)
        return self._save_for_backward(y, x, y)

    def backward(self, grad_out: Array) -> Array:
        x, y = self._saved_for_backward(grad_out)
        return ops.activation_backward(grad_out, x, y, self.activation, self.negative_slope)


class ReLU(_Activation):
    """y = max(x, 0); dy/dx = 1 where x > 0, else 0."""

    activation = "relu"


class LeakyReLU(_Activation):
    """y = x if x > 0 else negative_slope * x (``negative_slope`` is read-only once built)."""

    activation = "leaky_relu"

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self._negative_slope = check_real(negative_slope, "negative_slope")

    @property
    def negative_slope(self) -> float:  # type: ignore[override]  # (read-only here)
        return self._negative_slope

    def extra_repr(self) -> str:
        return f"negative_slope={self._negative_slope}"


class Sigmoid(_Activation):
    """y = 1 / (1 + exp(-x)); dy/dx = y (1 - y)."""

    activation = "sigmoid"


class Tanh(_Activation):
    """y = tanh(x); dy/dx = 1 - y^2."""

    activation = "tanh"


class GELU(_Activation):
    """y = x Phi(x) (approximate="none") or 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) ("tanh")."""

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"approximate: expected 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate
        self.activation = "gelu" if approximate == "none" else "gelu_tanh"

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Softmax(Module):
    """y = exp(x) / sum exp(x) over the last axis; dx = y * (dy - sum(dy * y))."""

    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        if dim != -1:
            raise ValueError(f"dim: only the last axis (-1) is supported, got {dim}")
        self.dim = -1

    def forward(self, x: Array) -> Array:
        if type(x) is not np.ndarray or x.dtype not in FLOAT_DTYPES:
            check_input(x)
        check_min_ndim(x, 1)
        y = ops.softmax(x)
        return self._save_for_backward(y, y)

    def backward(self, grad_out: Array) -> Array:
        (y,) = self._saved_for_backward(grad_out)
        return ops.softmax_backward(grad_out, y)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
