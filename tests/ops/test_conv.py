"""pydl.ops.conv1d / conv2d and their backward: torch parity (values, input/weight/bias gradients),
central differences, the fused ReLU, accumulation, thread-count determinism, every ISA against the
naive reference kernel, and bad input."""
import numpy as np
import pytest

import pydl
from pydl import _C, ops
from pydl.testing import numerical_grad

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore:Using padding=.same.:UserWarning")
F = torch.nn.functional

# (N, C, H, W, OC, kernel, stride, padding, dilation, groups, bias)
CASES_2D = [
    (2, 3, 7, 6, 4, (3, 2), 1, 0, 1, 1, True),
    (1, 4, 9, 11, 6, (3, 3), 2, 1, 1, 2, True),
    (3, 6, 8, 8, 6, (3, 3), 1, (1, 2), (2, 1), 6, True),       # depthwise, dilated
    (3, 4, 8, 8, 8, (3, 3), 1, 1, 1, 4, False),                # depthwise, channel multiplier 2
    (2, 4, 10, 7, 8, (1, 1), 1, 0, 1, 1, False),               # pointwise: no im2col
    (2, 4, 10, 7, 8, (1, 1), 2, 0, 1, 2, True),                # strided 1x1, groups
    (2, 4, 6, 5, 3, (1, 1), 1, 1, 1, 1, True),                 # padded 1x1
    (2, 3, 8, 9, 5, (4, 2), 1, "same", 1, 1, True),           # even kernel: extra pad bottom/right
    (1, 2, 9, 9, 3, (3, 5), 1, "same", (2, 1), 1, True),
    (2, 2, 7, 8, 3, (2, 4), 1, "same", (3, 2), 1, True),       # even kernel, dilated "same"
    (2, 3, 5, 5, 2, (5, 5), 1, "valid", 1, 1, True),          # kernel = input
    (20, 3, 6, 5, 4, (3, 3), (2, 1), (0, 1), 1, 1, True),      # several images per weight-gradient chunk
    (2, 1, 28, 28, 6, (5, 5), 1, 2, 1, 1, True),               # LeNet's first layer
    (2, 4, 12, 13, 4, (3, 3), 3, 2, 2, 2, True),               # stride and dilation
    (3, 5, 9, 9, 32, (3, 3), 1, 1, 1, 1, True),                # 32 output channels: transposed GEMM orientation
    (2, 4, 8, 8, 64, (3, 3), 2, 1, 1, 2, True),                # ... per group
    (9, 2, 5, 4, 64, (1, 1), 1, 0, 1, 1, True),                # pointwise, images batched into one GEMM
    (1, 16, 30, 29, 20, (3, 3), 1, 1, 1, 1, True),             # large image: forward in blocks of output rows
    (1, 32, 24, 24, 64, (3, 3), 1, (1, 2), 1, 2, True),        # ... transposed orientation, groups
    # stride-1 direct kernels (csrc/conv/direct.cpp)
    (5, 6, 14, 14, 16, (5, 5), 1, 0, 1, 1, True),              # LeNet c2: channel-vectorised forward, scatter dx
    (3, 16, 10, 9, 16, (3, 3), 1, 1, 1, 1, True),              # channel-vectorised data-gradient gather
    (2, 32, 9, 11, 80, (3, 3), 1, 1, 1, 1, True),              # 80 channels: channel blocks 64 + 16, tap blocks
    (2, 16, 7, 7, 48, (3, 3), 1, "same", 2, 2, True),          # groups of 24 channels, dilation
    (18, 8, 6, 6, 8, (3, 3), 1, 0, 1, 1, True),                # weight-gradient chunks of 2 images
    (2, 24, 13, 17, 24, (3, 3), 1, 1, 1, 24, True),            # depthwise 3x3, odd width
    (2, 5, 12, 7, 5, (3, 2), 1, (2, 1), (2, 3), 5, False),     # depthwise, dilated, asymmetric kernel
    (2, 3, 6, 6, 4, (3, 3), 1, 3, 1, 1, True),                 # padding beyond the kernel: im2col path
    # strided direct kernels (the padded input split into its stride phases)
    (3, 5, 9, 11, 7, (3, 3), 2, 1, 1, 1, True),                # small images stacked into one wide segment
    (2, 16, 12, 12, 32, (3, 3), 2, 1, 1, 1, True),             # channel-vectorised
    (2, 4, 13, 10, 6, (3, 3), (2, 3), (1, 2), (2, 1), 2, True),  # unequal strides, dilation, groups
    (2, 6, 11, 11, 6, (3, 3), 2, 1, 1, 6, True),               # depthwise
    (2, 3, 9, 9, 4, (3, 3), 2, 4, 1, 1, True),                 # padding beyond the kernel
    (2, 3, 20, 21, 5, (5, 5), 3, 2, 1, 1, True),               # stride 3; the last rows/columns are never read
    (2, 3, 8, 8, 16, (2, 2), 2, 0, 1, 1, True),                # disjoint windows: im2col path
    (0, 3, 6, 6, 4, (3, 3), 1, 1, 1, 1, True),                 # empty batch
]

# (N, C, L, OC, k, stride, padding, dilation, groups, bias)
CASES_1D = [
    (2, 3, 17, 4, 3, 1, 0, 1, 1, True),
    (3, 4, 20, 6, 5, 2, 2, 1, 2, True),
    (2, 4, 15, 4, 4, 1, "same", 2, 4, False),
    (1, 2, 9, 3, 1, 1, 0, 1, 1, True),
    (18, 2, 12, 3, 3, 3, "valid", 1, 1, True),
    # the MNIST-1D CNN's layers (stride 2): strided direct kernels, the batch stacked into one wide row
    (5, 1, 40, 25, 5, 2, 1, 1, 1, True),
    (7, 25, 19, 25, 3, 2, 1, 1, 1, True),
    (3, 6, 20, 5, 3, 2, 0, 1, 1, True),      # the last input column is never read: zero gradient
    (2, 4, 100, 16, 5, 2, 2, 1, 1, True),    # rows of several vectors, channel-vectorised
    (3, 6, 33, 9, 4, 3, 2, 2, 3, False),     # stride 3, dilation, groups
    (0, 25, 10, 25, 3, 2, 1, 1, 1, True),    # empty batch
]


def _tol(dtype):
    return 1e-9 if dtype == np.float64 else 2e-4


def _close(a, ref, dtype, what):
    ref = np.asarray(ref)
    scale = max(1.0, float(np.abs(ref).max())) if ref.size else 1.0
    np.testing.assert_allclose(a, ref, rtol=_tol(dtype), atol=_tol(dtype) * scale, err_msg=what)


def _make_2d(case, dtype, seed=0):
    N, C, H, W, OC, k, stride, padding, dilation, groups, has_bias = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((OC, C // groups) + k).astype(dtype)
    b = rng.standard_normal(OC).astype(dtype) if has_bias else None
    return x, w, b, dict(stride=stride, padding=padding, dilation=dilation, groups=groups)


def _make_1d(case, dtype, seed=0):
    N, C, L, OC, k, stride, padding, dilation, groups, has_bias = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, L)).astype(dtype)
    w = rng.standard_normal((OC, C // groups, k)).astype(dtype)
    b = rng.standard_normal(OC).astype(dtype) if has_bias else None
    return x, w, b, dict(stride=stride, padding=padding, dilation=dilation, groups=groups)


def _torch_grads(tconv, x, w, b, kw, dy, relu=False):
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    tb = torch.tensor(b, requires_grad=True) if b is not None else None
    y = tconv(tx, tw, tb, **kw)
    if relu:
        y = F.relu(y)
    y.backward(torch.tensor(dy))
    return (y.detach().numpy(), tx.grad.numpy(), tw.grad.numpy(), None if tb is None else tb.grad.numpy())


def _check_against_torch(pconv, pback, tconv, x, w, b, kw, dtype, relu=False):
    act = "relu" if relu else "none"
    y = pconv(x, w, b, activation=act, **kw)
    dy = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
    ty, tgx, tgw, tgb = _torch_grads(tconv, x, w, b, kw, dy, relu)
    assert y.dtype == dtype and y.shape == ty.shape
    _close(y, ty, dtype, "y")
    gx, gw, gb = pback(dy, x, w, bias_grad=b is not None, out=y, activation=act, **kw)
    _close(gx, tgx, dtype, "grad x")
    _close(gw, tgw, dtype, "grad weight")
    if b is not None:
        _close(gb, tgb, dtype, "grad bias")
    else:
        assert gb is None


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", CASES_2D)
def test_conv2d_matches_torch(case, dtype):
    x, w, b, kw = _make_2d(case, dtype)
    _check_against_torch(ops.conv2d, ops.conv2d_backward, F.conv2d, x, w, b, kw, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", CASES_1D)
def test_conv1d_matches_torch(case, dtype):
    x, w, b, kw = _make_1d(case, dtype)
    _check_against_torch(ops.conv1d, ops.conv1d_backward, F.conv1d, x, w, b, kw, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", [CASES_2D[i] for i in (0, 2, 4, 11, 15, 16, 19, 20, 24)])
def test_conv2d_fused_relu_matches_torch(case, dtype):
    x, w, b, kw = _make_2d(case, dtype)
    _check_against_torch(ops.conv2d, ops.conv2d_backward, F.conv2d, x, w, b, kw, dtype, relu=True)


def test_unbatched_input():
    x, w, b, kw = _make_2d(CASES_2D[1], np.float64)
    y = ops.conv2d(x[0], w, b, **kw)
    _close(y, F.conv2d(torch.tensor(x[0]), torch.tensor(w), torch.tensor(b), **kw).numpy(), np.float64, "unbatched")
    gx, gw, gb = ops.conv2d_backward(np.ones_like(y), x[0], w, **kw)
    assert gx.shape == x[0].shape and gw.shape == w.shape and gb.shape == b.shape
    x1, w1, b1, kw1 = _make_1d(CASES_1D[0], np.float64)
    y1 = ops.conv1d(x1[1], w1, b1, **kw1)
    _close(y1, F.conv1d(torch.tensor(x1[1]), torch.tensor(w1), torch.tensor(b1), **kw1).numpy(), np.float64, "1d")


def test_gradients_accumulate_in_place():
    x, w, b, kw = _make_2d(CASES_2D[1], np.float64)
    y = ops.conv2d(x, w, b, **kw)
    dy = np.random.default_rng(2).standard_normal(y.shape)
    gx, gw, gb = ops.conv2d_backward(dy, x, w, **kw)
    acc_w, acc_b = np.full_like(w, 0.5), np.full_like(b, -1.0)
    gx2, gw2, gb2 = ops.conv2d_backward(dy, x, w, input_grad=False, grad_weight=acc_w, grad_bias=acc_b, **kw)
    assert gx2 is None and gw2 is acc_w and gb2 is acc_b
    np.testing.assert_allclose(acc_w, gw + 0.5, rtol=1e-12)
    np.testing.assert_allclose(acc_b, gb - 1.0, rtol=1e-12)
    _, _, gb3 = ops.conv2d_backward(dy, x, w, bias_grad=False, **kw)
    assert gb3 is None


def test_non_contiguous_inputs():
    x, w, b, kw = _make_2d(CASES_2D[0], np.float64)
    xt = np.asfortranarray(x)
    wt = w[:, :, ::-1, :][:, :, ::-1, :]  # a strided view with the same values
    _close(ops.conv2d(xt, wt, b, **kw), ops.conv2d(x, w, b, **kw), np.float64, "strided")


@pytest.mark.parametrize("case", [
    (2, 2, 5, 4, 3, (3, 2), 1, 1, 1, 1, True),
    (1, 4, 6, 6, 4, (3, 3), 2, "same" if False else (1, 0), (1, 2), 2, True),
    (2, 2, 5, 5, 2, (2, 2), 1, "same", 1, 2, True),
    (2, 3, 4, 5, 2, (1, 1), 1, 0, 1, 1, True),
    (3, 3, 1, 9, 4, (1, 3), (1, 2), (0, 1), 1, 1, True),  # an MNIST-1D layer's geometry (stride 2, padding 1)
])
@pytest.mark.parametrize("relu", [False, True])
def test_conv2d_central_differences(case, relu):
    x, w, b, kw = _make_2d(case, np.float64, seed=3)
    act = "relu" if relu else "none"
    r = np.random.default_rng(4).standard_normal(ops.conv2d(x, w, b, **kw).shape)

    def loss():
        return float((ops.conv2d(x, w, b, activation=act, **kw) * r).sum())

    y = ops.conv2d(x, w, b, activation=act, **kw)
    gx, gw, gb = ops.conv2d_backward(r, x, w, out=y, activation=act, **kw)
    for got, arr in ((gx, x), (gw, w), (gb, b)):
        np.testing.assert_allclose(got, numerical_grad(loss, arr), rtol=1e-6, atol=1e-7)


def test_conv1d_central_differences():
    x, w, b, kw = _make_1d(CASES_1D[1], np.float64, seed=5)
    x = x[:2, :, :9].copy()
    r = np.random.default_rng(6).standard_normal(ops.conv1d(x, w, b, **kw).shape)

    def loss():
        return float((ops.conv1d(x, w, b, **kw) * r).sum())

    gx, gw, gb = ops.conv1d_backward(r, x, w, **kw)
    for got, arr in ((gx, x), (gw, w), (gb, b)):
        np.testing.assert_allclose(got, numerical_grad(loss, arr), rtol=1e-6, atol=1e-7)


THREAD_CASES = [
    (8, 16, 16, 16, 16, (3, 3), 1, 1, 1, 1, True),   # images split among threads
    (1, 32, 24, 24, 32, (3, 3), 1, 1, 1, 1, True),   # one image: the GEMMs thread themselves
    (40, 8, 10, 10, 16, (3, 3), 1, 0, 1, 2, True),   # chunks of several images
    (5, 64, 12, 12, 64, (1, 1), 1, 0, 1, 1, True),   # pointwise
    (64, 6, 14, 14, 16, (5, 5), 1, 0, 1, 1, True),   # LeNet c2 (direct kernels, chunks of 4 images)
    (6, 8, 12, 12, 8, (3, 3), 1, 1, 1, 8, True),     # depthwise
    (12, 32, 4, 4, 32, (3, 3), 1, 1, 1, 1, True),    # forward batches of 12, 6 or 4 images by thread count
    (100, 25, 1, 19, 25, (1, 3), (1, 2), (0, 1), 1, 1, True),  # MNIST-1D layer: stacked passes by thread count
    (600, 4, 1, 30, 8, (1, 3), (1, 2), (0, 1), 1, 1, True),    # strided, 9 weight-gradient chunks
    (64, 8, 9, 9, 12, (3, 3), 2, 1, 1, 1, True),     # 2-D strided, stacked, 2 chunks
]


@pytest.mark.parametrize("case", THREAD_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bitwise_identical_for_any_thread_count(case, dtype):
    x, w, b, kw = _make_2d(case, dtype)
    results = []
    for n in (1, 2, 3):
        pydl.set_num_threads(n)
        y = ops.conv2d(x, w, b, activation="relu", **kw)
        dy = np.random.default_rng(7).standard_normal(y.shape).astype(dtype)
        results.append((y,) + ops.conv2d_backward(dy, x, w, out=y, activation="relu", **kw))
    for other in results[1:]:
        for a, c in zip(results[0], other):
            assert np.array_equal(a, c)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES_2D[:-1] + THREAD_CASES[2:3] + THREAD_CASES[-3:])
def test_fast_kernels_match_reference_on_every_isa(isa, case, dtype):
    x, w, b, kw = _make_2d(case, dtype)
    x4, w4, b4, s, p, d, g, _ = ops.conv._geometry(x, w, b, **kw, nd=2)
    oh, ow = ops.conv._out_size(x4, w4, s, p, d)
    y, yr = (np.empty((x.shape[0], w.shape[0], oh, ow), dtype) for _ in range(2))
    _C.conv2d_forward(x4, w4, b4, y, s, p, d, g, "relu")
    _C.conv2d_forward_reference(x4, w4, b4, yr, s, p, d, g, "relu")
    _close(y, yr, dtype, f"forward {isa}")
    dy = np.random.default_rng(8).standard_normal(y.shape).astype(dtype)
    fast = [np.full_like(x4, np.nan), np.full_like(w4, 0.25), np.full(w.shape[0], 0.5, dtype)]
    ref = [np.full_like(x4, np.nan), np.full_like(w4, 0.25), np.full(w.shape[0], 0.5, dtype)]
    _C.conv2d_backward(dy, x4, w4, y, *fast, s, p, d, g, "relu", True, True)
    _C.conv2d_backward_reference(dy, x4, w4, yr, *ref, s, p, d, g, "relu", True, True)
    for a, r, what in zip(fast, ref, ("grad_in", "grad_weight", "grad_bias")):
        _close(a, r, dtype, f"{what} {isa}")


# float32 accuracy: the float32 result against float64 (torch) on the same float32 inputs, as the
# normwise relative error of each output. Shapes of the CIFAR ResNet in bench/bench_cnn.py and of
# LeNet-5, where sums are long: the weight gradient adds N*OH*OW products, the data gradient
# OC*KH*KW. With blocked summation (at most 64 products per register, docs/ARCHITECTURE.md §4b)
# every path stays within 3.5e-7 here; the bound is 5e-7 (8 units of float32 rounding, 2^-24).
# The direct kernels' earlier single-register sums gave 7e-7 to 9e-7 on the weight gradients.
# (N, C, H, W, OC, kernel, padding)
ACCURACY_CASES = [
    (32, 3, 32, 32, 16, 3, 1),    # ResNet stem
    (32, 16, 32, 32, 16, 3, 1),   # ResNet stage 1
    (32, 64, 8, 8, 64, 3, 1),     # ResNet stage 3
    (64, 1, 28, 28, 6, 5, 2),     # LeNet c1
    (64, 6, 14, 14, 16, 5, 0),    # LeNet c2
]


@pytest.mark.parametrize("case", ACCURACY_CASES)
def test_float32_accuracy_against_float64(isa, case):
    N, C, H, W, OC, k, pad = case
    rng = np.random.default_rng(3)
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = (rng.standard_normal((OC, C, k, k)) / np.sqrt(C * k * k)).astype(np.float32)
    b = rng.standard_normal(OC).astype(np.float32)
    y = ops.conv2d(x, w, b, padding=pad)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    got = (y,) + ops.conv2d_backward(dy, x, w, padding=pad)
    want = _torch_grads(F.conv2d, *(a.astype(np.float64) for a in (x, w, b)), {"padding": pad},
                        dy.astype(np.float64))
    for name, a, r in zip(("y", "grad x", "grad weight", "grad bias"), got, want):
        err = np.linalg.norm(a.astype(np.float64) - r) / np.linalg.norm(r)
        assert err <= 5e-7, f"{name} ({isa}): float32 relative error {err:.2e}"


def _bad(fn, exc, match):
    with pytest.raises(exc, match=match):
        fn()


def test_bad_input_named():
    x = np.zeros((2, 4, 8, 8), np.float32)
    w = np.zeros((6, 4, 3, 3), np.float32)
    _bad(lambda: ops.conv2d(x[0, 0], w), ValueError, r"x: expected a 3-D or 4-D array, got shape \(8, 8\)")
    _bad(lambda: ops.conv2d(x, w[0]), ValueError, r"weight: expected a 4-D array")
    _bad(lambda: ops.conv2d(x, np.zeros((6, 3, 3, 3), np.float32)), ValueError,
         r"weight: shape \(6, 3, 3, 3\) expects 3 input channels .* x \(2, 4, 8, 8\) has 4")
    _bad(lambda: ops.conv2d(x, np.zeros((6, 4, 11, 3), np.float32), padding=1), ValueError,
         r"weight: kernel size \(11, 3\) .* larger than the padded input \(10, 10\)")
    _bad(lambda: ops.conv2d(x, np.zeros((6, 2, 3, 3), np.float32), groups=3), ValueError,
         r"groups: 3 does not divide the channels")
    _bad(lambda: ops.conv2d(x, w, padding="same", stride=2), ValueError, r"padding: 'same' .* stride")
    _bad(lambda: ops.conv2d(x, w, padding="full"), ValueError, r"padding: expected")
    _bad(lambda: ops.conv2d(x, w, padding=-1), ValueError, r"padding: must be non-negative")
    _bad(lambda: ops.conv2d(x.astype(np.int32), w), TypeError, r"x: expected dtype float32 or float64, got int32")
    _bad(lambda: ops.conv2d(x.astype(np.float16), w), TypeError, r"x: expected dtype")
    _bad(lambda: ops.conv2d(x, w.astype(np.float64)), TypeError, r"weight: expected dtype float32")
    _bad(lambda: ops.conv2d(x, w, np.zeros(5, np.float32)), ValueError, r"bias: expected shape \(6,\)")
    _bad(lambda: ops.conv2d(x, w, stride=0), ValueError, r"stride: must be positive")
    _bad(lambda: ops.conv2d(x, w, dilation=(1, -2)), ValueError, r"dilation: must be positive")
    _bad(lambda: ops.conv2d(x, w, stride=(1, 2, 3)), TypeError, r"stride: expected an int or a tuple of 2")
    _bad(lambda: ops.conv2d(x, w, groups=0), ValueError, r"groups: must be positive")
    _bad(lambda: ops.conv2d(x, w, activation="tanh"), ValueError, r"activation")
    _bad(lambda: ops.conv2d(x.tolist(), w), TypeError, r"x: expected a numpy.ndarray")
    _bad(lambda: ops.conv1d(np.zeros((2, 4, 5), np.float32), np.zeros((3, 4, 7), np.float32)), ValueError,
         r"weight: kernel size \(7,\)")
    y = ops.conv2d(x, w, padding=1)
    _bad(lambda: ops.conv2d_backward(y[:, :3], x, w, padding=1), ValueError,
         r"grad_out: expected shape \(2, 6, 8, 8\), got \(2, 3, 8, 8\)")
    _bad(lambda: ops.conv2d_backward(y, x, w, padding=1, activation="relu"), ValueError, r"out: ")
    _bad(lambda: ops.conv2d_backward(y, x, w, padding=1, grad_weight=np.zeros((6, 4, 3, 3))), TypeError,
         r"grad_weight: expected dtype float32")
    _bad(lambda: ops.conv2d_backward(y, x, w, padding=1, grad_bias=np.zeros(6, np.float32)[::-1]), ValueError,
         r"grad_bias: expected a C-contiguous")


def test_binding_rejects_inconsistent_arrays():
    x = np.zeros((2, 4, 8, 8))
    w = np.zeros((6, 4, 3, 3))
    good = ((1, 1), (1, 1, 1, 1), (1, 1), 1)
    _bad(lambda: _C.conv2d_forward(x, w, None, np.zeros((2, 6, 7, 8)), *good), ValueError, r"out: expected shape")
    _bad(lambda: _C.conv2d_forward(x, w, None, np.zeros((2, 6, 8, 8), np.float32), *good), TypeError, r"out: ")
    _bad(lambda: _C.conv2d_forward(x, w, None, x[:, :2].copy().reshape(2, 2, 8, 8)[:, :0], *good), ValueError, "out")
    _bad(lambda: _C.conv2d_forward(x, w, None, np.zeros((2, 6, 8, 8)), (0, 1), (1, 1, 1, 1), (1, 1), 1), ValueError,
         "stride")
    _bad(lambda: _C.conv2d_forward(x, w, None, np.zeros((2, 6, 8, 8)), (1, 1), (1, 1, 1, 1), (1, 1), 3), ValueError,
         "weight")
    big = np.zeros((2, 6, 8, 8))
    _bad(lambda: _C.conv2d_backward(big, x, w, None, None, w, None, *good), ValueError,
         "grad_weight: must not share memory with weight")
    ro = np.zeros((2, 6, 8, 8))
    ro.flags.writeable = False
    _bad(lambda: _C.conv2d_forward(x, w, None, ro, *good), ValueError, "out: array is read-only")


def test_empty_batch_gives_zero_gradients():
    x, w, b, kw = _make_2d(CASES_2D[-1], np.float32)
    y = ops.conv2d(x, w, b, **kw)
    assert y.shape == (0, 4, 6, 6)
    gx, gw, gb = ops.conv2d_backward(y, x, w, **kw)
    assert gx.shape == x.shape and not gw.any() and not gb.any()


def test_conv2d_backward_with_no_channels(isa):
    """C = OC = 0 (a fuzz case, seed 1796300943, that crashed the direct kernels' scatter with a
    segmentation fault): every buffer is empty, the call returns without touching memory."""
    z = lambda *s: np.zeros(s, np.float32)  # noqa: E731
    dx = np.ones((3, 0, 7, 28), np.float32)
    dy, y = z(3, 0, 7, 55), z(3, 0, 7, 55)
    _C.conv2d_backward(z(3, 0, 7, 28), dy, z(0, 0, 2, 1), dx, y, z(0, 0, 2, 1), z(0), [1, 2], [1, 0, 0, 0],
                       [1, 2], 1, activation="none", accumulate_weight=True, accumulate_bias=True)
    assert dx.shape == (3, 0, 7, 28)
