"""pydl.ops pooling (max / avg / adaptive avg, 1-D and 2-D) and their backward: torch parity,
central differences, NaN and ties as torch, thread-count determinism, bad input."""
import numpy as np
import pytest

import pydl
from pydl import _C, ops
from pydl.testing import numerical_grad

torch = pytest.importorskip("torch")
F = torch.nn.functional

# (shape, kernel_size, stride, padding)
WINDOWS_2D = [
    ((2, 3, 7, 6), 2, None, 0),
    ((2, 3, 7, 6), 3, 2, 1),
    ((1, 2, 9, 8), (3, 2), (1, 2), (1, 1)),
    ((3, 1, 5, 5), 5, 1, 2),
    ((2, 4, 8, 8), (2, 4), None, (1, 2)),
    ((0, 3, 6, 6), 2, None, 0),
]
WINDOWS_1D = [
    ((2, 3, 11), 2, None, 0),
    ((2, 3, 11), 3, 2, 1),
    ((1, 4, 7), 4, 1, 2),
]
ADAPTIVE = [((2, 3, 7, 6), (3, 4)), ((1, 2, 10, 9), 4), ((2, 2, 5, 5), (5, 1)), ((1, 1, 3, 7), (6, 9)),
            ((1, 2, 8, 8), (None, 3))]
ADAPTIVE_1D = [((2, 3, 11), 4), ((1, 2, 5), 7), ((2, 1, 9), 1)]


def _tol(dtype):
    return dict(rtol=1e-9, atol=1e-12) if dtype == np.float64 else dict(rtol=2e-4, atol=2e-6)


def _torch(fn, x, dy, **kw):
    tx = torch.tensor(x, requires_grad=True)
    y = fn(tx, **kw)
    y.backward(torch.tensor(dy))
    return y.detach().numpy(), tx.grad.numpy()


def _rand(shape, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _pool_fns(kind, nd):
    """(pydl forward, pydl backward, torch functional) of a pooling kind in nd dimensions."""
    name = f"{kind}_pool{nd}d"
    return getattr(ops, name), getattr(ops, name + "_backward"), getattr(F, name)


pool_cases = pytest.mark.parametrize(
    "nd,case", [(2, c) for c in WINDOWS_2D] + [(1, c) for c in WINDOWS_1D])
float_dtypes = pytest.mark.parametrize("dtype", [np.float64, np.float32])


@float_dtypes
@pool_cases
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool_matches_torch(kind, nd, case, dtype):
    """Values, max indices and input gradients against torch.nn.functional."""
    shape, k, s, p = case
    x = _rand(shape, dtype)
    pool, back, tpool = _pool_fns(kind, nd)
    y = pool(x, k, s, p)
    dy = _rand(y.shape, dtype, 1)
    ty, tgx = _torch(tpool, x, dy, kernel_size=k, stride=s, padding=p)
    if kind == "max":
        y2, idx = pool(x, k, s, p, return_indices=True)
        _, tidx = tpool(torch.tensor(x), k, s, p, return_indices=True)
        np.testing.assert_array_equal(y, ty)
        np.testing.assert_array_equal(y2, y)
        np.testing.assert_array_equal(idx, tidx.numpy())
        dx = back(dy, idx, x.shape)
    else:
        np.testing.assert_allclose(y, ty, **_tol(dtype))
        dx = back(dy, x.shape, k, s, p)
    np.testing.assert_allclose(dx, tgx, **_tol(dtype))


def test_max_pool_nan_ties_and_padding_as_torch():
    x = np.array([[[[1.0, 1.0, np.nan, 2.0], [1.0, 3.0, 3.0, 3.0], [-np.inf, -np.inf, 0.5, np.nan]]]])
    for k, s, p in ((2, 1, 0), (2, 2, 1), (3, 1, 1)):
        y, idx = ops.max_pool2d(x, k, s, p, return_indices=True)
        ty, tidx = F.max_pool2d(torch.tensor(x), k, s, p, return_indices=True)
        np.testing.assert_array_equal(y, ty.numpy())
        np.testing.assert_array_equal(idx, tidx.numpy())


@float_dtypes
@pytest.mark.parametrize("nd,case", [(2, c) for c in ADAPTIVE] + [(1, c) for c in ADAPTIVE_1D])
def test_adaptive_avg_pool_matches_torch(nd, case, dtype):
    shape, out = case
    x = _rand(shape, dtype)
    pool, back, tpool = ((ops.adaptive_avg_pool2d, ops.adaptive_avg_pool2d_backward, F.adaptive_avg_pool2d)
                         if nd == 2 else
                         (ops.adaptive_avg_pool1d, ops.adaptive_avg_pool1d_backward, F.adaptive_avg_pool1d))
    y = pool(x, out)
    dy = _rand(y.shape, dtype, 1)
    ty, tgx = _torch(tpool, x, dy, output_size=out)
    np.testing.assert_allclose(y, ty, **_tol(dtype))
    np.testing.assert_allclose(back(dy, x.shape), tgx, **_tol(dtype))


def test_unbatched_pooling():
    x = _rand((3, 7, 6), np.float64)
    np.testing.assert_array_equal(ops.max_pool2d(x, 2), F.max_pool2d(torch.tensor(x), 2).numpy())
    np.testing.assert_allclose(ops.avg_pool2d(x, 3, 2, 1), F.avg_pool2d(torch.tensor(x), 3, 2, 1).numpy())
    np.testing.assert_allclose(ops.adaptive_avg_pool1d(x, 4), F.adaptive_avg_pool1d(torch.tensor(x), 4).numpy())


def _gradcheck(f, back, x):
    r = _rand(f(x).shape, np.float64, 2)
    g = back(r)
    np.testing.assert_allclose(g, numerical_grad(lambda: float((f(x) * r).sum()), x), rtol=1e-6, atol=1e-8)


def test_central_differences():
    x = _rand((2, 2, 5, 6), np.float64, 3)
    _gradcheck(lambda v: ops.avg_pool2d(v, 3, 2, 1), lambda r: ops.avg_pool2d_backward(r, x.shape, 3, 2, 1), x)
    _gradcheck(lambda v: ops.adaptive_avg_pool2d(v, (3, 4)), lambda r: ops.adaptive_avg_pool2d_backward(r, x.shape), x)
    _, idx = ops.max_pool2d(x, 2, 1, 1, return_indices=True)  # distinct values: max is differentiable
    _gradcheck(lambda v: ops.max_pool2d(v, 2, 1, 1), lambda r: ops.max_pool2d_backward(r, idx, x.shape), x)
    x1 = _rand((2, 3, 9), np.float64, 4)
    _gradcheck(lambda v: ops.avg_pool1d(v, 3, 2, 1), lambda r: ops.avg_pool1d_backward(r, x1.shape, 3, 2, 1), x1)
    _, idx1 = ops.max_pool1d(x1, 3, 2, 1, return_indices=True)
    _gradcheck(lambda v: ops.max_pool1d(v, 3, 2, 1), lambda r: ops.max_pool1d_backward(r, idx1, x1.shape), x1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bitwise_identical_for_any_thread_count(dtype):
    x = _rand((8, 16, 20, 20), dtype)
    out = []
    for n in (1, 2, 3):
        pydl.set_num_threads(n)
        y, idx = ops.max_pool2d(x, 3, 2, 1, return_indices=True)
        a = ops.avg_pool2d(x, 3, 2, 1)
        ad = ops.adaptive_avg_pool2d(x, 7)
        out.append((y, idx, a, ad, ops.max_pool2d_backward(y, idx, x.shape),
                    ops.avg_pool2d_backward(a, x.shape, 3, 2, 1), ops.adaptive_avg_pool2d_backward(ad, x.shape)))
    for other in out[1:]:
        for a, b in zip(out[0], other):
            assert np.array_equal(a, b)


def _bad(fn, exc, match):
    with pytest.raises(exc, match=match):
        fn()


def test_bad_input_named():
    x = np.zeros((2, 3, 6, 6), np.float32)
    _bad(lambda: ops.max_pool2d(x, 3, padding=2), ValueError, r"padding: should be at most half")
    _bad(lambda: ops.avg_pool2d(x, (2, 4), padding=(1, 3)), ValueError, r"padding: should be at most half")
    _bad(lambda: ops.max_pool1d(x[0], 2, padding=-1), ValueError, r"padding")
    _bad(lambda: ops.max_pool2d(x, 0), ValueError, r"kernel_size: must be positive")
    _bad(lambda: ops.max_pool2d(x, 2, stride=0), ValueError, r"stride: must be positive")
    _bad(lambda: ops.max_pool2d(x, 9, padding=1), ValueError, r"kernel_size: \(9, 9\) is larger than the padded input")
    _bad(lambda: ops.max_pool2d(x[0, 0], 2), ValueError, r"x: expected a 3-D or 4-D array, got shape \(6, 6\)")
    _bad(lambda: ops.avg_pool2d(x.astype(np.int64), 2), TypeError, r"x: expected dtype float32 or float64")
    _bad(lambda: ops.adaptive_avg_pool2d(x, 0), ValueError, r"output_size: must be positive")
    _bad(lambda: ops.adaptive_avg_pool2d(x, (1, 2, 3)), TypeError, r"output_size")
    y, idx = ops.max_pool2d(x, 2, return_indices=True)
    _bad(lambda: ops.max_pool2d_backward(y, idx.astype(np.int32), x.shape), TypeError, r"indices: expected dtype int64")
    _bad(lambda: ops.max_pool2d_backward(y, idx[:1], x.shape), ValueError, r"indices: expected an array of the shape")
    _bad(lambda: ops.max_pool2d_backward(y, idx + 100, x.shape), ValueError, r"indices: an index lies outside")
    _bad(lambda: ops.max_pool2d_backward(y, idx, (2, 4, 6, 6)), ValueError, r"input_shape")
    _bad(lambda: ops.avg_pool2d_backward(y, x.shape, 3), ValueError, r"grad_out: expected spatial size")
    _bad(lambda: _C.avg_pool2d_forward(x, np.zeros((2, 3, 2, 2), np.float32), (2, 2), (2, 2), (0, 0)), ValueError,
         r"out: expected shape \(2,3,3,3,?\), got \(2,3,2,2")
    _bad(lambda: _C.max_pool2d_forward(x, x, np.zeros(x.shape, np.int64), (1, 1), (1, 1), (0, 0)), ValueError,
         r"out: must not share memory with input")
