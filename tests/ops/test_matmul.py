"""pydl.ops.matmul and _C.gemm against a numpy float64 reference, on every ISA."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pydl
from pydl import _C

DTYPES = [np.float32, np.float64]


def op(x, t):
    return x.T if t else x


def make(shape, dtype, rng, lo=-1.0, hi=1.0):
    return rng.uniform(lo, hi, size=shape).astype(dtype)


def operands(m, n, k, ta, tb, dtype, rng):
    a = make((k, m) if ta else (m, k), dtype, rng)
    b = make((n, k) if tb else (k, n), dtype, rng)
    return a, b


def expected(a, b, ta, tb, alpha=1.0, beta=0.0, c=None, bias=None, act="none", slope=0.01):
    """The float64 reference: act(alpha * op(a) op(b) + beta * c + bias)."""
    r = alpha * (op(a, ta).astype(np.float64) @ op(b, tb).astype(np.float64))
    if beta != 0:
        r = r + beta * c.astype(np.float64)
    if bias is not None:
        r = r + bias.astype(np.float64)
    if act == "relu":
        r = np.where(r < 0, 0.0, r)
    elif act == "leaky_relu":
        r = np.where(r < 0, r * slope, r)
    elif act == "sigmoid":
        r = 1.0 / (1.0 + np.exp(-r))
    elif act == "tanh":
        r = np.tanh(r)
    elif act == "gelu":
        r = 0.5 * r * (1.0 + np.vectorize(math.erf)(r / math.sqrt(2.0)))
    elif act == "gelu_tanh":
        r = 0.5 * r * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (r + 0.044715 * r**3)))
    return r


def assert_gemm_close(actual, ref, a, b, k, dtype, extra_scale=0.0):
    """Tolerance scaled by K: float32 accumulates K products, each rounded relative to |a||b|."""
    amax = float(np.max(np.abs(a))) if a.size else 0.0
    bmax = float(np.max(np.abs(b))) if b.size else 0.0
    scale = max(k, 1) * amax * bmax + extra_scale
    eps = 1e-6 if np.dtype(dtype) == np.float32 else 1e-14
    assert actual.dtype == np.dtype(dtype)
    np.testing.assert_allclose(actual, ref, rtol=10 * eps, atol=eps * scale + 1e-30)


SHAPES = [  # (M, N, K)
    (0, 0, 0), (0, 5, 3), (4, 0, 3), (3, 4, 0), (1, 1, 1), (1, 7, 1), (5, 1, 9), (1, 1, 300),
    (2, 3, 5), (7, 11, 13), (17, 31, 29), (37, 41, 43), (97, 3, 101), (3, 97, 89),
    (64, 64, 64), (100, 200, 50), (257, 129, 65), (513, 19, 7), (11, 600, 5),
    (23, 40, 2), (35, 9, 1),  # packed edge slivers of rows shorter than a vector
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,n,k", SHAPES)
def test_matmul_shapes(m, n, k, dtype, isa):
    rng = np.random.default_rng(m * 1000 + n * 10 + k)
    a, b = operands(m, n, k, False, False, dtype, rng)
    c = pydl.ops.matmul(a, b)
    assert c.shape == (m, n)
    assert_gemm_close(c, expected(a, b, False, False), a, b, k, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (13, 37, 29), (67, 45, 130), (150, 70, 300)])
def test_matmul_transposes(m, n, k, ta, tb, dtype, isa):
    rng = np.random.default_rng(7)
    a, b = operands(m, n, k, ta, tb, dtype, rng)
    c = pydl.ops.matmul(a, b, trans_a=ta, trans_b=tb)
    assert_gemm_close(c, expected(a, b, ta, tb), a, b, k, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta,tb", [(False, False), (False, True), (True, False), (True, True)])
@pytest.mark.parametrize("n,k", [(5, 3), (40, 25), (70, 6)])
def test_gemm_every_edge_row_count(n, k, ta, tb, dtype, isa):
    """Every edge sliver height (M = 1 ... 25 covers 1 ... MR rows on each ISA): edge slivers whose
    height has a register block of its own read A in place, the others are packed."""
    rng = np.random.default_rng(11)
    for m in range(1, 26):
        a, b = operands(m, n, k, ta, tb, dtype, rng)
        c = np.full((m, n), np.nan, dtype)
        _C.gemm(a, b, c, ta, tb)
        assert_gemm_close(c, expected(a, b, ta, tb), a, b, k, dtype)
        bias = make((n,), dtype, rng)
        c0 = make((m, n), dtype, rng)
        c = c0.copy()
        _C.gemm(a, b, c, ta, tb, alpha=0.5, beta=0.25, bias=bias, activation="relu")
        ref = expected(a, b, ta, tb, alpha=0.5, beta=0.25, c=c0, bias=bias, act="relu")
        assert_gemm_close(c, ref, a, b, k, dtype, extra_scale=1.0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1024])
def test_matmul_large_square(n, dtype, isa):
    rng = np.random.default_rng(1)
    a, b = operands(n, n, 96, False, True, dtype, rng)  # large M, N; modest K keeps it fast
    c = pydl.ops.matmul(a, b, trans_b=True)
    assert_gemm_close(c, expected(a, b, False, True), a, b, 96, dtype)


@pytest.mark.parametrize("ta,tb", [(False, False), (True, True)])
def test_matmul_beyond_1024(ta, tb, isa):
    rng = np.random.default_rng(2)
    m, n, k = 1100, 37, 1031
    a, b = operands(m, n, k, ta, tb, np.float32, rng)
    c = pydl.ops.matmul(a, b, trans_a=ta, trans_b=tb)
    assert_gemm_close(c, expected(a, b, ta, tb), a, b, k, np.float32)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta,tb", [(False, False), (True, True)])
def test_gemm_across_row_panels_and_k_blocks(ta, tb, dtype, isa):
    """M past the A panel (MC rows, a few hundred to a few thousand depending on the caches; split
    into equal panels) and K past the K block (KC at most 2048), with N wide enough that A is
    packed (padded rows for op(A) = A) and with alpha, beta, bias and relu applied on the last K
    block of every panel."""
    rng = np.random.default_rng(9)
    m, n, k = 4100, 150, 2100
    a, b = operands(m, n, k, ta, tb, dtype, rng)
    c0 = make((m, n), dtype, rng)
    bias = make((n,), dtype, rng)
    c = c0.copy()
    _C.gemm(a, b, c, ta, tb, alpha=0.5, beta=0.25, bias=bias, activation="relu")
    ref = expected(a, b, ta, tb, alpha=0.5, beta=0.25, c=c0, bias=bias, act="relu")
    assert_gemm_close(c, ref, a, b, k, dtype, extra_scale=1.0)


def at_offset(shape, dtype, offset):
    """A C-contiguous array of `shape` whose data starts `offset` elements past a 64-byte line."""
    size = int(np.prod(shape))
    raw = np.zeros(size + 64, dtype)
    start = (-raw.ctypes.data % 64) // raw.itemsize + offset
    return raw[start:start + size].reshape(shape)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("m,n,k", [(25, 3136, 6), (13, 600, 20)])
def test_gemm_small_path_any_output_alignment(m, n, k, ta, dtype, isa):
    """The small path starts its column strips on C's cache lines when C's rows sit past one (a
    narrower first strip): every element's arithmetic is the same, so C at any offset within a
    line gives the same bits, and matches the float64 reference (alpha, beta, bias, relu)."""
    rng = np.random.default_rng(5)
    a, b = operands(m, n, k, ta, False, dtype, rng)
    c0 = make((m, n), dtype, rng)
    bias = make((n,), dtype, rng)
    ref = expected(a, b, ta, False, alpha=0.5, beta=0.25, c=c0, bias=bias, act="relu")
    out = []
    for offset in range(64 // np.dtype(dtype).itemsize):
        c = at_offset((m, n), dtype, offset)
        c[...] = c0
        _C.gemm(a, b, c, ta, False, alpha=0.5, beta=0.25, bias=bias, activation="relu")
        assert_gemm_close(c, ref, a, b, k, dtype, extra_scale=1.0)
        out.append(c.copy())
    for c in out[1:]:
        np.testing.assert_array_equal(c, out[0])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ["none", "relu", "leaky_relu"])
@pytest.mark.parametrize("alpha,beta", [(1.0, 0.0), (0.5, 1.0), (-2.0, 0.25)])
@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (19, 45, 37), (70, 130, 600), (5, 9, 0)])
def test_gemm_epilogue(m, n, k, alpha, beta, act, dtype, isa):
    rng = np.random.default_rng(3)
    a, b = operands(m, n, k, False, True, dtype, rng)
    c = make((m, n), dtype, rng)
    bias = make((n,), dtype, rng)
    ref = expected(a, b, False, True, alpha, beta, c, bias, act, 0.1)
    _C.gemm(a, b, c, trans_b=True, alpha=alpha, beta=beta, bias=bias, activation=act, negative_slope=0.1)
    assert_gemm_close(c, ref, a, b, k * abs(alpha), dtype, extra_scale=abs(beta) + 1.0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ["sigmoid", "tanh", "gelu", "gelu_tanh"])
@pytest.mark.parametrize("m,n,k", [(3, 5, 7), (70, 130, 300), (20, 130, 10)])
def test_gemm_other_activations(m, n, k, act, dtype, isa):
    rng = np.random.default_rng(13)
    a, b = operands(m, n, k, True, False, dtype, rng)
    c = make((m, n), dtype, rng)
    bias = make((n,), dtype, rng)
    ref = expected(a, b, True, False, 0.5, 1.0, c, bias, act)
    c_ref = c.copy()
    _C.gemm(a, b, c, trans_a=True, alpha=0.5, beta=1.0, bias=bias, activation=act)
    _C.gemm_reference(a, b, c_ref, trans_a=True, alpha=0.5, beta=1.0, bias=bias, activation=act)
    # every activation here has |f'| <= 1.13: the pre-activation tolerance carries over
    for got in (c, c_ref):
        assert_gemm_close(got, ref, a, b, 1.2 * k * 0.5, dtype, extra_scale=3.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_reference_matches_numpy(dtype):
    rng = np.random.default_rng(4)
    for ta in (False, True):
        for tb in (False, True):
            a, b = operands(23, 17, 41, ta, tb, dtype, rng)
            c = make((23, 17), dtype, rng)
            bias = make((17,), dtype, rng)
            ref = expected(a, b, ta, tb, 1.5, -1.0, c, bias, "leaky_relu", 0.2)
            _C.gemm_reference(a, b, c, trans_a=ta, trans_b=tb, alpha=1.5, beta=-1.0, bias=bias,
                              activation="leaky_relu", negative_slope=0.2)
            assert_gemm_close(c, ref, a, b, 41 * 1.5, dtype, extra_scale=2.0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta,tb", [(False, False), (False, True), (True, False), (True, True)])
@pytest.mark.parametrize("m,n,k", [(37, 53, 71), (37, 131, 10)])  # the second: wide strips (K <= 16)
def test_gemm_leading_dimensions(m, n, k, ta, tb, dtype, isa):
    """Sliced views: rows longer than the matrix; elements outside c stay untouched."""
    rng = np.random.default_rng(5)
    big_a = make((k + 5, m + 9) if ta else (m + 5, k + 9), dtype, rng)
    big_b = make((n + 3, k + 6) if tb else (k + 3, n + 6), dtype, rng)
    a = big_a[2:2 + (k if ta else m), 4:4 + (m if ta else k)]
    b = big_b[1:1 + (n if tb else k), 3:3 + (k if tb else n)]
    big_c = make((m + 4, n + 7), dtype, rng)
    before = big_c.copy()
    c = big_c[1:1 + m, 2:2 + n]
    bias = make((n,), dtype, rng)
    ref = expected(a, b, ta, tb, 1.0, 0.5, c, bias)
    _C.gemm(a, b, c, trans_a=ta, trans_b=tb, beta=0.5, bias=bias)
    assert_gemm_close(c, ref, a, b, k, dtype, extra_scale=2.0)
    mask = np.ones(big_c.shape, bool)
    mask[1:1 + m, 2:2 + n] = False
    np.testing.assert_array_equal(big_c[mask], before[mask])


@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_inf_propagate(dtype, isa):
    rng = np.random.default_rng(6)
    m, n, k = 40, 50, 300
    a, b = operands(m, n, k, False, False, dtype, rng)
    a[3, 7] = np.nan
    b[11, 20] = np.inf
    b[12, 21] = -np.inf
    ref = expected(a, b, False, False)
    c = pydl.ops.matmul(a, b)
    np.testing.assert_array_equal(np.isnan(c), np.isnan(ref))
    np.testing.assert_array_equal(np.isposinf(c), np.isposinf(ref))
    np.testing.assert_array_equal(np.isneginf(c), np.isneginf(ref))
    assert np.isnan(c[3]).all() and np.isnan(c[:, 21]).any()
    fin = np.isfinite(ref)
    np.testing.assert_allclose(c[fin], ref[fin], rtol=1e-4, atol=1e-4 * k)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [0, 5, 400])
def test_beta_zero_ignores_nan_in_c(k, dtype, isa):
    rng = np.random.default_rng(8)
    a, b = operands(33, 47, k, False, False, dtype, rng)
    c = np.full((33, 47), np.nan, dtype=dtype)
    _C.gemm(a, b, c, beta=0.0)
    assert np.isfinite(c).all()
    assert_gemm_close(c, expected(a, b, False, False), a, b, k, dtype)


# Few rows of A against B^T: the dot-product path (M <= 2 at any K, M <= 8 from K = 256), its
# edges (rows and columns past a block, K not a multiple of the vector), and its neighbours.
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (1, 37, 15), (2, 5, 17), (3, 9, 255), (3, 9, 256), (5, 23, 300),
                                   (7, 29, 512), (8, 41, 1000), (6, 25, 3136), (9, 13, 400)])
@pytest.mark.parametrize("act", ["none", "leaky_relu", "gelu"])
def test_gemm_few_rows_times_b_transposed(m, n, k, act, dtype, isa):
    rng = np.random.default_rng(m * 100 + n + k)
    a, b = operands(m, n, k, False, True, dtype, rng)
    c = make((m, n), dtype, rng)
    bias = make((n,), dtype, rng)
    ref = expected(a, b, False, True, 0.75, -0.5, c, bias, act, 0.1)
    _C.gemm(a, b, c, trans_b=True, alpha=0.75, beta=-0.5, bias=bias, activation=act, negative_slope=0.1)
    assert_gemm_close(c, ref, a, b, 1.2 * k * 0.75, dtype, extra_scale=2.0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta,tb,m,n,k", [(False, False, 301, 517, 613), (True, True, 301, 517, 613),
                                         (False, True, 301, 517, 613),
                                         (False, False, 20, 3000, 200),  # 2 A slivers: column parts
                                         (True, False, 2000, 20, 300),   # A^T read in place
                                         (False, True, 6, 3000, 400)])   # the dot-product path
def test_one_vs_two_threads_bitwise(ta, tb, m, n, k, dtype, isa):
    rng = np.random.default_rng(9)
    a, b = operands(m, n, k, ta, tb, dtype, rng)
    one, two = gemm_on_one_and_two_threads(a, b, make((m, n), dtype, rng), make((n,), dtype, rng), ta, tb)
    np.testing.assert_array_equal(one, two)


def gemm_on_one_and_two_threads(a, b, c0, bias, ta=False, tb=False):
    """act(op(a) op(b) + 0.5 c0 + bias) with relu, computed on 1 and on 2 threads."""
    out = []
    for threads in (1, 2):
        pydl.set_num_threads(threads)
        c = c0.copy()
        _C.gemm(a, b, c, trans_a=ta, trans_b=tb, beta=0.5, bias=bias, activation="relu")
        out.append(c)
    return out


@pytest.mark.parametrize("dtype,n,k", [(np.float32, 4103, 4100), (np.float64, 2903, 2900)])
def test_gemm_b_beyond_l3_packed_row_by_row(dtype, n, k, isa):
    """A B of more than 64 MiB (beyond half of any L3 this runs on) is packed row by row on AVX2
    (every sliver NR wide, the partial last one zero-padded): the same bits as the sliver-by-sliver
    pack of a narrower B with the same K blocks, for any thread count, and the float64 reference."""
    rng = np.random.default_rng(21)
    m, n_small = 30, 1000                            # 5 A slivers on AVX2: B is packed
    a, b = operands(m, n, k, False, False, dtype, rng)
    bias = make((n,), dtype, rng)
    c0 = make((m, n), dtype, rng)
    out = gemm_on_one_and_two_threads(a, b, c0, bias)
    np.testing.assert_array_equal(out[0], out[1])
    small = c0[:, :n_small].copy()
    _C.gemm(a, np.ascontiguousarray(b[:, :n_small]), small, beta=0.5, bias=bias[:n_small], activation="relu")
    np.testing.assert_array_equal(out[0][:, :n_small], small)
    ref = expected(a, b, False, False, beta=0.5, c=c0, bias=bias, act="relu")
    assert_gemm_close(out[0], ref, a, b, k, dtype, extra_scale=1.0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("m", [13, 25, 24, 11, 3, 6])
@pytest.mark.parametrize("k", [6, 16, 17])
def test_small_path_strips_are_bitwise_the_blocked_tiles(m, k, ta, dtype, isa):
    """The small path runs a column strip in one call (on AVX-512 an edge of one row with the
    tile above it, 13 rows in one block; for K <= 16, 64-column strips of 6-row blocks and edge
    blocks of 4, 2 and 1 rows, then the tiles' strips for the last columns); the blocked path runs
    the tiles one call each. All give every element the same k-ordered FMAs: the same bits."""
    rng = np.random.default_rng(12)
    n_small = 200                                    # m x 200 x k: the small path
    n_big = (1 << 21) // (m * k) + 64                # past 2^21 multiply-adds: the blocked path
    a, b = operands(m, n_big, k, ta, False, dtype, rng)
    bias = make((n_big,), dtype, rng)
    c0 = make((m, n_big), dtype, rng)
    big, small = c0.copy(), c0[:, :n_small].copy()
    _C.gemm(a, b, big, trans_a=ta, beta=0.5, bias=bias, activation="leaky_relu", negative_slope=0.1)
    _C.gemm(a, np.ascontiguousarray(b[:, :n_small]), small, trans_a=ta, beta=0.5, bias=bias[:n_small],
            activation="leaky_relu", negative_slope=0.1)
    np.testing.assert_array_equal(small, big[:, :n_small])
    plain = np.empty((m, n_small), dtype)
    _C.gemm(a, np.ascontiguousarray(b[:, :n_small]), plain, trans_a=ta)
    assert_gemm_close(plain, expected(a, b[:, :n_small], ta, False), a, b, k, dtype)


def test_out_aliases_input(isa):
    rng = np.random.default_rng(10)
    a = make((40, 40), np.float32, rng)
    b = make((40, 40), np.float32, rng)
    ref = expected(a, b, False, False)
    r = pydl.ops.matmul(a, b, out=a)
    assert r is a
    assert_gemm_close(a, ref, b, b, 40, np.float32, extra_scale=40.0)
    a = make((40, 40), np.float64, rng)
    ref = expected(a, b.astype(np.float64), True, False)
    pydl.ops.matmul(a, b.astype(np.float64), trans_a=True, out=a)
    np.testing.assert_allclose(a, ref, rtol=1e-12, atol=1e-12)


def test_out_given():
    rng = np.random.default_rng(11)
    a, b = operands(8, 9, 10, False, False, np.float64, rng)
    out = np.full((8, 9), np.nan)
    assert pydl.ops.matmul(a, b, out=out) is out
    np.testing.assert_allclose(out, a @ b, rtol=1e-12)


def test_matmul_accepts_strided_views():
    rng = np.random.default_rng(12)
    a = make((30, 40), np.float32, rng)[:, ::2]   # non-unit inner stride: copied
    b = make((40, 20), np.float32, rng)[::2]     # row-strided: used as is
    c = pydl.ops.matmul(a, b)
    assert_gemm_close(c, expected(a, b, False, False), a, b, 20, np.float32)


def test_matmul_unpickled_and_byte_swapped_inputs():
    import pickle

    rng = np.random.default_rng(14)
    a, b = operands(9, 7, 5, False, False, np.float32, rng)
    a2, b2 = pickle.loads(pickle.dumps(a)), pickle.loads(pickle.dumps(b))
    c = pydl.ops.matmul(a2, b2)
    assert_gemm_close(c, expected(a, b, False, False), a, b, 5, np.float32)
    c = pydl.ops.matmul(a.astype(">f4"), b)
    assert c.dtype == np.float32
    assert_gemm_close(c, expected(a, b, False, False), a, b, 5, np.float32)
    out = pickle.loads(pickle.dumps(np.empty((9, 7), np.float32)))
    pydl.ops.matmul(a, b, out=out)
    assert_gemm_close(out, expected(a, b, False, False), a, b, 5, np.float32)


@settings(max_examples=40, deadline=None)
@given(m=st.integers(0, 70), n=st.integers(0, 70), k=st.integers(0, 70), ta=st.booleans(), tb=st.booleans(),
       f64=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_matmul_hypothesis(m, n, k, ta, tb, f64, seed):
    dtype = np.float64 if f64 else np.float32
    a, b = operands(m, n, k, ta, tb, dtype, np.random.default_rng(seed))
    c = pydl.ops.matmul(a, b, trans_a=ta, trans_b=tb)
    assert_gemm_close(c, expected(a, b, ta, tb), a, b, k, dtype)


# ---- bad input -------------------------------------------------------------------------------

def test_matmul_rejects_bad_inputs():
    a = np.ones((3, 4), np.float32)
    b = np.ones((4, 5), np.float32)
    with pytest.raises(TypeError, match="a: expected a numpy.ndarray"):
        pydl.ops.matmul([[1.0]], b)
    with pytest.raises(TypeError, match="b: expected dtype float32 or float64, got int64"):
        pydl.ops.matmul(a, np.ones((4, 5), np.int64))
    with pytest.raises(TypeError, match=r"b: expected dtype float32 \(as a\), got float64"):
        pydl.ops.matmul(a, b.astype(np.float64))
    with pytest.raises(ValueError, match=r"a: expected a 2-D array, got shape \(3,\)"):
        pydl.ops.matmul(np.ones(3, np.float32), b)
    with pytest.raises(ValueError, match="b: expected a 2-D array"):
        pydl.ops.matmul(a, np.ones((1, 4, 5), np.float32))
    with pytest.raises(ValueError, match="b: inner sizes differ"):
        pydl.ops.matmul(a, b.T.copy())
    with pytest.raises(ValueError, match="b: inner sizes differ"):
        pydl.ops.matmul(a, b, trans_a=True)
    with pytest.raises(ValueError, match=r"out: expected shape \(3, 5\), got \(5, 3\)"):
        pydl.ops.matmul(a, b, out=np.empty((5, 3), np.float32))
    with pytest.raises(TypeError, match="out: expected dtype float32, got float64"):
        pydl.ops.matmul(a, b, out=np.empty((3, 5), np.float64))
    with pytest.raises(ValueError, match="out: expected a C-contiguous array"):
        pydl.ops.matmul(a, b, out=np.empty((3, 10), np.float32)[:, ::2])
    ro = np.empty((3, 5), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="out: array is read-only"):
        pydl.ops.matmul(a, b, out=ro)


def test_gemm_binding_rejects_bad_inputs():
    a = np.ones((3, 4), np.float32)
    b = np.ones((4, 5), np.float32)
    c = np.zeros((3, 5), np.float32)
    with pytest.raises(TypeError, match="c: expected a numpy.ndarray, got list"):
        _C.gemm(a, b, [[0.0] * 5] * 3)
    with pytest.raises(TypeError, match="a: expected float32 or float64, got int32"):
        _C.gemm(a.astype(np.int32), b, c)
    with pytest.raises(TypeError, match="c: expected dtype float32"):
        _C.gemm(a, b, c.astype(np.float64))
    with pytest.raises(ValueError, match="c: expected shape"):
        _C.gemm(a, b, np.zeros((5, 3), np.float32))
    with pytest.raises(ValueError, match="b: inner sizes differ"):
        _C.gemm(a, b, c, trans_b=True)
    with pytest.raises(ValueError, match="a: expected unit inner stride"):
        _C.gemm(np.ones((3, 8), np.float32)[:, ::2], b, c)
    with pytest.raises(ValueError, match="a: row stride"):
        _C.gemm(np.ones((3, 4), np.float32)[::-1], b, c)
    with pytest.raises(ValueError, match="bias: expected shape"):
        _C.gemm(a, b, c, bias=np.ones(4, np.float32))
    with pytest.raises(TypeError, match="bias: expected dtype float32"):
        _C.gemm(a, b, c, bias=np.ones(5, np.float64))
    with pytest.raises(ValueError, match="bias: expected a contiguous array"):
        _C.gemm(a, b, c, bias=np.ones(10, np.float32)[::2])
    with pytest.raises(ValueError, match="activation: expected"):
        _C.gemm(a, b, c, activation="swish")
    ro = c.copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="c: array is read-only"):
        _C.gemm(a, b, ro)
    sq = np.ones((4, 4), np.float32)
    with pytest.raises(ValueError, match="c: must not share memory with a"):
        _C.gemm(sq, sq[:, :4].copy(), sq)
    assert (c == 0).all()
