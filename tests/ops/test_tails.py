"""Numerics at the tails (docs/RELIABILITY.md, "Numerics at the tails"; reliability issue, defect 7).

GELU used to lose all relative accuracy below x ~ -4 (1 + erf cancels): the wrong sign at
x = -5.45 on AVX2 and -0 from x <= -5.5. It is now computed through erfc / sigmoid(2u) on every
ISA path and in float64. Softmax, log-softmax and cross-entropy are checked on rows with huge
spreads, infinities, a single finite entry and equal entries, against float64 / mpmath.
"""
import math

import numpy as np
import pytest

import pydl
from pydl import _C

mpmath = pytest.importorskip("mpmath")  # test extra (pyproject.toml)
pytest.importorskip("scipy")  # (a scikit-learn dependency)

TINY32 = float(np.finfo(np.float32).tiny)
ROOT = {"gelu": -0.7517915, "gelu_tanh": -0.7524614}  # gelu'(x) = 0 there
C1 = 2 * math.sqrt(2 / math.pi)


def ref_fwd(act, x):
    x = x.astype(np.float64)
    if act == "gelu":
        from scipy.special import erfc
        return 0.5 * x * erfc(-x / np.sqrt(2))
    from scipy.special import expit
    return x * expit(C1 * (x + 0.044715 * x ** 3))


def ref_bwd(act, x):
    x = x.astype(np.float64)
    if act == "gelu":
        from scipy.special import erfc
        return 0.5 * erfc(-x / np.sqrt(2)) + x * np.exp(-x * x / 2) / np.sqrt(2 * np.pi)
    from scipy.special import expit
    v = C1 * (x + 0.044715 * x ** 3)
    s, s1 = expit(v), expit(-v)
    return s * (1 + x * s1 * C1 * (1 + 3 * 0.044715 * x * x))


def ulp_err(got, want):
    """|got - want| in ulp of the float32 result, where want is a normal float32; else 0."""
    w32 = np.abs(want).astype(np.float32)
    normal = np.abs(want) >= TINY32
    with np.errstate(invalid="ignore", over="ignore"):
        e = np.abs(got.astype(np.float64) - want) / np.spacing(w32).astype(np.float64)
    return np.where(normal & np.isfinite(want), e, 0.0), normal


def fwd(act, x):
    y = np.empty_like(x)
    _C.activation_forward(act, x, y)
    return y


def bwd(act, x, g=None):
    gi = np.empty_like(x)
    _C.activation_backward(act, np.ones_like(x) if g is None else g, x, None, gi)
    return gi


def sweep():
    return np.concatenate([np.linspace(-20, 0, 2_000_001, dtype=np.float32),
                           -np.logspace(-38, 1.31, 100_000).astype(np.float32)])


# Bounds in ulp, measured on AVX-512, AVX2 and generic (maxima 3.9, 3.3; backward 4.2, 8.0).
FWD_ULP = {"gelu": 4.5, "gelu_tanh": 4.0}
BWD_ULP = {"gelu": 5.0, "gelu_tanh": 9.0}


@pytest.mark.parametrize("act", ["gelu", "gelu_tanh"])
def test_negative_tail_relative_error(isa, act):
    x = sweep()
    y = fwd(act, x)
    want = ref_fwd(act, x)
    e, normal = ulp_err(y, want)
    assert e.max() <= FWD_ULP[act], (isa, act, e.max(), x[np.argmax(e)])
    # signs: negative wherever the result is a normal (or denormal but representable) number
    nz = want.astype(np.float32) != 0
    assert np.all(np.signbit(y[nz]) == (want[nz] < 0))
    assert np.all(y[x < 0] <= 0)
    # the values the issue names
    pt = np.array([-5.45, -5.5, -6.0, -8.0, -10.0] + ([-12.0, -13.0] if act == "gelu" else []), np.float32)
    assert np.all(fwd(act, pt) < 0)  # (gelu_tanh(-12) ~ -1e-50 underflows: its tail is lighter)


@pytest.mark.parametrize("act", ["gelu", "gelu_tanh"])
def test_whole_float32_range_in_chunks(isa, act):
    # every 257th bit pattern (all exponents, both signs); finite inputs only
    bits = np.arange(0, 1 << 32, 257, dtype=np.uint64).astype(np.uint32)
    x = bits.view(np.float32)
    x = x[np.isfinite(x)]
    for chunk in np.array_split(x, 8):
        y = fwd(act, chunk)
        want = ref_fwd(act, chunk)
        e, _ = ulp_err(y, want)
        assert e.max() <= FWD_ULP[act], (isa, act, e.max(), chunk[np.argmax(e)])
        g = bwd(act, chunk)
        d = ref_bwd(act, chunk)
        away = np.abs(chunk - ROOT[act]) > 0.25
        eb, _ = ulp_err(g, d)
        assert eb[away].max() <= BWD_ULP[act], (isa, act, eb[away].max(), chunk[away][np.argmax(eb[away])])


@pytest.mark.parametrize("act", ["gelu", "gelu_tanh"])
def test_backward_tail_and_root(isa, act):
    x = np.concatenate([sweep(), np.linspace(0, 20, 200_001, dtype=np.float32)])
    g = bwd(act, x)
    d = ref_bwd(act, x)
    e, _ = ulp_err(g, d)
    away = np.abs(x - ROOT[act]) > 0.25
    assert e[away].max() <= BWD_ULP[act], (isa, act, e[away].max(), x[away][np.argmax(e[away])])
    # near the zero of gelu' the error is absolute (the two terms of ~0.5 cancel): < 2^-23
    near = ~away
    assert np.abs(g[near] - d[near]).max() < 2.0 ** -23
    # grad_out scales exactly through (also huge ones: no overflow where the result is finite)
    big = np.full_like(x, 2.0 ** 100)
    np.testing.assert_array_equal(bwd(act, x, big)[away & (np.abs(g) > 1e-8)],
                                  (g * np.float32(2.0 ** 100))[away & (np.abs(g) > 1e-8)])


@pytest.mark.parametrize("act", ["gelu", "gelu_tanh"])
def test_special_values(isa, act):
    x = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 1e30, -1e30, 3e38, -3e38, 15.0, -15.0, 1e-45, -1e-45],
                 np.float32)
    y = fwd(act, x)
    assert y[0] == np.inf and np.isnan(y[1]) and np.isnan(y[2])  # -inf: NaN, as x/2 (1 + erf(x/sqrt2))
    assert y[3] == 0 and not np.signbit(y[3]) and y[4] == 0 and np.signbit(y[4])
    assert y[5] == np.float32(1e30) and y[6] == 0 and np.signbit(y[6])
    assert y[7] == np.float32(3e38) and y[8] == 0 and y[9] == np.float32(15.0) and y[10] == 0
    g = bwd(act, x)
    assert np.isnan(g[0]) and np.isnan(g[1]) and np.isnan(g[2])  # as torch: x phi(x) = inf * 0
    assert g[3] == 0.5 and g[4] == 0.5 and g[5] == 1 and g[6] == 0 and g[9] == 1 and g[10] == 0


@pytest.mark.parametrize("act", ["gelu", "gelu_tanh"])
def test_float64_tail_against_mpmath(act):
    mpmath.mp.dps = 50
    xs = [-0.5, -1.0, -3.0, -5.45, -5.5, -8.0, -12.0, -20.0, -30.0, -37.0, 0.3, 4.0, 30.0]
    if act == "gelu_tanh":
        xs = [x for x in xs if x > -18]  # e^v underflows float64 below ~ -18.6

    def f(x):
        x = mpmath.mpf(x)
        if act == "gelu":
            return x * mpmath.ncdf(x)
        return x / (1 + mpmath.exp(-mpmath.mpf(C1) * (x + mpmath.mpf(0.044715) * x ** 3)))

    def df(x):
        return mpmath.diff(f, mpmath.mpf(x))

    x = np.array(xs)
    y = fwd(act, x)
    g = bwd(act, x)
    for xi, yi, gi in zip(xs, y, g):
        # the argument x / sqrt 2 (or v) is rounded once: the condition number x^2 / 2 (or |v|)
        # times 2^-53, plus libm's error
        cond = max(1.0, xi * xi / 2 if act == "gelu" else 0.22 * abs(xi) ** 3)
        tol = 8 * cond * 2.0 ** -52
        assert abs(yi - float(f(xi))) <= tol * abs(float(f(xi))), (act, xi, yi, float(f(xi)))
        assert abs(gi - float(df(xi))) <= tol * abs(float(df(xi))) + 1e-300, (act, xi, gi, float(df(xi)))


# ---- softmax / log_softmax / cross-entropy at extreme logits ---------------------------------------

F32MAX = float(np.finfo(np.float32).max)
ROWS = {
    "spread_1e30": [1e30, 0.0, -1e30, 5.0],
    "plus_minus_3e38": [3e38, -3e38, 0.0, 3e38],
    "max_and_min": [F32MAX, -F32MAX, 1.0],
    "minus_inf_entries": [-np.inf, 1.0, -np.inf, 2.0],
    "single_finite": [-np.inf, -np.inf, 7.0, -np.inf],
    "all_equal_huge": [1e30] * 5,
    "all_equal_neg_huge": [-3e38] * 3,
    "all_equal": [2.5] * 7,
    "denormals": [1e-40, -1e-40, 0.0, 1e-45],
    "large_offset": [1e6 + 1, 1e6 - 1, 1e6 + 3, 1e6],
}


def ref_log_softmax(x):
    """Exact-ish: float64 (exact differences of float32 inputs) with mpmath's log-sum-exp."""
    x = np.asarray(x, np.float64)
    m = x.max()
    d = x - m
    s = mpmath.fsum(mpmath.exp(mpmath.mpf(v)) for v in d if v != -np.inf)
    return np.array([float(mpmath.mpf(v) - mpmath.log(s)) if v != -np.inf else -np.inf for v in d])


def row_case(name, dtype):
    r = np.array(ROWS[name], np.float64)
    if dtype == np.float64:  # the same rows at float64's scale: 3e38 -> 1.6e308, FLT_MAX -> DBL_MAX
        huge = np.isfinite(r) & (np.abs(r) > 1e29)
        r[huge] = np.sign(r[huge]) * np.exp(np.log(np.abs(r[huge])) - np.log(F32MAX) + np.log(np.finfo(np.float64).max))
        r[huge] = np.clip(r[huge], -np.finfo(np.float64).max, np.finfo(np.float64).max)
    return r.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(ROWS))
def test_softmax_log_softmax_extreme_rows(isa, name, dtype):
    x = row_case(name, dtype)
    want = ref_log_softmax(x)
    ls = pydl.ops.log_softmax(x[None])[0]
    sm = pydl.ops.softmax(x[None])[0]
    eps = np.finfo(dtype).eps
    w = want.astype(dtype)  # (overflows to -inf exactly where the true value is beyond the range)
    fin = np.isfinite(w)
    assert np.array_equal(np.isneginf(ls), ~fin)
    # log_softmax: absolute error <= 2 eps * (1 + |value|)  (measured: <= 0.6 eps)
    assert np.all(np.abs(ls[fin] - want[fin]) <= 2 * eps * (1 + np.abs(want[fin])))
    # softmax: relative error <= 4 eps where the result is normal, probabilities in [0, 1]
    p = np.exp(want)
    normal = p >= np.finfo(dtype).tiny
    assert np.all(np.abs(sm[normal] - p[normal]) <= 4 * eps * p[normal])
    assert np.all(sm[~normal] <= np.finfo(dtype).tiny) and np.all((sm >= 0) & (sm <= 1))
    assert abs(sm.sum() - 1) <= 8 * eps


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(ROWS))
@pytest.mark.parametrize("eps_ls", [0.0, 0.1])
def test_cross_entropy_extreme_rows(isa, name, dtype, eps_ls):
    x = row_case(name, dtype)[None]
    c = x.shape[1]
    want = ref_log_softmax(x[0])
    eps = np.finfo(dtype).eps
    for y in range(c):
        g = np.empty_like(x)
        loss = _C.cross_entropy(x, np.array([y]), grad=g, label_smoothing=eps_ls, reduction="sum")
        terms = [(1 - eps_ls) * -want[y]] + ([eps_ls / c * -want.sum()] if eps_ls else [])
        true = sum(terms)
        if dtype == np.float32 and eps_ls and np.isinf(want.astype(np.float32)).any() and np.isfinite(want).all():
            # float32 log-probabilities beyond -FLT_MAX are -inf (their correctly rounded value):
            # the smoothing term is then inf (documented)
            assert loss == np.inf
            continue
        if np.isinf(true):
            assert loss == np.inf
        else:
            # absolute error <= 4 eps (1 + |loss|): relative where the loss is not small
            assert abs(loss - true) <= 4 * eps * (1 + abs(true)), (y, loss, true)
        p = np.exp(want)
        gw = p * ((1 - eps_ls) + eps_ls) - (1 - eps_ls) * (np.arange(c) == y) - eps_ls / c
        assert np.all(np.abs(g[0] - gw) <= 4 * eps), (y, g[0], gw)
