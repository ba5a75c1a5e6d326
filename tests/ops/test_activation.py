"""Activations: pydl.ops functions and the _C.activation_forward/backward kernels against numpy
float64 formulas, torch, and central finite differences; every ISA; bad input."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import pydl
from pydl import _C
from pydl.testing import assert_close, numerical_grad

KINDS = ["none", "relu", "leaky_relu", "sigmoid", "tanh", "gelu", "gelu_tanh"]
ALPHA = 0.2
_erf = np.vectorize(math.erf, otypes=[np.float64])


def ref_forward(kind, x, alpha=ALPHA):
    """float64 reference by the textbook formula."""
    x = x.astype(np.float64)
    if kind == "none":
        return x
    if kind == "relu":
        return np.where(x < 0, 0.0, x)
    if kind == "leaky_relu":
        return np.where(x < 0, alpha * x, x)
    if kind == "sigmoid":
        with np.errstate(over="ignore"):
            return 1.0 / (1.0 + np.exp(-x))
    if kind == "tanh":
        return np.tanh(x)
    if kind == "gelu":
        return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))
    if kind == "gelu_tanh":
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    raise ValueError(kind)


def forward(kind, x, alpha=ALPHA):
    out = np.empty_like(x)
    _C.activation_forward(kind, x, out, alpha)
    return out


def backward(kind, g, x, alpha=ALPHA):
    y = forward(kind, x, alpha)
    gi = np.empty_like(g)
    _C.activation_backward(kind, g, x, y, gi, alpha)
    return gi


def sample(n, dtype, seed=0, scale=3.0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n) * scale
    x[np.abs(x) < 1e-3] = 0.5  # keep finite differences off the relu kink
    return x.astype(dtype)


def tol(kind, dtype):
    # float32 kernels are a few ulp; gelu's 1 + erf cancels for x < 0 (absolute error ~ ulp(1) |x|).
    return (2e-6, 1e-6) if dtype == np.float32 else (1e-12, 1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", KINDS)
def test_forward_matches_formula(isa, kind, dtype):
    for n in (0, 1, 7, 16, 33, 1000):
        x = sample(n, dtype, seed=n)
        rtol, atol = tol(kind, dtype)
        assert_close(forward(kind, x), ref_forward(kind, x), rtol=rtol, atol=atol, err_msg=f"{kind} n={n}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", KINDS)
def test_backward_finite_differences(kind, dtype):
    # Gradient of sum(w * act(x)) by central differences in float64, then the kernel in dtype.
    x = sample(40, np.float64, seed=1)
    w = sample(40, np.float64, seed=2)
    num = numerical_grad(lambda: float(np.sum(w * forward(kind, x))), x)
    got = backward(kind, w.astype(dtype), x.astype(dtype))
    rtol, atol = (1e-4, 1e-5) if dtype == np.float32 else (1e-6, 1e-8)
    assert_close(got, num, rtol=rtol, atol=atol, err_msg=kind)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", KINDS)
def test_against_torch(isa, kind, dtype):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    fns = {"none": lambda t: t, "relu": F.relu, "leaky_relu": lambda t: F.leaky_relu(t, ALPHA),
           "sigmoid": torch.sigmoid, "tanh": torch.tanh, "gelu": F.gelu,
           "gelu_tanh": lambda t: F.gelu(t, approximate="tanh")}
    x = sample(517, dtype, seed=3)
    g = sample(517, dtype, seed=4)
    # torch in float64 on the same inputs is the reference for both dtypes.
    xt = torch.tensor(x.astype(np.float64), requires_grad=True)
    yt = fns[kind](xt)
    yt.backward(torch.tensor(g.astype(np.float64)))
    rtol, atol = tol(kind, dtype)
    got_y, got_g = forward(kind, x), backward(kind, g, x)
    assert got_y.dtype == dtype and got_g.dtype == dtype
    assert_close(got_y, yt.detach().numpy(), rtol=rtol, atol=atol)
    # Backward: |g| ~ 10 and the 1 + tanh / 1 + erf cancellation for x < 0 scale the float32 error.
    assert_close(got_g, xt.grad.numpy(), rtol=rtol, atol=30 * atol if dtype == np.float32 else atol)


def test_special_values(isa):
    # IEEE cases as torch (float64) computes them; assert_array_equal treats NaN == NaN, and -0.0 == 0.0.
    nan, inf = np.nan, np.inf
    want = {"relu": [nan, inf, 0, 0, 0], "leaky_relu": [nan, inf, -inf, 0, 0],
            "sigmoid": [nan, 1, 0, 0.5, 0.5], "tanh": [nan, 1, -1, 0, 0],
            "gelu": [nan, inf, nan, 0, 0], "gelu_tanh": [nan, inf, nan, 0, 0]}
    for dtype in (np.float32, np.float64):
        x = np.array([nan, inf, -inf, 0.0, -0.0], dtype=dtype)
        for kind, w in want.items():
            np.testing.assert_array_equal(forward(kind, x), np.array(w, dtype), err_msg=f"{kind} {dtype}")


@settings(max_examples=25, deadline=None)
@given(x=hnp.arrays(st.sampled_from([np.float32, np.float64]), hnp.array_shapes(min_dims=0, max_dims=4, max_side=9),
                    elements=st.floats(-30, 30, width=32)))
def test_public_functions_any_shape(x):
    x64 = x.astype(np.float64)
    rtol, atol = tol("gelu", x.dtype)
    cases = [(pydl.ops.relu(x), ref_forward("relu", x64)),
             (pydl.ops.leaky_relu(x, 0.3), ref_forward("leaky_relu", x64, 0.3)),
             (pydl.ops.sigmoid(x), ref_forward("sigmoid", x64)),
             (pydl.ops.tanh(x), ref_forward("tanh", x64)),
             (pydl.ops.gelu(x), ref_forward("gelu", x64)),
             (pydl.ops.gelu(x, approximate="tanh"), ref_forward("gelu_tanh", x64))]
    for got, want in cases:
        assert got.shape == x.shape and got.dtype == x.dtype
        assert_close(got, want, rtol=rtol, atol=atol * 30)  # 30: |x| up to 30 scales gelu's absolute error


def test_non_contiguous_input_and_default_slope():
    x = sample(64, np.float32).reshape(8, 8)[:, ::2]
    assert_close(pydl.ops.leaky_relu(x), ref_forward("leaky_relu", x, 0.01), rtol=1e-6, atol=0)


@pytest.mark.parametrize("kind", ["relu", "sigmoid", "tanh", "gelu"])
def test_in_place_and_thread_count_identical(isa, kind):
    x = sample(300_001, np.float32, seed=5)
    pydl.set_num_threads(1)
    one = forward(kind, x)
    pydl.set_num_threads(2)
    two = forward(kind, x)
    np.testing.assert_array_equal(one, two)
    y = x.copy()
    _C.activation_forward(kind, y, y)
    np.testing.assert_array_equal(y, one)
    g = sample(300_001, np.float32, seed=6)
    gi = np.empty_like(g)
    pydl.set_num_threads(1)
    _C.activation_backward(kind, g, x, one, gi)
    pydl.set_num_threads(2)
    _C.activation_backward(kind, g, x, one, g)  # grad_in aliases grad_out
    np.testing.assert_array_equal(gi, g)


def test_bad_input_public():
    with pytest.raises(TypeError, match="x"):
        pydl.ops.relu([1.0, 2.0])
    with pytest.raises(TypeError, match="x.*int64"):
        pydl.ops.sigmoid(np.arange(3))
    with pytest.raises(TypeError, match="approximate"):
        pydl.ops.gelu(np.zeros(3), approximate=None)
    with pytest.raises(ValueError, match="approximate"):
        pydl.ops.gelu(np.zeros(3), approximate="exact")
    with pytest.raises(TypeError, match="negative_slope"):
        pydl.ops.leaky_relu(np.zeros(3), negative_slope="0.1")


def test_bad_input_bindings():
    x = np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError, match="kind"):
        _C.activation_forward("swish", x, np.empty_like(x))
    with pytest.raises(TypeError, match="out.*float64"):
        _C.activation_forward("relu", x, np.empty((4, 3)))
    with pytest.raises(ValueError, match="out.*shape"):
        _C.activation_forward("relu", x, np.empty((3, 4), np.float32))
    with pytest.raises(ValueError, match="x.*contiguous"):
        _C.activation_forward("relu", np.zeros((4, 6), np.float32)[:, ::2], np.empty_like(x))
    with pytest.raises(ValueError, match="read-only"):
        ro = np.empty_like(x)
        ro.flags.writeable = False
        _C.activation_forward("relu", x, ro)
    buf = np.zeros(13, np.float32)
    with pytest.raises(ValueError, match="overlaps"):
        _C.activation_forward("relu", buf[:12], buf[1:])
    with pytest.raises(TypeError, match="x.*ndarray"):
        _C.activation_forward("relu", [0.0], np.empty(1, np.float32))
    with pytest.raises(TypeError, match="x.*float32 or float64"):
        _C.activation_forward("relu", np.zeros(3, np.int32), np.zeros(3, np.int32))
    with pytest.raises(ValueError, match="y.*required"):
        _C.activation_backward("tanh", x, x, None, np.empty_like(x))
    with pytest.raises(ValueError, match="x.*required"):
        _C.activation_backward("gelu", x, None, x, np.empty_like(x))
    with pytest.raises(ValueError, match="y.*shape"):
        _C.activation_backward("sigmoid", x, None, np.zeros(12, np.float32), np.empty_like(x))
    _C.activation_backward("sigmoid", x, None, x, np.empty_like(x))  # x unused may be None
