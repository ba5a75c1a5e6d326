"""nn.Linear (optionally with a fused activation), nn.Identity, nn.Flatten."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import ops
from .._typing import Array, DTypeLike
from .._validate import (
    check_array,
    check_features,
    check_float_dtype,
    check_input,
    check_int,
    check_real,
    flatten_dims,
)
from .module import Module
from .parameter import Parameter


class Linear(Module):
    """y = act(x W^T + b) over the last axis; ``act`` is the identity unless ``activation`` is given.

    Parameters
    ----------
    in_features, out_features : int
    bias : bool
    dtype : float32 (default) or float64
    activation : {None, "relu", "leaky_relu", "sigmoid", "tanh"}, keyword-only
        Run this activation inside the GEMM epilogue, and its derivative (taken from the output)
        inside the backward call: ``Linear(64, 10, activation="relu")`` computes what
        ``Sequential(Linear(64, 10), ReLU())`` does, bit for bit, in one kernel call each way.
    negative_slope : float, keyword-only, default 0.01
        leaky_relu's slope for negative inputs; must be >= 0 (the derivative must follow from
        the output).

    ``weight`` has shape (out_features, in_features) and ``bias`` (out_features,), both drawn
    from U(-1/sqrt(in_features), 1/sqrt(in_features)) as PyTorch's default
    (kaiming_uniform_ with a = sqrt(5)). Input (*, in_features), output (*, out_features).
    Backward: dz = dy act'(y), dX = dz W, dW (+)= dz^T X, db (+)= sum_rows dz, in one C++ call.

    ``forward_fused`` / ``backward_fused`` run one call with any activation whose derivative
    follows from its output (a Sequential uses them to fuse a Linear with the activation module
    after it).
    """

    bias: Parameter | None

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype: DTypeLike = np.float32, *,
                 activation: str | None = None, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.in_features = check_int(in_features, "in_features")
        self.out_features = check_int(out_features, "out_features")
        dtype = check_float_dtype(dtype)
        if activation == "none":
            activation = None
        slope = check_real(negative_slope, "negative_slope") if activation == "leaky_relu" else 0.0
        if activation is not None and (not isinstance(activation, str) or activation not in ops.ACTIVATIONS
                                       or not ops.derivative_from_output(activation, slope)):
            raise ValueError("activation: expected None, 'relu', 'leaky_relu' (negative_slope >= 0), 'sigmoid' "
                             f"or 'tanh' (fusable into the GEMM), got {activation!r}"
                             + (f" with negative_slope={slope}" if activation == "leaky_relu" else ""))
        self.activation, self.negative_slope = activation, slope
        self._act = activation or "none"
        self.weight = Parameter(np.empty((self.out_features, self.in_features), dtype))
        if bias:
            self.bias = Parameter(np.empty(self.out_features, dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default init: U(-1/sqrt(in), 1/sqrt(in)) for weight and bias."""
        from . import init

        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1.0 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Array) -> Array:
        """x (*, in_features) -> y (*, out_features), with the layer's own activation."""
        return self.forward_fused(x, self._act, self.negative_slope)

    def forward_fused(self, x: Array, activation: str = "none", negative_slope: float = 0.0) -> Array:
        """y = activation(x W^T + b) in one GEMM with a bias/activation epilogue.

        Parameters
        ----------
        x : ndarray of shape (*, in_features), the layer's dtype
        activation : str
            A kernel activation whose derivative follows from its output
            (``pydl.ops.derivative_from_output``): "none", "relu", "leaky_relu" (slope >= 0),
            "sigmoid", "tanh".
        negative_slope : float

        Returns
        -------
        ndarray of shape (*, out_features)
        """
        w = self.weight.data
        if type(x) is not np.ndarray or x.dtype is not w.dtype:  # (builtin dtypes are singletons)
            check_input(x, w.dtype)
        shape = x.shape
        if not shape or shape[-1] != self.in_features:
            check_features(x, self.in_features, self._short_repr())
        if not x.flags.c_contiguous:
            x = np.ascontiguousarray(x)  # once, for forward and backward
        b = self.bias
        y = ops.linear(x, w, None if b is None else b.data, activation, negative_slope)
        return self._save_for_backward(y, x, y if activation != "none" else None, activation, negative_slope)

    def backward(self, grad_out: Array, input_grad: bool = True) -> Array | None:
        """Fills weight.grad (and bias.grad) for the latest pending call; returns dL/dx, or None
        (and skips its GEMM) when ``input_grad`` is False.

        Raises RuntimeError if that call ran fused with a following activation module (a
        Sequential's fused step): the Sequential's backward consumes it.
        """
        stack = self._pending
        if stack and stack[-1][3][2] != self._act:
            raise RuntimeError("Linear.backward: the latest call ran fused with the activation module after it "
                               f"({stack[-1][3][2]!r}, in a Sequential); call the Sequential's backward")
        return self.backward_fused(grad_out, input_grad)

    def backward_fused(self, grad_out: Array, input_grad: bool = True) -> Array | None:
        """Backward of the latest pending call, through the activation it ran with.

        Parameters
        ----------
        grad_out : ndarray of that call's output shape (*, out_features) and dtype
        input_grad : bool
            Compute dL/dx (False skips its GEMM and returns None).

        Returns
        -------
        ndarray of shape (*, in_features), or None
        """
        x, y, activation, slope = self._saved_for_backward(grad_out)
        w, b = self.weight, self.bias
        gx, gw, gb = ops.linear_backward(grad_out, x, w.data, y, activation, slope, b is not None, input_grad,
                                         w._grad, None if b is None else b._grad)
        w._grad = gw
        if b is not None:
            b._grad = gb
        return gx

    def _short_repr(self) -> str:
        return f"Linear({self.in_features}, {self.out_features})"

    def extra_repr(self) -> str:
        s = f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
        if self.activation is not None:
            s += f", activation={self.activation!r}"
            if self.activation == "leaky_relu":
                s += f", negative_slope={self.negative_slope}"
        return s


class Identity(Module):
    """y = x (any ndarray); dx = dy. Arguments are accepted and ignored (PyTorch)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, x: Array) -> Array:
        check_array(x)
        return self._save_for_backward(x)

    def backward(self, grad_out: Array) -> Array:
        self._saved_for_backward(grad_out)
        return grad_out


class Flatten(Module):
    """Flattens dimensions start_dim..end_dim (default 1..-1) into one, as torch.nn.Flatten."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)

    def forward(self, x: Array) -> Array:
        check_array(x)
        shape = x.shape
        s, e = flatten_dims(shape, self.start_dim, self.end_dim)
        y = x.reshape(shape[:s] + (math.prod(shape[s:e + 1]),) + shape[e + 1:])
        return self._save_for_backward(y, shape)

    def backward(self, grad_out: Array) -> Array:
        (shape,) = self._saved_for_backward(grad_out)
        return grad_out.reshape(shape)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
