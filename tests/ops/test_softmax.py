"""Softmax / log-softmax over the last axis: pydl.ops and _C.softmax_forward/backward against a
numpy float64 formula, torch and finite differences; every ISA; special values; bad input."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import pydl
from pydl import _C
from pydl.testing import assert_close, numerical_grad


def ref_softmax(x, log=False):
    x = x.astype(np.float64)
    if x.size == 0:
        return x.copy()
    z = x - x.max(axis=-1, keepdims=True)
    lse = np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return z - lse if log else np.exp(z - lse)


def fwd(x, log):
    out = np.empty_like(x)
    _C.softmax_forward(x, out, log)
    return out


def bwd(g, y, log):
    gi = np.empty_like(g)
    _C.softmax_backward(g, y, gi, log)
    return gi


def tols(dtype):
    return (1e-5, 1e-6) if dtype == np.float32 else (1e-12, 1e-14)


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_matches_formula(isa, dtype, log):
    rng = np.random.default_rng(0)
    for shape in [(1,), (5,), (3, 1), (4, 17), (2, 3, 64), (7, 100), (2, 1000), (0, 5), (3, 0)]:
        x = (rng.standard_normal(shape) * 5).astype(dtype)
        rtol, atol = tols(dtype)
        assert_close(fwd(x, log), ref_softmax(x, log), rtol=rtol, atol=atol, err_msg=str(shape))


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_backward_against_torch(isa, dtype, log):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    for shape in [(3, 1), (4, 17), (2, 3, 70)]:
        x = (rng.standard_normal(shape) * 3).astype(dtype)
        g = rng.standard_normal(shape).astype(dtype)
        xt = torch.tensor(x.astype(np.float64), requires_grad=True)
        yt = (torch.log_softmax if log else torch.softmax)(xt, dim=-1)
        yt.backward(torch.tensor(g.astype(np.float64)))
        y = fwd(x, log)
        rtol, atol = tols(dtype)
        assert_close(y, yt.detach().numpy(), rtol=rtol, atol=atol)
        assert_close(bwd(g, y, log), xt.grad.numpy(), rtol=rtol, atol=10 * atol)


@pytest.mark.parametrize("log", [False, True])
def test_backward_finite_differences(log):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 9)) * 2
    w = rng.standard_normal((3, 9))
    num = numerical_grad(lambda: float(np.sum(w * fwd(x, log))), x)
    assert_close(bwd(w, fwd(x, log), log), num, rtol=1e-6, atol=1e-8)


def test_large_values_and_special_rows(isa):
    for dtype in (np.float32, np.float64):
        big = np.array([[1e30, 1e30 - 1e25, -1e30], [3e38, 3e38, 0.0]], dtype=dtype)
        assert_close(fwd(big, False), ref_softmax(big), rtol=1e-6, atol=0)
        inf, nan = np.inf, np.nan
        x = np.array([[0.0, inf, 1.0], [-inf, -inf, -inf], [0.0, nan, 1.0], [-inf, 0.0, 1.0]], dtype=dtype)
        with np.errstate(invalid="ignore"):
            for log in (False, True):
                np.testing.assert_array_equal(fwd(x, log)[:3], np.full((3, 3), nan, dtype))
                assert_close(fwd(x, log)[3], ref_softmax(x[3], log), rtol=1e-6, atol=0)


@settings(max_examples=25, deadline=None)
@given(x=hnp.arrays(st.sampled_from([np.float32, np.float64]), hnp.array_shapes(min_dims=1, max_dims=4, max_side=40),
                    elements=st.floats(-50, 50, width=32)))
def test_public_functions_any_shape(x):
    rtol, atol = tols(x.dtype)
    for fn, log in ((pydl.ops.softmax, False), (pydl.ops.log_softmax, True)):
        got = fn(x)
        assert got.shape == x.shape and got.dtype == x.dtype
        assert_close(got, ref_softmax(x, log), rtol=rtol, atol=atol * (50 if log else 1))


def test_in_place_and_thread_count_identical(isa):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((600, 1000)).astype(np.float32)
    for log in (False, True):
        pydl.set_num_threads(1)
        one = fwd(x, log)
        pydl.set_num_threads(2)
        y = x.copy()
        _C.softmax_forward(y, y, log)
        np.testing.assert_array_equal(one, y)
        g = rng.standard_normal(x.shape).astype(np.float32)
        pydl.set_num_threads(1)
        gi = bwd(g, one, log)
        pydl.set_num_threads(2)
        _C.softmax_backward(g, one, g, log)
        np.testing.assert_array_equal(gi, g)


def test_bad_input():
    with pytest.raises(ValueError, match="x.*shape \\(\\)"):
        pydl.ops.softmax(np.ones(()))
    with pytest.raises(TypeError, match="x"):
        pydl.ops.log_softmax([[1.0, 2.0]])
    with pytest.raises(TypeError, match="x.*int"):
        pydl.ops.softmax(np.arange(4))
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match="out.*shape"):
        _C.softmax_forward(x, np.empty((3, 2), np.float32))
    with pytest.raises(TypeError, match="out"):
        _C.softmax_forward(x, np.empty((2, 3)))
    with pytest.raises(ValueError, match="y.*shape"):
        _C.softmax_backward(x, np.zeros((2, 2), np.float32), np.empty_like(x))
    with pytest.raises(ValueError, match="grad_in.*overlaps"):
        buf = np.zeros(7, np.float32)
        _C.softmax_backward(x, np.ones_like(x), buf[1:].reshape(2, 3))  # ok: disjoint from x
        _C.softmax_backward(buf[:6].reshape(2, 3), np.ones_like(x), buf[1:].reshape(2, 3))
