"""nn.Conv1d and nn.Conv2d: cross-correlation layers on NCL / NCHW inputs (kernels: pydl.ops.conv*)."""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Union

import numpy as np

from .. import ops
from .._typing import Array, DTypeLike
from .._validate import check_float_dtype, check_input, check_int, shape_str
from .module import Module
from .parameter import Parameter


def _ntuple(value, n, name, low=1):
    """``value`` (an int, or a tuple/list of ``n`` ints) as a tuple of ``n`` Python ints >= ``low``.

    The one int-or-tuple parser of the conv and pooling layers: TypeError for a non-int (bools
    included), ValueError for a wrong length or an int below ``low``, each naming ``name``.
    """
    items = tuple(value) if isinstance(value, (tuple, list)) else (value,) * n
    if len(items) != n:
        raise ValueError(f"{name}: expected an int or a tuple of {n} ints, got {value!r}")
    return tuple(check_int(v, name, low) for v in items)


def check_spatial_input(x, nd, channels, layer, dtype=None):
    """A conv/pool input: an ndarray of rank nd+1 (unbatched) or nd+2, with ``channels`` channels
    (None: any); errors name ``input``, the layer and the shapes."""
    check_input(x, dtype)
    layout = "(N, C, L) or (C, L)" if nd == 1 else "(N, C, H, W) or (C, H, W)"
    if x.ndim not in (nd + 1, nd + 2):
        raise ValueError(f"input: expected a {nd + 1}-D or {nd + 2}-D array {layout} for {layer}, "
                         f"got shape {shape_str(x.shape)}")
    if channels is not None and x.shape[-nd - 1] != channels:
        raise ValueError(f"input: expected {channels} channels (axis {x.ndim - nd - 1}) for {layer}, "
                         f"got shape {shape_str(x.shape)}")


IntOrTuple = Union[int, Sequence[int]]


class _ConvNd(Module):
    """Shared body of Conv1d / Conv2d; ``_nd`` is the number of spatial axes.

    ``forward_fused`` / ``backward_fused`` run the convolution with a ReLU stored by the kernel
    (a Sequential fuses ``Conv2d`` + ``ReLU`` into one step through them; same bits as unfused).
    """

    _nd = 2

    bias: Parameter | None
    padding: tuple[int, ...] | str
    _conv: Callable[..., Array]                  # ops.conv1d / conv2d, set by the subclass
    _conv_backward: Callable[..., tuple[Array | None, Array, Array | None]]

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrTuple, stride: IntOrTuple = 1,
                 padding: IntOrTuple | str = 0, dilation: IntOrTuple = 1, groups: int = 1, bias: bool = True,
                 dtype: DTypeLike = np.float32) -> None:
        super().__init__()
        nd = self._nd
        self.in_channels = check_int(in_channels, "in_channels", 1)
        self.out_channels = check_int(out_channels, "out_channels", 1)
        self.kernel_size = _ntuple(kernel_size, nd, "kernel_size")
        self.stride = _ntuple(stride, nd, "stride")
        self.dilation = _ntuple(dilation, nd, "dilation")
        self.groups = check_int(groups, "groups", 1)
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(f"groups: {self.groups} must divide in_channels ({self.in_channels}) and "
                             f"out_channels ({self.out_channels})")
        if isinstance(padding, str):
            if padding not in ("valid", "same"):
                raise ValueError(f"padding: expected an int, a tuple of {nd} ints, 'valid' or 'same', got {padding!r}")
            if padding == "same" and self.stride != (1,) * nd:
                raise ValueError(f"padding: 'same' needs stride 1, got stride={self.stride}")
            self.padding = padding
            self._pad_total = tuple(0 if padding == "valid" else d * (k - 1)
                                    for k, d in zip(self.kernel_size, self.dilation))
        else:
            self.padding = _ntuple(padding, nd, "padding", 0)
            self._pad_total = tuple(2 * p for p in self.padding)
        dtype = check_float_dtype(dtype)
        self.weight = Parameter(np.empty((self.out_channels, self.in_channels // self.groups) + self.kernel_size,
                                         dtype))
        if bias:
            self.bias = Parameter(np.empty(self.out_channels, dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default: weight kaiming_uniform_(a=sqrt(5)), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
        and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = in_channels / groups * prod(kernel_size)."""
        from . import init

        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.data[0].size
            bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            init.uniform_(self.bias, -bound, bound)

    # ----------------------------------------------------------------- passes
    def _check(self, x):
        w = self.weight.data
        if type(x) is not np.ndarray or x.dtype is not w.dtype or x.ndim not in (self._nd + 1, self._nd + 2) \
                or x.shape[-self._nd - 1] != self.in_channels:
            check_spatial_input(x, self._nd, self.in_channels, self._short_repr(), w.dtype)
        spatial = x.shape[-self._nd:]
        for L, k, d, p in zip(spatial, self.kernel_size, self.dilation, self._pad_total):
            if L + p < d * (k - 1) + 1:
                padded = tuple(L + p for L, p in zip(spatial, self._pad_total))
                raise ValueError(f"input: spatial size {tuple(spatial)} (padded {padded}) is smaller than the "
                                 f"dilated kernel of {self._short_repr()} (kernel_size={self.kernel_size}, "
                                 f"dilation={self.dilation}); input shape {shape_str(x.shape)}")

    def forward(self, x: Array) -> Array:
        """x (N, C_in, *spatial) or (C_in, *spatial) -> y (N, C_out, *spatial_out)."""
        return self.forward_fused(x, "none")

    def forward_fused(self, x: Array, activation: str = "none", negative_slope: float = 0.0) -> Array:
        """y = activation(conv(x, W) + b), the activation ("none" or "relu") stored by the kernel."""
        self._check(x)
        if not x.flags.c_contiguous:
            x = np.ascontiguousarray(x)  # once, for forward and backward
        b = self.bias
        y = self._conv(x, self.weight.data, None if b is None else b.data, self.stride, self.padding,
                       self.dilation, self.groups, activation)
        return self._save_for_backward(y, x, y if activation != "none" else None, activation)

    def backward(self, grad_out: Array, input_grad: bool = True) -> Array | None:
        """Fills weight.grad (and bias.grad) for the latest pending call; returns dL/dx (None when
        ``input_grad`` is False: its computation is skipped).

        Raises RuntimeError if that call ran fused with a following ReLU (a Sequential's step):
        the Sequential's backward consumes it.
        """
        stack = self._pending
        if stack and stack[-1][3][2] != "none":
            raise RuntimeError(f"{type(self).__name__}.backward: the latest call ran fused with the ReLU after it "
                               "(in a Sequential); call the Sequential's backward")
        return self.backward_fused(grad_out, input_grad)

    def backward_fused(self, grad_out: Array, input_grad: bool = True) -> Array | None:
        """Backward of the latest pending call, through the activation it ran with:
        dz = grad_out * [y > 0] (relu) or grad_out; dx = conv_transpose(dz, W); dW (+)= sum_n dz (x) x;
        db (+)= sum dz over N and the spatial axes."""
        x, y, activation = self._saved_for_backward(grad_out)
        w, b = self.weight, self.bias
        gx, gw, gb = self._conv_backward(grad_out, x, w.data, self.stride, self.padding, self.dilation, self.groups,
                                         input_grad=input_grad, bias_grad=b is not None, grad_weight=w._grad,
                                         grad_bias=None if b is None else b._grad, out=y, activation=activation)
        w._grad = gw
        if b is not None:
            b._grad = gb
        return gx

    # ----------------------------------------------------------------- repr
    def _short_repr(self):
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size})"

    def extra_repr(self) -> str:
        """As torch: non-default padding, dilation, groups and bias only."""
        nd = self._nd
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * nd:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * nd:
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


class Conv2d(_ConvNd):
    """2-D convolution (cross-correlation) over NCHW input, as ``torch.nn.Conv2d``.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int or (int, int)
    stride, dilation : int or (int, int), default 1
    padding : int, (int, int), "valid" or "same", default 0
        Zero padding on both sides; "same" (stride 1 only) pads ``dilation * (k - 1)`` in total per
        axis, the odd element at the bottom/right (PyTorch).
    groups : int, default 1
        Divides both channel counts; ``groups == in_channels`` is a depthwise convolution.
    bias : bool, default True
    dtype : float32 (default) or float64

    Shapes: input (N, C_in, H, W) or (C_in, H, W); ``weight`` (C_out, C_in / groups, kH, kW);
    ``bias`` (C_out,); output (N, C_out, H_out, W_out) with
    ``H_out = (H + pad_top + pad_bottom - dilation[0] (kH - 1) - 1) // stride[0] + 1`` (likewise W)::

        y[n, o] = bias[o] + sum_{c in group(o)} weight[o, c] (*) x[n, c]

    Init as PyTorch: weight and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = C_in / groups * kH * kW.
    Backward: dx = conv_transpose(dy, W), dW (+)= sum_n dy_n (*) x_n, db (+)= sum of dy over N, H, W.
    """

    _nd = 2
    _conv = staticmethod(ops.conv2d)
    _conv_backward = staticmethod(ops.conv2d_backward)


class Conv1d(_ConvNd):
    """1-D convolution over NCL input, as ``torch.nn.Conv1d``: input (N, C_in, L) or (C_in, L),
    ``weight`` (C_out, C_in / groups, k), ``bias`` (C_out,), output (N, C_out, L_out) with
    ``L_out = (L + pad_total - dilation (k - 1) - 1) // stride + 1``. Arguments as :class:`Conv2d`
    (ints or 1-tuples)."""

    _nd = 1
    _conv = staticmethod(ops.conv1d)
    _conv_backward = staticmethod(ops.conv1d_backward)
