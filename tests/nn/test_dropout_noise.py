"""Dropout (C++ counter-based RNG) and GaussianNoise: statistics, reproducibility, masks, modes."""
import numpy as np
import pytest

import pydl
from pydl import _C, nn


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_keep_rate_and_scaling(dtype, p):
    pydl.manual_seed(0)
    x = np.random.default_rng(0).random((200, 500)).astype(dtype) + 0.5
    d = nn.Dropout(p)
    y = d(x)
    kept = y != 0
    n = x.size
    sigma = np.sqrt(p * (1 - p) / n)
    assert abs(kept.mean() - (1 - p)) < 5 * sigma
    np.testing.assert_allclose(y[kept], x[kept] * dtype(1 / (1 - p)), rtol=1e-6 if dtype == np.float32 else 1e-15)
    assert y.dtype == dtype
    # rows and columns both look random (no stuck pattern)
    assert kept.mean(0).std() < 10 * np.sqrt(p * (1 - p) / 200)


def test_dropout_same_mask_in_backward():
    pydl.manual_seed(1)
    x = np.random.default_rng(0).standard_normal((30, 40)).astype(np.float32)
    d = nn.Dropout(0.3)
    y = d(x)
    g = np.random.default_rng(1).standard_normal((30, 40)).astype(np.float32)
    gx = d.backward(g)
    kept = y != 0
    np.testing.assert_array_equal(gx != 0, kept & (g != 0))
    np.testing.assert_allclose(gx[kept], g[kept] / np.float32(0.7), rtol=1e-6)


def test_dropout_gradcheck(check_module_grads):
    pydl.manual_seed(0)
    x = np.random.default_rng(0).standard_normal((6, 7))
    d = nn.Dropout(0.4)
    # the mask changes every forward: check the backward against the forward's linear map
    y = d(x)
    g = np.random.default_rng(1).standard_normal(x.shape)
    mask = (y != 0)
    np.testing.assert_allclose(d.backward(g), g * mask / 0.6, rtol=1e-15)
    d.eval()
    check_module_grads(d, x)


def test_dropout_reproducible_with_manual_seed():
    x = np.ones((50, 50), np.float32)
    pydl.manual_seed(42)
    a1, a2 = nn.Dropout(0.5)(x), nn.Dropout(0.5)(x)
    pydl.manual_seed(42)
    b1, b2 = nn.Dropout(0.5)(x), nn.Dropout(0.5)(x)
    np.testing.assert_array_equal(a1, b1)
    np.testing.assert_array_equal(a2, b2)
    assert not np.array_equal(a1, a2)  # a fresh mask every forward


def test_dropout_mask_independent_of_threads():
    mask1 = np.empty(1 << 18, np.uint8)
    mask2 = np.empty(1 << 18, np.uint8)
    pydl.set_num_threads(1)
    _C.dropout_mask(mask1, 0.3, 12345)
    pydl.set_num_threads(2)
    _C.dropout_mask(mask2, 0.3, 12345)
    np.testing.assert_array_equal(mask1, mask2)
    x = np.ones(1 << 18, np.float32)
    y, m = np.empty_like(x), np.empty(x.size, np.uint8)
    _C.dropout_forward(x, y, m, 0.3, 12345)
    np.testing.assert_array_equal(m, mask1)


def test_dropout_eval_identity_and_edge_p():
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    d = nn.Dropout(0.5).eval()
    np.testing.assert_array_equal(d(x), x)
    np.testing.assert_array_equal(d.backward(x), x)
    d1 = nn.Dropout(1.0)
    np.testing.assert_array_equal(d1(x), np.zeros_like(x))
    np.testing.assert_array_equal(d1.backward(x), np.zeros_like(x))
    d0 = nn.Dropout(0.0)
    np.testing.assert_array_equal(d0(x), x)
    with pytest.raises(ValueError, match="p"):
        nn.Dropout(1.5)
    with pytest.raises(ValueError, match="p"):
        nn.Dropout(-0.1)
    with pytest.raises(TypeError, match="input"):
        nn.Dropout(0.5)(np.ones(3, np.int32))


def test_gaussian_noise():
    pydl.manual_seed(0)
    x = np.zeros((400, 500), np.float32)
    gn = nn.GaussianNoise(0.5)
    y = gn(x)
    assert y.dtype == np.float32
    assert abs(y.mean()) < 5 * 0.5 / np.sqrt(x.size)
    np.testing.assert_allclose(y.std(), 0.5, rtol=0.01)
    g = np.ones_like(x)
    np.testing.assert_array_equal(gn.backward(g), g)
    pydl.manual_seed(0)
    np.testing.assert_array_equal(nn.GaussianNoise(0.5)(x), y)
    gn.eval()
    y = gn(x)  # a fresh view of x (no copy): the call's own output, tracked for its saved state
    assert y is not x and np.shares_memory(y, x) and y.shape == x.shape
    with pydl.no_grad():
        assert gn(x) is x
    with pytest.raises(ValueError, match="std"):
        nn.GaussianNoise(-1.0)
