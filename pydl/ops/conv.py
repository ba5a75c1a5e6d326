"""Convolution as torch.nn.functional: ``conv1d`` / ``conv2d`` and their backward.

Shapes (NCHW, PyTorch's layout; conv1d is conv2d with H = 1)::

    x       (N, C_in, H, W)                 or unbatched (C_in, H, W)
    weight  (C_out, C_in / groups, kH, kW)
    bias    (C_out,)
    y       (N, C_out, H_out, W_out),  H_out = (H + pad_top + pad_bottom - dilation*(kH - 1) - 1) // stride + 1

    y[n, o, i, j] = act(bias[o] + sum_{c, p, q} weight[o, c, p, q] * x_pad[n, g*C_in/groups + c, i*s + p*d, j*s + q*d])

with ``g = o // (C_out / groups)`` (cross-correlation, as PyTorch). ``padding`` is an int, a pair,
``"valid"`` (no padding) or ``"same"`` (stride 1 only; total padding ``dilation*(k - 1)`` per axis,
the odd extra element on the bottom/right, exactly as PyTorch). The backward returns::

    dz = grad_out * [y > 0]  (activation="relu", from the forward output) else grad_out
    dx = conv_transpose(dz, weight),   dW = sum_n dz_n (x) x_n,   db = sum_{n,i,j} dz

Kernels (csrc/conv): float32 convolutions (3x3, 5x5, depthwise, strided, 1-D, ...) run direct
kernels on a zero-padded copy of the input (split into the stride's phases when strided; a batch of
1-D signals stacked into one row), vectorised over output channels or over pixels of full-width
rows (csrc/conv/direct.h), with no im2col copy; the data gradient gathers or scatters, whichever
touches fewer pixels. Other cases use im2col + the packed GEMM with the bias and ReLU stored by the
GEMM (1x1 stride-1 convolutions skip im2col) and col2im for dx. ``PYDL_CONV_DIRECT=0`` turns the
direct kernels off, ``=1`` uses them for every shape they take (docs/ARCHITECTURE.md §4b). Threads
split images, the weight gradient is reduced over image chunks fixed by the shape, so results are
bitwise identical for any thread count. Every float32 sum adds at most 64 products in one register
(blocked summation): float32 results agree with a float64 reference to a few 1e-7 normwise
relative, gradients included.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import numpy as np

from .. import _C
from .._typing import Array
from .._validate import FLOAT_DTYPES, check_out, shape_str

__all__ = ["conv1d", "conv2d", "conv1d_backward", "conv2d_backward"]

#: an int, or one int per spatial axis
IntOrTuple = Union[int, Sequence[int]]
#: also "valid" or "same"
Padding = Union[int, Sequence[int], str]


def _tuple(v, n, name):
    """An int or a length-n sequence of ints -> tuple of n ints (bools rejected)."""
    if isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)):
        return (int(v),) * n
    if isinstance(v, (tuple, list)) and len(v) == n and all(
            isinstance(e, (int, np.integer)) and not isinstance(e, (bool, np.bool_)) for e in v):
        return tuple(int(e) for e in v)
    raise TypeError(f"{name}: expected an int or a tuple of {n} ints, got {v!r}")


def _positive(v, n, name):
    t = _tuple(v, n, name)
    if any(e < 1 for e in t):
        raise ValueError(f"{name}: must be positive, got {v!r}")
    return t


def _check_array(a, name, ndims):
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(a).__name__}")
    if a.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name}: expected dtype float32 or float64, got {a.dtype}")
    if a.ndim not in ndims:
        want = " or ".join(f"{d}-D" for d in ndims)
        raise ValueError(f"{name}: expected a {want} array, got shape {shape_str(a.shape)}")


def _geometry(x, weight, bias, stride, padding, dilation, groups, nd):
    """Validate a conv{nd}d call; return (x4, w4, bias, stride2, pad4, dil2, groups, unbatched).

    x4 is (N, C, H, W) and w4 (O, C/groups, kH, kW) (1-D: H = kH = 1), C-contiguous views when
    possible; pad4 is (top, bottom, left, right).
    """
    _check_array(x, "x", (nd + 1, nd + 2))
    _check_array(weight, "weight", (nd + 2,))
    if weight.dtype != x.dtype:
        raise TypeError(f"weight: expected dtype {x.dtype} (as x), got {weight.dtype}")
    if bias is not None:
        _check_array(bias, "bias", (1,))
        if bias.dtype != x.dtype:
            raise TypeError(f"bias: expected dtype {x.dtype} (as x), got {bias.dtype}")
        if bias.shape[0] != weight.shape[0]:
            raise ValueError(f"bias: expected shape ({weight.shape[0]},) for weight {shape_str(weight.shape)}, "
                             f"got {shape_str(bias.shape)}")
    if isinstance(groups, (bool, np.bool_)) or not isinstance(groups, (int, np.integer)):
        raise TypeError(f"groups: expected an int, got {groups!r}")
    groups = int(groups)
    if groups < 1:
        raise ValueError(f"groups: must be positive, got {groups}")
    stride = _positive(stride, nd, "stride")
    dilation = _positive(dilation, nd, "dilation")
    unbatched = x.ndim == nd + 1
    xs = x.shape[1:] if not unbatched else x.shape
    C, O = xs[0], weight.shape[0]
    if C % groups or O % groups:
        raise ValueError(f"groups: {groups} does not divide the channels: x {shape_str(x.shape)} has {C} input "
                         f"channels, weight {shape_str(weight.shape)} has {O} output channels")
    if weight.shape[1] * groups != C:
        raise ValueError(f"weight: shape {shape_str(weight.shape)} expects {weight.shape[1] * groups} input channels "
                         f"(weight.shape[1] * groups={groups}), x {shape_str(x.shape)} has {C}")
    ksize = weight.shape[2:]
    if any(k < 1 for k in ksize):
        raise ValueError(f"weight: empty kernel, shape {shape_str(weight.shape)}")
    if isinstance(padding, str):
        if padding == "valid":
            pads = [(0, 0)] * nd
        elif padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"padding: 'same' is not supported with stride {stride} (needs stride 1)")
            pads = []
            for k, d in zip(ksize, dilation):
                total = d * (k - 1)
                pads.append((total // 2, total - total // 2))
        else:
            raise ValueError(f"padding: expected an int, a tuple, 'valid' or 'same', got {padding!r}")
    else:
        p = _tuple(padding, nd, "padding")
        if any(e < 0 for e in p):
            raise ValueError(f"padding: must be non-negative, got {padding!r}")
        pads = [(e, e) for e in p]
    spatial = xs[1:]
    for L, k, d, (a, b) in zip(spatial, ksize, dilation, pads):
        if L + a + b < d * (k - 1) + 1:
            padded = tuple(L + a + b for L, (a, b) in zip(spatial, pads))
            raise ValueError(f"weight: kernel size {tuple(ksize)} (dilation {dilation}) is larger than the padded "
                             f"input {padded} of x {shape_str(x.shape)}")
    x4 = x[None] if unbatched else x
    w4 = weight
    if nd == 1:
        x4 = x4[:, :, None, :]
        w4 = weight[:, :, None, :]
        stride, dilation, pads = (1,) + stride, (1,) + dilation, [(0, 0)] + pads
    x4 = np.ascontiguousarray(x4)
    w4 = np.ascontiguousarray(w4)
    if bias is not None:
        bias = np.ascontiguousarray(bias)
    pad4 = pads[0] + pads[1]
    return x4, w4, bias, stride, pad4, dilation, groups, unbatched


def _check_like(a, name, shape, dtype):
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(a).__name__}")
    if a.dtype != dtype:
        raise TypeError(f"{name}: expected dtype {dtype} (as x), got {a.dtype}")
    if a.shape != tuple(shape):
        raise ValueError(f"{name}: expected shape {shape_str(shape)}, got {shape_str(a.shape)}")
    return a


def _out_size(x4, w4, stride, pad4, dilation):
    H, W = x4.shape[2:]
    kh, kw = w4.shape[2:]
    oh = (H + pad4[0] + pad4[1] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (W + pad4[2] + pad4[3] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    return oh, ow


def _act(activation):
    if activation not in ("none", "relu"):
        raise ValueError(f"activation: expected 'none' or 'relu', got {activation!r}")
    return activation


#: validated geometries by call signature (_plan_key): a training loop repeats a few shapes, and
#: validating them again costs more than a small convolution's kernel time
_PLANS: dict = {}
_MAX_PLANS = 256


def _plain(v):
    """An int or a tuple of ints (bools and numpy integers excluded: they take the checked path)."""
    t = type(v)
    return t is int or (t is tuple and all(type(e) is int for e in v))


def _plan_key(x, weight, bias, stride, padding, dilation, groups, nd):
    """A hashable key of a call's geometry, or None when an argument is not of the plain types the
    key represents exactly (then the call is validated in full, every time)."""
    if (type(x) is not np.ndarray or type(weight) is not np.ndarray
            or (bias is not None and type(bias) is not np.ndarray) or type(groups) is not int
            or not _plain(stride) or not _plain(dilation) or not (type(padding) is str or _plain(padding))):
        return None
    return (nd, x.shape, x.dtype, weight.shape, weight.dtype, None if bias is None else (bias.shape, bias.dtype),
            stride, padding, dilation, groups)


def _prepare(x, weight, bias, stride, padding, dilation, groups, nd):
    """Validate a conv{nd}d call (once per call signature); return (x4, w4, bias, plan).

    plan = (x4 shape, w4 shape, stride2, pad4, dil2, groups, unbatched, y4 shape, user y shape):
    x4 (N, C, H, W) and w4 (O, C/groups, kH, kW) C-contiguous (1-D: H = kH = 1); pad4 is (top,
    bottom, left, right); the user's y shape drops N when unbatched and H for 1-D.
    """
    key = _plan_key(x, weight, bias, stride, padding, dilation, groups, nd)
    plan = _PLANS.get(key) if key is not None else None
    if plan is None:
        x4, w4, bias, s, p, d, g, unbatched = _geometry(x, weight, bias, stride, padding, dilation, groups, nd)
        oh, ow = _out_size(x4, w4, s, p, d)
        y4 = (x4.shape[0], w4.shape[0], oh, ow)
        user = y4[1:] if unbatched else y4
        if nd == 1:
            user = user[:-2] + user[-1:]
        plan = (x4.shape, w4.shape, s, p, d, g, unbatched, y4, user)
        if key is not None:
            if len(_PLANS) >= _MAX_PLANS:
                _PLANS.clear()
            _PLANS[key] = plan
        return x4, w4, bias, plan
    x4 = np.ascontiguousarray(x).reshape(plan[0])
    w4 = np.ascontiguousarray(weight).reshape(plan[1])
    if bias is not None:
        bias = np.ascontiguousarray(bias)
    return x4, w4, bias, plan


def _conv(x, weight, bias, stride, padding, dilation, groups, activation, nd):
    x4, w4, b, plan = _prepare(x, weight, bias, stride, padding, dilation, groups, nd)
    _, _, s, p, d, g, _, y4, user = plan
    y = np.empty(y4, x.dtype)
    _C.conv2d_forward(x4, w4, b, y, s, p, d, g, _act(activation))
    return y.reshape(user)


def conv2d(x: Array, weight: Array, bias: Array | None = None, stride: IntOrTuple = 1, padding: Padding = 0,
           dilation: IntOrTuple = 1, groups: int = 1, activation: str = "none") -> Array:
    """2-D convolution (cross-correlation) as ``torch.nn.functional.conv2d``.

    Parameters
    ----------
    x : ndarray of shape (N, C_in, H, W) or (C_in, H, W), float32 or float64
    weight : ndarray of shape (C_out, C_in / groups, kH, kW), the dtype of ``x``
    bias : ndarray of shape (C_out,) or None
    stride, dilation : int or (int, int), positive
    padding : int, (int, int), "valid" or "same"
    groups : int, dividing C_in and C_out (groups == C_in is depthwise)
    activation : {"none", "relu"}
        "relu" applies ReLU as the output is stored (a fused Conv2d + ReLU).

    Returns
    -------
    ndarray of shape (N, C_out, H_out, W_out) (unbatched input: no N axis)
    """
    return _conv(x, weight, bias, stride, padding, dilation, groups, activation, 2)


def conv1d(x: Array, weight: Array, bias: Array | None = None, stride: IntOrTuple = 1, padding: Padding = 0,
           dilation: IntOrTuple = 1, groups: int = 1, activation: str = "none") -> Array:
    """1-D convolution as ``torch.nn.functional.conv1d``: x (N, C_in, L) or (C_in, L), weight
    (C_out, C_in / groups, k); returns (N, C_out, L_out). Arguments as :func:`conv2d` (ints or 1-tuples)."""
    return _conv(x, weight, bias, stride, padding, dilation, groups, activation, 1)


def _conv_backward(grad_out, x, weight, stride, padding, dilation, groups, input_grad, bias_grad, grad_weight,
                   grad_bias, out, activation, nd):
    x4, w4, _, plan = _prepare(x, weight, None, stride, padding, dilation, groups, nd)
    _, _, s, p, d, g, _, want, want_user = plan
    dy = np.ascontiguousarray(_check_like(grad_out, "grad_out", want_user, x.dtype)).reshape(want)
    y = None
    if _act(activation) == "relu":
        if out is None:
            raise ValueError("out: the forward output is needed for activation='relu'")
        y = np.ascontiguousarray(_check_like(out, "out", want_user, x.dtype)).reshape(want)
    if grad_weight is not None:
        gw = check_out(grad_weight, "grad_weight", weight.shape, x.dtype).reshape(w4.shape)  # a view: contiguous
    else:
        gw = np.empty_like(w4)
    gb = None
    if bias_grad:
        gb = (check_out(grad_bias, "grad_bias", (w4.shape[0],), x.dtype) if grad_bias is not None
              else np.empty(w4.shape[0], x.dtype))
    gx = np.empty_like(x4) if input_grad else None
    _C.conv2d_backward(dy, x4, w4, y, gx, gw, gb, s, p, d, g, activation, grad_weight is not None,
                       bias_grad and grad_bias is not None)
    if grad_weight is None:
        gw = gw.reshape(weight.shape)
    else:
        gw = grad_weight
    if gx is not None:
        gx = gx.reshape(x.shape)
    return gx, gw, gb


def conv2d_backward(grad_out: Array, x: Array, weight: Array, stride: IntOrTuple = 1, padding: Padding = 0,
                    dilation: IntOrTuple = 1, groups: int = 1, *, input_grad: bool = True, bias_grad: bool = True,
                    grad_weight: Array | None = None, grad_bias: Array | None = None, out: Array | None = None,
                    activation: str = "none") -> tuple[Array | None, Array, Array | None]:
    """Gradients of :func:`conv2d` given ``grad_out`` = dL/dy.

    Parameters
    ----------
    grad_out : ndarray of shape (N, C_out, H_out, W_out)
    x, weight, stride, padding, dilation, groups : as given to :func:`conv2d`
    input_grad : bool
        Compute dL/dx (False skips it: None in its place).
    bias_grad : bool
        Compute dL/dbias (False: None in its place).
    grad_weight, grad_bias : ndarray or None
        When given, the gradient is added into them in place (accumulation, as
        :func:`pydl.ops.linear_backward`); otherwise new arrays are returned.
    out, activation :
        With activation="relu", the forward output ``out``: dz = grad_out * [out > 0].

    Returns
    -------
    (grad_x or None, grad_weight, grad_bias or None)
    """
    return _conv_backward(grad_out, x, weight, stride, padding, dilation, groups, input_grad, bias_grad,
                          grad_weight, grad_bias, out, activation, 2)


def conv1d_backward(grad_out: Array, x: Array, weight: Array, stride: IntOrTuple = 1, padding: Padding = 0,
                    dilation: IntOrTuple = 1, groups: int = 1, *, input_grad: bool = True, bias_grad: bool = True,
                    grad_weight: Array | None = None, grad_bias: Array | None = None, out: Array | None = None,
                    activation: str = "none") -> tuple[Array | None, Array, Array | None]:
    """Gradients of :func:`conv1d`; arguments and returns as :func:`conv2d_backward` with (N, C, L) arrays."""
    return _conv_backward(grad_out, x, weight, stride, padding, dilation, groups, input_grad, bias_grad,
                          grad_weight, grad_bias, out, activation, 1)
