"""Matrix product on pydl's GEMM kernel."""
from __future__ import annotations

import numpy as np

from .. import _C
from .._typing import Array
from .._validate import check_out, shape_str


def _matrix(x: Array, name: str) -> Array:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(x).__name__}")
    if x.dtype.char not in "fd":  # float32 / float64
        raise TypeError(f"{name}: expected dtype float32 or float64, got {x.dtype}")
    if x.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array, got shape {shape_str(x.shape)}")
    if not x.dtype.isnative:  # byte-swapped: the kernel reads native floats
        x = x.astype(x.dtype.newbyteorder("="))
    # The kernel reads rows with any stride (leading dimension) but needs unit inner stride.
    if not x.flags.c_contiguous:
        rows, cols = x.shape
        if cols > 1 and x.strides[1] != x.itemsize or rows > 1 and x.strides[0] < cols * x.itemsize:
            x = np.ascontiguousarray(x)
    return x if x.flags.aligned else x.copy()  # the kernel reads aligned elements only


def matmul(a: Array, b: Array, *, trans_a: bool = False, trans_b: bool = False, out: Array | None = None) -> Array:
    """Matrix product ``op(a) @ op(b)``, where ``op(x)`` is ``x.T`` when ``trans_x`` else ``x``.

    Parameters
    ----------
    a : ndarray of shape (M, K), or (K, M) when ``trans_a``
    b : ndarray of shape (K, N), or (N, K) when ``trans_b``
        Same float dtype as ``a`` (float32 or float64). Strided views are accepted (copied
        when their rows are not unit-stride).
    out : ndarray of shape (M, N), optional
        C-contiguous, writeable, dtype of ``a``. May share memory with ``a`` or ``b``.

    Returns
    -------
    ndarray of shape (M, N)
        ``C[i, j] = sum_k op(a)[i, k] * op(b)[k, j]`` (``out`` when given).
    """
    a = _matrix(a, "a")
    b = _matrix(b, "b")
    if b.dtype != a.dtype:
        raise TypeError(f"b: expected dtype {a.dtype} (as a), got {b.dtype}")
    m, k = (a.shape[1], a.shape[0]) if trans_a else a.shape
    kb, n = (b.shape[1], b.shape[0]) if trans_b else b.shape
    if kb != k:
        raise ValueError(f"b: inner sizes differ: op(a) has shape {shape_str((m, k))}, "
                         f"op(b) has shape {shape_str((kb, n))}")
    if out is None:
        c = np.empty((m, n), dtype=a.dtype)
        _C.gemm(a, b, c, bool(trans_a), bool(trans_b))  # positional: pybind11 keywords cost ~2 us
        return c
    check_out(out, "out", (m, n), a.dtype)
    if np.may_share_memory(out, a) or np.may_share_memory(out, b):  # bounds check: cheap, conservative
        c = np.empty((m, n), dtype=a.dtype)
        _C.gemm(a, b, c, bool(trans_a), bool(trans_b))  # positional: pybind11 keywords cost ~2 us
        out[...] = c
    else:
        _C.gemm(a, b, out, bool(trans_a), bool(trans_b))
    return out
