"""nn.Linear, nn.Identity, nn.Flatten."""
import math

import numpy as np

from .. import _C
from .._random import generator
from .._validate import shape_str
from .module import Module, check_grad, check_input, no_forward
from .parameter import Parameter

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


class Linear(Module):
    """y = x W^T + b over the last axis.

    Parameters
    ----------
    in_features, out_features : int
    bias : bool
    dtype : float32 (default) or float64

    ``weight`` has shape (out_features, in_features) and ``bias`` (out_features,), both drawn
    from U(-1/sqrt(in_features), 1/sqrt(in_features)) as PyTorch's default
    (kaiming_uniform_ with a = sqrt(5)). Input (*, in_features), output (*, out_features).
    Backward: dX = dY W, dW (+)= dY^T X, db (+)= sum_rows dY, in one fused C++ call.
    """

    def __init__(self, in_features, out_features, bias=True, dtype=np.float32):
        super().__init__()
        for name, v in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise TypeError(f"{name}: expected an int, got {type(v).__name__}")
            if v < 0:
                raise ValueError(f"{name}: expected a non-negative int, got {v}")
        dtype = np.dtype(dtype)
        if dtype not in _FLOATS:
            raise TypeError(f"dtype: expected float32 or float64, got {dtype}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.weight = Parameter(np.empty((self.out_features, self.in_features), dtype))
        self.bias = Parameter(np.empty(self.out_features, dtype)) if bias else None
        if not bias:
            self.register_parameter("bias", None)
        self.reset_parameters()
        self._x = self._y = self._act = None

    def reset_parameters(self):
        """PyTorch's default init: U(-1/sqrt(in), 1/sqrt(in)) for weight and bias."""
        from . import init

        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1.0 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        return self._forward(x, "none", 0.0)

    def _forward(self, x, act, alpha):
        """y = act(x W^T + b): one GEMM with the bias/activation epilogue."""
        w = self.weight.data
        if type(x) is not np.ndarray or x.dtype != w.dtype:
            check_input(x, w.dtype)
        shape = x.shape
        if not shape or shape[-1] != self.in_features:
            raise ValueError(f"input: expected shape (*, {self.in_features}), got {shape_str(shape)}")
        x2 = x if len(shape) == 2 else x.reshape(-1, self.in_features)
        if not x2.flags.c_contiguous:
            x2 = np.ascontiguousarray(x2)
        y = np.empty((x2.shape[0], self.out_features), w.dtype)
        b = self.bias
        _C.linear_forward(x2, w, None if b is None else b.data, y, act, alpha)
        d = self.__dict__
        d["_x"], d["_y"], d["_act"], d["_alpha"] = x2, y, act, alpha
        if len(shape) == 2:
            d["_oshape"] = y.shape
            return y
        y = y.reshape(shape[:-1] + (self.out_features,))
        d["_oshape"] = y.shape
        return y

    def backward(self, grad_out, input_grad=True):
        """Fills weight.grad (and bias.grad); returns dL/dx, or None (and skips its GEMM) when
        ``input_grad`` is False."""
        if self._act != "none" and self._act is not None:
            raise RuntimeError("Linear.backward: the last forward ran fused with the activation that follows "
                               "it in a Sequential; call the Sequential's backward")
        return self._backward(grad_out, input_grad)

    def _backward(self, grad_out, need_input_grad=True):
        """Fused backward of the last forward (with its activation): returns dL/dx."""
        x, y = self._x, self._y
        if x is None:
            raise no_forward(self)
        g = grad_out
        if type(g) is not np.ndarray or g.shape != self._oshape or g.dtype != y.dtype:
            check_grad(g, self._oshape, y.dtype)
        if g.ndim != 2:
            g = g.reshape(y.shape)  # (*, out): the forward flattened it to 2-D
        if not g.flags.c_contiguous:
            g = np.ascontiguousarray(g)
        w = self.weight
        gw = w._grad
        acc_w = gw is not None
        if not acc_w:
            gw = np.empty_like(w.data)
        b = self.bias
        gb, acc_b = None, False
        if b is not None:
            gb = b._grad
            acc_b = gb is not None
            if not acc_b:
                gb = np.empty_like(b.data)
        gx = np.empty_like(x) if need_input_grad else None
        act = self._act
        _C.linear_backward(g, x, w.data, y if act != "none" else None, gx, gw, gb, act, self._alpha, acc_w, acc_b)
        if not acc_w:
            w._grad = gw
        if b is not None and not acc_b:
            b._grad = gb
        if gx is not None and grad_out.ndim != 2:
            gx = gx.reshape(grad_out.shape[:-1] + (self.in_features,))
        return gx

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Identity(Module):
    """y = x."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x

    def backward(self, grad_out):
        return grad_out


class Flatten(Module):
    """Flattens dimensions start_dim..end_dim (default 1..-1) into one, as torch.nn.Flatten."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)
        self._shape = None

    def forward(self, x):
        if not isinstance(x, np.ndarray):
            raise TypeError(f"input: expected a numpy.ndarray, got {type(x).__name__}")
        nd = x.ndim
        s = self.start_dim + nd if self.start_dim < 0 else self.start_dim
        e = self.end_dim + nd if self.end_dim < 0 else self.end_dim
        if nd == 0 or not (0 <= s < nd and 0 <= e < nd) or s > e:
            raise ValueError(f"input: cannot flatten dims {self.start_dim}..{self.end_dim} of shape {shape_str(x.shape)}")
        self._shape = x.shape
        return x.reshape(x.shape[:s] + (-1,) + x.shape[e + 1:]) if x.size else \
            x.reshape(x.shape[:s] + (int(np.prod(x.shape[s:e + 1])),) + x.shape[e + 1:])

    def backward(self, grad_out):
        if self._shape is None:
            raise no_forward(self)
        if not isinstance(grad_out, np.ndarray) or grad_out.size != int(np.prod(self._shape)):
            raise ValueError(f"grad_out: expected {int(np.prod(self._shape))} elements to reshape to "
                             f"{shape_str(self._shape)}, got "
                             f"{shape_str(grad_out.shape) if isinstance(grad_out, np.ndarray) else type(grad_out).__name__}")
        return grad_out.reshape(self._shape)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
