"""Pooling as torch.nn.functional: max, average and adaptive average, 1-D and 2-D, with backward.

Shapes: x (N, C, H, W) or unbatched (C, H, W) (1-D: (N, C, L) or (C, L)); every (n, c) plane is
pooled on its own. With window k, stride s (default k) and padding p (0 <= p <= k // 2)::

    H_out = (H + 2p - k) // s + 1
    max:  y[i, j] = max over rows i*s - p + [0, k), columns j*s - p + [0, k) (padding is -inf);
          the index of the first maximum (into the H*W plane; a NaN wins) feeds the backward,
          dx[idx] += dy
    avg:  y[i, j] = (sum over the window) / (kH*kW)   (count_include_pad=True); dx spreads dy / (kH*kW)
    adaptive_avg to (OH, OW): rows [floor(i*H/OH), ceil((i+1)*H/OH)), likewise columns; y = bin mean

Kernels: csrc/conv/pool.cpp, direct loops, sums in double, threads split planes (results do not
depend on the thread count).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Optional, Union, overload

import numpy as np

from .. import _C
from .._typing import Array
from .._validate import check_shape, shape_str
from .conv import _check_array, _positive, _tuple

__all__ = ["max_pool1d", "max_pool2d", "max_pool1d_backward", "max_pool2d_backward",
           "avg_pool1d", "avg_pool2d", "avg_pool1d_backward", "avg_pool2d_backward",
           "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool1d_backward",
           "adaptive_avg_pool2d_backward"]

IntOrTuple = Union[int, Sequence[int]]
#: adaptive output size: an int, or per axis an int or None (keep that axis)
OutputSize = Union[int, Sequence[Optional[int]]]


def _as4(x, name, nd):
    """x of rank nd+1 or nd+2 -> (x4 (N, C, H, W) C-contiguous, unbatched flag)."""
    _check_array(x, name, (nd + 1, nd + 2))
    unbatched = x.ndim == nd + 1
    x4 = x[None] if unbatched else x
    if nd == 1:
        x4 = x4[:, :, None, :]
    return np.ascontiguousarray(x4), unbatched


def _back(y4, unbatched, nd):
    if nd == 1:
        y4 = y4[:, :, 0, :]
    return y4[0] if unbatched else y4


def _window(x4, kernel_size, stride, padding, nd):
    """Validate (kernel_size, stride, padding) for x4; return 2-D triples (k, s, p) and the output size."""
    k = _positive(kernel_size, nd, "kernel_size")
    s = k if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0) else _positive(stride, nd, "stride")
    p = _tuple(padding, nd, "padding")
    if any(e < 0 or 2 * e > kk for e, kk in zip(p, k)):
        raise ValueError(f"padding: should be at most half of kernel_size {k} (and non-negative), got {p}")
    if nd == 1:
        k, s, p = (1,) + k, (1,) + s, (0,) + p
    H, W = x4.shape[2:]
    if H + 2 * p[0] < k[0] or W + 2 * p[1] < k[1]:
        given = shape_str(x4.shape[2:] if nd == 2 else x4.shape[3:])
        raise ValueError(f"kernel_size: {k[-nd:]} is larger than the padded input {given} (padding {p[-nd:]})")
    out = ((H + 2 * p[0] - k[0]) // s[0] + 1, (W + 2 * p[1] - k[1]) // s[1] + 1)
    return k, s, p, out


def _max_pool(x, kernel_size, stride, padding, return_indices, nd):
    x4, unbatched = _as4(x, "x", nd)
    k, s, p, (oh, ow) = _window(x4, kernel_size, stride, padding, nd)
    y = np.empty((x4.shape[0], x4.shape[1], oh, ow), x.dtype)
    idx = np.empty(y.shape, np.int64)
    _C.max_pool2d_forward(x4, y, idx, k, s, p)
    y = _back(y, unbatched, nd)
    return (y, _back(idx, unbatched, nd)) if return_indices else y


@overload
def max_pool2d(x: Array, kernel_size: IntOrTuple, stride: IntOrTuple | None = ..., padding: IntOrTuple = ...,
               return_indices: Literal[False] = ...) -> Array: ...
@overload
def max_pool2d(x: Array, kernel_size: IntOrTuple, stride: IntOrTuple | None = ..., padding: IntOrTuple = ..., *,
               return_indices: Literal[True]) -> tuple[Array, Array]: ...
def max_pool2d(x: Array, kernel_size: IntOrTuple, stride: IntOrTuple | None = None, padding: IntOrTuple = 0,
               return_indices: bool = False) -> Array | tuple[Array, Array]:
    """Max pooling over (H, W), as ``torch.nn.functional.max_pool2d`` (dilation 1, floor mode).

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W) or (C, H, W), float32 or float64
    kernel_size : int or (int, int)
    stride : int, (int, int) or None (= kernel_size)
    padding : int or (int, int), at most kernel_size // 2 (implicit -inf)
    return_indices : bool
        Also return the int64 indices (into each H*W plane) of the maxima, for
        :func:`max_pool2d_backward`.

    Returns
    -------
    y : ndarray of shape (N, C, H_out, W_out); and indices of the same shape if asked.
    """
    return _max_pool(x, kernel_size, stride, padding, return_indices, 2)


@overload
def max_pool1d(x: Array, kernel_size: IntOrTuple, stride: IntOrTuple | None = ..., padding: IntOrTuple = ...,
               return_indices: Literal[False] = ...) -> Array: ...
@overload
def max_pool1d(x: Array, kernel_size: IntOrTuple, stride: IntOrTuple | None = ..., padding: IntOrTuple = ..., *,
               return_indices: Literal[True]) -> tuple[Array, Array]: ...
def max_pool1d(x: Array, kernel_size: IntOrTuple, stride: IntOrTuple | None = None, padding: IntOrTuple = 0,
               return_indices: bool = False) -> Array | tuple[Array, Array]:
    """Max pooling over L of x (N, C, L) or (C, L), as ``torch.nn.functional.max_pool1d``;
    indices index into L. See :func:`max_pool2d`."""
    return _max_pool(x, kernel_size, stride, padding, return_indices, 1)


def _max_pool_backward(grad_out, indices, input_shape, nd):
    dy4, unbatched = _as4(grad_out, "grad_out", nd)
    if not isinstance(indices, np.ndarray) or indices.shape != grad_out.shape:
        got = shape_str(indices.shape) if isinstance(indices, np.ndarray) else type(indices).__name__
        raise ValueError(f"indices: expected an array of the shape of grad_out {shape_str(grad_out.shape)}, got {got}")
    if indices.dtype != np.int64:
        raise TypeError(f"indices: expected dtype int64, got {indices.dtype}")
    input_shape = check_shape(input_shape, "input_shape", grad_out.ndim)
    if input_shape[:-nd] != grad_out.shape[:-nd]:
        raise ValueError(f"input_shape: {input_shape} does not match grad_out {shape_str(grad_out.shape)}")
    idx4 = np.ascontiguousarray(indices).reshape(dy4.shape)
    dx4 = np.empty(dy4.shape[:2] + ((1,) + input_shape[-1:] if nd == 1 else input_shape[-2:]), grad_out.dtype)
    _C.max_pool2d_backward(dy4, idx4, dx4)
    return dx4.reshape(input_shape)


def max_pool2d_backward(grad_out: Array, indices: Array, input_shape: Sequence[int]) -> Array:
    """dL/dx of :func:`max_pool2d`: ``grad_out`` (N, C, H_out, W_out) added at ``indices`` into
    zeros of ``input_shape`` (N, C, H, W)."""
    return _max_pool_backward(grad_out, indices, input_shape, 2)


def max_pool1d_backward(grad_out: Array, indices: Array, input_shape: Sequence[int]) -> Array:
    """dL/dx of :func:`max_pool1d` (see :func:`max_pool2d_backward`)."""
    return _max_pool_backward(grad_out, indices, input_shape, 1)


def avg_pool2d(x: Array, kernel_size: IntOrTuple, stride: IntOrTuple | None = None, padding: IntOrTuple = 0) -> Array:
    """Average pooling as ``torch.nn.functional.avg_pool2d`` with count_include_pad=True:
    y = window sum / (kH*kW). Arguments and shapes as :func:`max_pool2d`."""
    return _avg_pool(x, kernel_size, stride, padding, 2)


def avg_pool1d(x: Array, kernel_size: IntOrTuple, stride: IntOrTuple | None = None, padding: IntOrTuple = 0) -> Array:
    """Average pooling over L (count_include_pad=True), as ``torch.nn.functional.avg_pool1d``."""
    return _avg_pool(x, kernel_size, stride, padding, 1)


def _avg_pool(x, kernel_size, stride, padding, nd):
    x4, unbatched = _as4(x, "x", nd)
    k, s, p, (oh, ow) = _window(x4, kernel_size, stride, padding, nd)
    y = np.empty((x4.shape[0], x4.shape[1], oh, ow), x.dtype)
    _C.avg_pool2d_forward(x4, y, k, s, p)
    return _back(y, unbatched, nd)


def _grad_geometry(grad_out, input_shape, nd):
    dy4, unbatched = _as4(grad_out, "grad_out", nd)
    input_shape = check_shape(input_shape, "input_shape", grad_out.ndim)
    if input_shape[:-nd] != grad_out.shape[:-nd]:
        raise ValueError(f"input_shape: {input_shape} does not match grad_out {shape_str(grad_out.shape)}")
    shape4 = dy4.shape[:2] + ((1,) + input_shape[-1:] if nd == 1 else input_shape[-2:])
    return dy4, shape4, input_shape


def _avg_pool_backward(grad_out, input_shape, kernel_size, stride, padding, nd):
    dy4, shape4, input_shape = _grad_geometry(grad_out, input_shape, nd)
    dx4 = np.empty(shape4, grad_out.dtype)
    k, s, p, out = _window(dx4, kernel_size, stride, padding, nd)
    if out != dy4.shape[2:]:
        raise ValueError(f"grad_out: expected spatial size {out[-nd:]} for input_shape {input_shape}, "
                         f"got {shape_str(grad_out.shape)}")
    _C.avg_pool2d_backward(dy4, dx4, k, s, p)
    return dx4.reshape(input_shape)


def avg_pool2d_backward(grad_out: Array, input_shape: Sequence[int], kernel_size: IntOrTuple,
                        stride: IntOrTuple | None = None, padding: IntOrTuple = 0) -> Array:
    """dL/dx of :func:`avg_pool2d`: each grad_out element spread as 1/(kH*kW) over its window."""
    return _avg_pool_backward(grad_out, input_shape, kernel_size, stride, padding, 2)


def avg_pool1d_backward(grad_out: Array, input_shape: Sequence[int], kernel_size: IntOrTuple,
                        stride: IntOrTuple | None = None, padding: IntOrTuple = 0) -> Array:
    """dL/dx of :func:`avg_pool1d`."""
    return _avg_pool_backward(grad_out, input_shape, kernel_size, stride, padding, 1)


def _adaptive(x, output_size, nd):
    x4, unbatched = _as4(x, "x", nd)
    if nd == 2 and isinstance(output_size, (tuple, list)) and len(output_size) == 2:
        output_size = tuple(x4.shape[2 + i] if o is None else o for i, o in enumerate(output_size))
    out = _positive(output_size, nd, "output_size")
    if nd == 1:
        out = (1,) + out
    if x4.size and (x4.shape[2] < 1 or x4.shape[3] < 1):
        raise ValueError(f"x: empty spatial dimensions, shape {shape_str(x.shape)}")
    y = np.empty(x4.shape[:2] + out, x.dtype)
    _C.adaptive_avg_pool2d_forward(x4, y)
    return _back(y, unbatched, nd)


def adaptive_avg_pool2d(x: Array, output_size: OutputSize) -> Array:
    """Adaptive average pooling to ``output_size`` (int or (int, int); None keeps that axis), as
    ``torch.nn.functional.adaptive_avg_pool2d``: bin i covers rows [floor(i*H/OH), ceil((i+1)*H/OH))."""
    return _adaptive(x, output_size, 2)


def adaptive_avg_pool1d(x: Array, output_size: int | Sequence[int]) -> Array:
    """Adaptive average pooling of (N, C, L) to length ``output_size``."""
    return _adaptive(x, output_size, 1)


def _adaptive_backward(grad_out, input_shape, nd):
    dy4, shape4, input_shape = _grad_geometry(grad_out, input_shape, nd)
    dx4 = np.empty(shape4, grad_out.dtype)
    _C.adaptive_avg_pool2d_backward(dy4, dx4)
    return dx4.reshape(input_shape)


def adaptive_avg_pool2d_backward(grad_out: Array, input_shape: Sequence[int]) -> Array:
    """dL/dx of :func:`adaptive_avg_pool2d`: each grad_out element spread evenly over its bin."""
    return _adaptive_backward(grad_out, input_shape, 2)


def adaptive_avg_pool1d_backward(grad_out: Array, input_shape: Sequence[int]) -> Array:
    """dL/dx of :func:`adaptive_avg_pool1d`."""
    return _adaptive_backward(grad_out, input_shape, 1)
