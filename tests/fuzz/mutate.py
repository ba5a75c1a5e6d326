"""Hostile values for the fuzz harness: arrays of every dtype and layout, odd scalars, wrong
containers, wrong argument counts, aliasing (docs/RELIABILITY.md "Fuzzing").

All decisions are drawn through the ``Gen`` of targets.py, so a case replays from its seed.
"""
import os

import numpy as np

DTYPES = [np.int8, np.int32, np.int64, np.uint8, np.uint64, np.bool_, np.float16, np.float32, np.float64,
          np.longdouble, np.complex64, np.complex128, object, "S4", "U2", "M8[s]", [("a", "f4"), ("b", "i4")]]
# a broadcast view this large must never be materialized (the harness runs under an address-space limit)
HUGE = (1 << 31, 1 << 20)
# Misaligned arrays once reached the kernels (UBSan, csrc/ops/softmax.cpp: "load of misaligned
# address"); the binding layer now refuses them. PYDL_FUZZ_NO_UNALIGNED=1 leaves them out of the
# generated inputs (for bisecting other findings).
NO_UNALIGNED = os.environ.get("PYDL_FUZZ_NO_UNALIGNED") == "1"


def _float_dtype(a):
    return a.dtype if a.dtype.kind == "f" else np.dtype(np.float32)


def hostile_array(g, a):
    """A variant of ndarray ``a``: other dtype, byte order, layout, shape, contents or type."""
    dt = _float_dtype(a)
    k = g.int(0, 24)
    if k == 0:
        return a.astype(g.choice(DTYPES)) if a.dtype != object else a
    if k == 1:  # byte-swapped, same values
        return a.astype(a.dtype.newbyteorder()) if a.dtype.kind in "fiuc" else a
    if k == 2:
        return np.array(1.5, dt)  # 0-d
    if k == 3:  # empty along one axis
        shape = list(a.shape) or [1]
        shape[g.int(0, len(shape) - 1)] = 0
        return np.zeros(shape, a.dtype)
    if k == 4:  # zero-stride broadcast view of the same shape (read-only, overlapping itself)
        return np.broadcast_to(np.ones(1, a.dtype) if a.dtype != object else np.ones(1, dt), a.shape)
    if k == 5:  # huge but lazy
        return np.broadcast_to(np.ones(1, dt), HUGE[: max(a.ndim, 1)] if a.ndim <= 2 else HUGE + (1,) * (a.ndim - 2))
    if k == 6 and a.ndim:  # negative strides
        return a[(slice(None, None, -1),) * a.ndim]
    if k == 7 and a.ndim:  # non-contiguous, same shape
        big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
        v = big[..., ::2]
        v[...] = a
        return v
    if k == 8:  # read-only
        b = a.copy()
        b.flags.writeable = False
        return b
    if k == 9 and a.dtype.kind in "fiub" and not NO_UNALIGNED:  # unaligned data
        buf = np.zeros(a.nbytes + a.itemsize, np.uint8)
        b = buf[1:1 + a.nbytes].view(a.dtype).reshape(a.shape)
        b[...] = a
        return b
    if k == 10:  # Fortran order
        return np.asfortranarray(a)
    if k == 11 and a.dtype.kind in "fc":  # special values
        b = a.copy()
        if b.size:
            b.flat[:: max(1, b.size // 3)] = g.choice([np.nan, np.inf, -np.inf, 3e38, -0.0, 1e-45, 1e308])
        return b
    if k == 12:  # one dimension off by one
        shape = list(a.shape) or [1]
        i = g.int(0, len(shape) - 1)
        shape[i] = max(shape[i] + g.choice([-1, 1, 7]), 0)
        return np.zeros(shape, a.dtype)
    if k == 13:
        return a.reshape((1,) + a.shape)  # an extra axis
    if k == 14 and a.ndim:
        return a.reshape(a.shape[:-2] + (-1,)) if a.ndim >= 2 else a.reshape(())[()] if a.size == 1 else a[0]
    if k == 15:
        return a.tolist()
    if k == 16:
        return None
    if k == 17:
        return hostile_scalar(g, 1.0)
    if k == 18 and a.dtype.kind in "iu":  # out-of-range indices
        b = a.copy()
        if b.size:
            b.flat[g.int(0, b.size - 1)] = g.choice([-1, 2**31, 2**62, -2**63, np.iinfo(b.dtype).max])
        return b
    if k == 19:  # a subclass
        return np.ma.masked_array(a) if a.dtype != object else np.asmatrix(np.ones((1, 1)))
    if k == 20 and a.ndim >= 2:  # transposed view
        return a.T
    if k == 21:  # a huge shape with no data
        return np.empty((0, 1 << 40), dt)
    if k == 22:
        return memoryview(np.ascontiguousarray(a)) if a.dtype != object else a
    return a


def hostile_scalar(g, v):
    """A variant of a scalar hyperparameter (float, int, bool, str or None)."""
    return g.choice([float("nan"), float("inf"), -float("inf"), -1.0, 0.0, 1e308, -1e-320, 2**63, -2**63, 2**100,
                     -1, 0, 1, True, None, "0.5", "", b"x", [v], (v, v), complex(1, 1), np.float32(0.5), np.int64(-5),
                     np.array([1.0, 2.0]), object()])


def _hostile_sequence(g, v):
    """A variant of a list/tuple (of arrays or ints)."""
    v = list(v)
    k = g.int(0, 8)
    if k == 0:
        return v[:-1]
    if k == 1:
        return v + (v[-1:] if v else [None])
    if k == 2 and v:  # the same object twice (aliasing between items)
        return v + [v[0]]
    if k == 3 and v:
        i = g.int(0, len(v) - 1)
        v[i] = mutate_value(g, v[i])
        return v
    if k == 4:
        return tuple(v)
    if k == 5:
        return np.array(v, dtype=object) if v else np.array([])
    if k == 6:
        return iter(v)
    if k == 7:
        return [hostile_scalar(g, x) for x in v]
    return None


def mutate_value(g, v):
    """A hostile variant of any argument value."""
    if isinstance(v, np.ndarray):
        return hostile_array(g, v)
    if isinstance(v, (list, tuple)):
        return _hostile_sequence(g, v)
    if isinstance(v, dict):
        v = dict(v)
        if v:
            key = g.choice(sorted(v, key=repr))
            v[key] = mutate_value(g, v[key])
        return v
    return hostile_scalar(g, v)


def mutate_call(g, call):
    """Apply 0 to 3 mutations to a Call: replace one argument, alias two array arguments,
    drop or add a positional argument, add an unknown keyword."""
    for _ in range(g.choice([0, 1, 1, 1, 2, 3])):
        slots = [("a", i) for i in range(len(call.args))] + [("k", k) for k in call.kwargs]
        k = g.int(0, 9)
        if k <= 5 and slots:
            kind, key = g.choice(slots)
            if kind == "a":
                call.args[key] = mutate_value(g, call.args[key])
            else:
                call.kwargs[key] = mutate_value(g, call.kwargs[key])
        elif k == 6:  # alias: one array argument becomes (a view of) another one
            arrays = [i for i, a in enumerate(call.args) if isinstance(a, np.ndarray)]
            if len(arrays) >= 2:
                i, j = g.choice(arrays), g.choice(arrays)
                src = call.args[j]
                call.args[i] = src if g.bool() or src.ndim == 0 else src[..., : max(src.shape[-1] - 1, 0)]
        elif k == 7 and call.args:
            call.args.pop()
        elif k == 8:
            call.args.append(g.choice([None, 1, np.zeros(2, np.float32)]))
        else:
            call.kwargs[g.choice(["nonexistent", "out", "dtype"])] = None
