"""Pooling layers: MaxPool1d/2d, AvgPool1d/2d (count_include_pad=True), AdaptiveAvgPool1d/2d.

Inputs are (N, C, L) / (C, L) or (N, C, H, W) / (C, H, W), float32 or float64; each (n, c) plane
is pooled on its own (kernels: pydl.ops.pooling). Window k, stride s (default k), padding p
(0 <= p <= k // 2)::

    L_out = (L + 2p - k) // s + 1                                  (floor mode, dilation 1)
    max:  y = max over the window (padding counts as -inf);  dx[argmax] += dy
    avg:  y = sum over the window / prod(k) (padding counts as 0);  dx spreads dy / prod(k)
    adaptive avg to (OH, OW): bin i spans rows [floor(i H / OH), ceil((i + 1) H / OH)) (likewise
          columns), y = the bin's mean;  dx spreads dy evenly over the bin
"""
from __future__ import annotations

from typing import Any

from .. import ops
from .._typing import Array
from .conv import _ntuple, check_spatial_input
from .module import Module


class _PoolNd(Module):
    """A windowed pool: validated (kernel_size, stride, padding) as tuples ``_k, _s, _p``; the
    user's values are kept as given (PyTorch) for the repr."""

    _nd = 2

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0) -> None:
        super().__init__()
        nd = self._nd
        self._k = _ntuple(kernel_size, nd, "kernel_size")
        self._s = self._k if stride is None else _ntuple(stride, nd, "stride")
        self._p = _ntuple(padding, nd, "padding", 0)
        if any(2 * p > k for p, k in zip(self._p, self._k)):
            raise ValueError(f"padding: should be at most half of kernel_size {self._k}, got {padding!r}")
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding

    def _check(self, x):
        check_spatial_input(x, self._nd, None, type(self).__name__)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class _MaxPoolNd(_PoolNd):
    def forward(self, x: Array) -> Array:
        self._check(x)
        pool = ops.max_pool2d if self._nd == 2 else ops.max_pool1d
        y, idx = pool(x, self._k, self._s, self._p, return_indices=True)
        return self._save_for_backward(y, idx, x.shape)

    def backward(self, grad_out: Array) -> Array:
        idx, shape = self._saved_for_backward(grad_out)
        back = ops.max_pool2d_backward if self._nd == 2 else ops.max_pool1d_backward
        return back(grad_out, idx, shape)

    def extra_repr(self) -> str:
        return super().extra_repr() + ", dilation=1, ceil_mode=False"


class MaxPool2d(_MaxPoolNd):
    """Max pooling over (H, W), as ``torch.nn.MaxPool2d(kernel_size, stride=None, padding=0)``.

    Parameters
    ----------
    kernel_size : int or (int, int)
    stride : int, (int, int) or None (default: kernel_size)
    padding : int or (int, int), at most half the window (implicit -inf)

    Input (N, C, H, W) or (C, H, W); output (N, C, H_out, W_out), ``H_out = (H + 2 p - k) // s + 1``.
    Backward routes each dy to the first maximum of its window (the index saved by forward).
    """

    _nd = 2


class MaxPool1d(_MaxPoolNd):
    """Max pooling over L, as ``torch.nn.MaxPool1d``: (N, C, L) or (C, L) -> (N, C, L_out).
    Arguments as :class:`MaxPool2d` (ints or 1-tuples)."""

    _nd = 1


class _AvgPoolNd(_PoolNd):
    def forward(self, x: Array) -> Array:
        self._check(x)
        pool = ops.avg_pool2d if self._nd == 2 else ops.avg_pool1d
        y = pool(x, self._k, self._s, self._p)
        return self._save_for_backward(y, x.shape)

    def backward(self, grad_out: Array) -> Array:
        (shape,) = self._saved_for_backward(grad_out)
        back = ops.avg_pool2d_backward if self._nd == 2 else ops.avg_pool1d_backward
        return back(grad_out, shape, self._k, self._s, self._p)


class AvgPool2d(_AvgPoolNd):
    """Average pooling over (H, W) with count_include_pad=True, as ``torch.nn.AvgPool2d(kernel_size,
    stride=None, padding=0)``: y = window sum / (kH kW), zeros in the padding counted.
    Shapes as :class:`MaxPool2d`; backward spreads dy / (kH kW) over each window."""

    _nd = 2


class AvgPool1d(_AvgPoolNd):
    """Average pooling over L (count_include_pad=True), as ``torch.nn.AvgPool1d``; its arguments are
    kept as 1-tuples, as PyTorch does."""

    _nd = 1

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0) -> None:
        super().__init__(kernel_size, stride, padding)
        self.kernel_size, self.stride, self.padding = self._k, self._s, self._p


class _AdaptiveAvgPoolNd(Module):
    _nd = 2

    def __init__(self, output_size: Any) -> None:
        super().__init__()
        items = output_size if isinstance(output_size, (tuple, list)) else (output_size,) * self._nd
        if len(items) != self._nd:
            raise ValueError(f"output_size: expected an int or a tuple of {self._nd} ints, got {output_size!r}")
        for o in items:  # None keeps that axis's input size (PyTorch)
            if o is not None:
                _ntuple(o, 1, "output_size")
        self.output_size = output_size

    def forward(self, x: Array) -> Array:
        check_spatial_input(x, self._nd, None, type(self).__name__)
        pool = ops.adaptive_avg_pool2d if self._nd == 2 else ops.adaptive_avg_pool1d
        y = pool(x, self.output_size)
        return self._save_for_backward(y, x.shape)

    def backward(self, grad_out: Array) -> Array:
        (shape,) = self._saved_for_backward(grad_out)
        back = ops.adaptive_avg_pool2d_backward if self._nd == 2 else ops.adaptive_avg_pool1d_backward
        return back(grad_out, shape)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveAvgPool2d(_AdaptiveAvgPoolNd):
    """Adaptive average pooling to ``output_size`` (int or (int, int); None keeps that axis), as
    ``torch.nn.AdaptiveAvgPool2d``: bin i covers rows [floor(i H / OH), ceil((i + 1) H / OH)),
    likewise columns; y = the bin's mean. (N, C, H, W) or (C, H, W) -> (N, C, OH, OW)."""

    _nd = 2


class AdaptiveAvgPool1d(_AdaptiveAvgPoolNd):
    """Adaptive average pooling of (N, C, L) or (C, L) to length ``output_size``, as
    ``torch.nn.AdaptiveAvgPool1d``."""

    _nd = 1
