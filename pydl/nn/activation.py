"""Activation layers: ReLU, LeakyReLU, Sigmoid, Tanh, GELU, Softmax (C++ kernels, any shape)."""
import numpy as np

from .. import _C
from .module import Module, check_grad, check_input, no_forward


class _Activation(Module):
    """y = f(x) elementwise through _C.activation_forward; backward via _C.activation_backward.

    ``kind`` names the kernel, ``alpha`` its parameter (LeakyReLU's slope). ``fusable``: a
    Sequential may run this activation inside the preceding Linear's GEMM epilogue and fused
    backward (its derivative is computable from its output).
    """

    kind = "none"
    fusable = False

    def __init__(self):
        super().__init__()
        self.alpha = 0.0
        self._x = self._y = None

    def forward(self, x):
        if type(x) is not np.ndarray or (x.dtype != np.float32 and x.dtype != np.float64):
            check_input(x)
        if not x.flags.c_contiguous:
            x = np.ascontiguousarray(x)
        y = np.empty_like(x)
        _C.activation_forward(self.kind, x, y, self.alpha)
        d = self.__dict__
        d["_x"], d["_y"] = x, y
        return y

    def backward(self, grad_out):
        x, y = self._x, self._y
        if y is None:
            raise no_forward(self)
        g = grad_out
        if type(g) is not np.ndarray or g.shape != y.shape or g.dtype != y.dtype:
            check_grad(g, y.shape, y.dtype)
        if not g.flags.c_contiguous:
            g = np.ascontiguousarray(g)
        gx = np.empty_like(y)
        _C.activation_backward(self.kind, g, x, y, gx, self.alpha)
        return gx


class ReLU(_Activation):
    """y = max(x, 0); dy/dx = 1 where x > 0, else 0."""

    kind = "relu"
    fusable = True


class LeakyReLU(_Activation):
    """y = x if x > 0 else negative_slope * x."""

    kind = "leaky_relu"

    def __init__(self, negative_slope=0.01):
        super().__init__()
        if isinstance(negative_slope, bool) or not isinstance(negative_slope, (int, float, np.floating, np.integer)):
            raise TypeError(f"negative_slope: expected a float, got {type(negative_slope).__name__}")
        self.alpha = float(negative_slope)

    @property
    def negative_slope(self):
        return self.alpha

    @property
    def fusable(self):
        return self.alpha >= 0.0  # sign(y) == sign(x): the derivative follows from y

    def extra_repr(self):
        return f"negative_slope={self.alpha}"


class Sigmoid(_Activation):
    """y = 1 / (1 + exp(-x)); dy/dx = y (1 - y)."""

    kind = "sigmoid"
    fusable = True


class Tanh(_Activation):
    """y = tanh(x); dy/dx = 1 - y^2."""

    kind = "tanh"
    fusable = True


class GELU(_Activation):
    """y = x Phi(x) (approximate="none") or 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) ("tanh")."""

    def __init__(self, approximate="none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"approximate: expected 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate
        self.kind = "gelu" if approximate == "none" else "gelu_tanh"

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class Softmax(Module):
    """y = exp(x) / sum exp(x) over the last axis; dx = y * (dy - sum(dy * y))."""

    def __init__(self, dim=-1):
        super().__init__()
        if dim != -1:
            raise ValueError(f"dim: only the last axis (-1) is supported, got {dim}")
        self.dim = -1
        self._y = None

    def forward(self, x):
        if type(x) is not np.ndarray or (x.dtype != np.float32 and x.dtype != np.float64):
            check_input(x)
        if x.ndim == 0:
            raise ValueError("input: expected at least 1 dimension, got a 0-D array")
        x2 = np.ascontiguousarray(x.reshape(-1, x.shape[-1]) if x.ndim != 2 else x)
        y = np.empty_like(x2)
        _C.softmax_forward(x2, y)
        y = y.reshape(x.shape)
        self.__dict__["_y"] = y
        return y

    def backward(self, grad_out):
        y = self._y
        if y is None:
            raise no_forward(self)
        check_grad(grad_out, y.shape, y.dtype)
        y2 = y.reshape(-1, y.shape[-1])
        g = np.ascontiguousarray(grad_out.reshape(y2.shape))
        gx = np.empty_like(y2)
        _C.softmax_backward(g, y2, gx)
        return gx.reshape(y.shape)

    def extra_repr(self):
        return f"dim={self.dim}"
