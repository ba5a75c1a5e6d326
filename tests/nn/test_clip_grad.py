"""pydl.nn.utils.clip_grad_norm_ / clip_grad_value_ against torch.nn.utils (same gradients in,
same total norm and clipped gradients out), and their argument checks."""
import math

import numpy as np
import pytest

from pydl import nn
from pydl.nn.utils import clip_grad_norm_, clip_grad_value_, clip_grads_with_norm_, get_total_norm


def params_with_grads(dtype, scale=1.0, seed=0, none_at=(2,)):
    """Parameters of a few shapes; those at ``none_at`` have no gradient."""
    rng = np.random.default_rng(seed)
    params = []
    for i, shape in enumerate([(4, 3), (3,), (2, 5), (7,), (1,)]):
        p = nn.Parameter(np.zeros(shape, dtype))
        if i not in none_at:
            p.grad = (scale * rng.standard_normal(shape)).astype(dtype)
        params.append(p)
    return params


def torch_twins(torch, params):
    out = []
    for p in params:
        t = torch.zeros(p.shape, dtype=getattr(torch, p.dtype.name), requires_grad=True)
        if p.grad is not None:
            t.grad = torch.from_numpy(p.grad.copy())
        out.append(t)
    return out


def grads_close(params, tparams, rtol):
    for p, t in zip(params, tparams):
        if p.grad is None:
            assert t.grad is None
        else:
            np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=rtol, atol=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("norm_type", [2.0, 1, 3.5, math.inf, "inf", 0.5])
@pytest.mark.parametrize("max_norm", [0.3, 1e3])
def test_clip_grad_norm_matches_torch(dtype, norm_type, max_norm):
    torch = pytest.importorskip("torch")
    params = params_with_grads(dtype, scale=2.0)
    tparams = torch_twins(torch, params)
    total = clip_grad_norm_(params, max_norm, norm_type=norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(tparams, max_norm, norm_type=norm_type)
    rtol = 1e-6 if dtype == np.float32 else 1e-12
    assert isinstance(total, float)
    assert total == pytest.approx(float(ttotal), rel=rtol)
    grads_close(params, tparams, rtol)
    if max_norm < total:   # clipped to max_norm, short of it by the 1e-6 of the coefficient
        assert get_total_norm([p.grad for p in params if p.grad is not None], norm_type) == \
            pytest.approx(max_norm * total / (total + 1e-6), rel=rtol)


def test_clip_grad_norm_formula_float64():
    """Independent of torch: coef = max_norm / (total + 1e-6), total the 2-norm of all grads."""
    params = params_with_grads(np.float64, scale=3.0)
    before = [None if p.grad is None else p.grad.copy() for p in params]
    flat = np.concatenate([g.ravel() for g in before if g is not None])
    expected_total = math.sqrt(float(flat @ flat))
    total = clip_grad_norm_(iter(params), 1.0)
    assert total == pytest.approx(expected_total, rel=1e-14)
    coef = 1.0 / (expected_total + 1e-6)
    for p, g in zip(params, before):
        if g is None:
            assert p.grad is None
        else:
            np.testing.assert_allclose(p.grad, g * coef, rtol=1e-15)


def test_no_clipping_below_max_norm_and_single_parameter():
    p = nn.Parameter(np.zeros(3))
    p.grad = np.array([3.0, 0.0, 4.0])
    grad = p.grad
    assert clip_grad_norm_(p, 10.0) == 5.0
    np.testing.assert_array_equal(p.grad, [3.0, 0.0, 4.0])
    assert clip_grad_norm_(p, 1.0) == 5.0
    assert p.grad is grad                   # in place, as torch's mul_
    np.testing.assert_allclose(p.grad, np.array([3.0, 0.0, 4.0]) / (5 + 1e-6), rtol=1e-15)


def test_empty_and_gradless_parameters():
    assert clip_grad_norm_([], 1.0) == 0.0
    assert clip_grad_norm_([nn.Parameter(np.zeros(2))], 1.0) == 0.0
    with pytest.warns(UserWarning, match="empty generator"):
        assert clip_grad_norm_((p for p in []), 1.0) == 0.0


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nonfinite_total_norm(bad):
    torch = pytest.importorskip("torch")
    params = params_with_grads(np.float64)
    params[0].grad[1, 1] = bad
    before = [None if p.grad is None else p.grad.copy() for p in params]
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_(params, 1.0, error_if_nonfinite=True)
    for p, g in zip(params, before):         # left alone
        np.testing.assert_array_equal(p.grad, g)
    tparams = torch_twins(torch, params)
    total = clip_grad_norm_(params, 1.0)
    ttotal = torch.nn.utils.clip_grad_norm_(tparams, 1.0)
    assert (math.isnan(total) and math.isnan(float(ttotal))) or total == float(ttotal)
    for p, t in zip(params, tparams):       # scaled by the same NaN or 0 coefficient as torch
        if p.grad is not None:
            np.testing.assert_array_equal(p.grad, t.grad.numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_grad_value_matches_torch(dtype):
    torch = pytest.importorskip("torch")
    params = params_with_grads(dtype, scale=2.0)
    params[0].grad[0, 0] = np.nan
    tparams = torch_twins(torch, params)
    assert clip_grad_value_(params, 0.7) is None
    torch.nn.utils.clip_grad_value_(tparams, 0.7)
    for p, t in zip(params, tparams):
        if p.grad is not None:
            np.testing.assert_array_equal(p.grad, t.grad.numpy())
            assert np.nanmax(np.abs(p.grad)) <= dtype(0.7)


def test_clip_grads_with_norm_is_the_second_half():
    torch = pytest.importorskip("torch")
    params = params_with_grads(np.float64, scale=2.0)
    tparams = torch_twins(torch, params)
    grads = [p.grad for p in params if p.grad is not None]
    total = get_total_norm(grads)
    clip_grads_with_norm_(params, 0.5, total)
    ttotal = torch.nn.utils.get_total_norm([t.grad for t in tparams if t.grad is not None])
    torch.nn.utils.clip_grads_with_norm_(tparams, 0.5, ttotal)
    assert total == pytest.approx(float(ttotal), rel=1e-14)
    grads_close(params, tparams, 1e-14)


def test_read_only_gradient_is_replaced_not_written():
    p = nn.Parameter(np.zeros(2))
    g = np.array([3.0, 4.0])
    g.flags.writeable = False
    p.grad = g
    clip_grad_norm_([p], 1.0)
    np.testing.assert_array_equal(g, [3.0, 4.0])
    np.testing.assert_allclose(p.grad, [0.6, 0.8], rtol=1e-5)
    p.grad = g
    clip_grad_value_([p], 1.0)
    np.testing.assert_array_equal(p.grad, [1.0, 1.0])


@pytest.mark.parametrize("call,exc,match", [
    (lambda ps: clip_grad_norm_(ps, -1.0), ValueError, "max_norm: expected a number >= 0"),
    (lambda ps: clip_grad_norm_(ps, "1"), TypeError, "max_norm: expected a real number"),
    (lambda ps: clip_grad_norm_(ps, 1.0, norm_type="two"), ValueError, "norm_type"),
    (lambda ps: clip_grad_norm_(ps, 1.0, norm_type=None), TypeError, "norm_type"),
    (lambda ps: clip_grad_value_(ps, -0.5), ValueError, "clip_value"),
    (lambda ps: clip_grad_norm_(np.zeros(3), 1.0), TypeError, "an array has no .grad"),
    (lambda ps: clip_grad_norm_(3, 1.0), TypeError, "got int"),
    (lambda ps: clip_grad_norm_([("w", ps[0])], 1.0), TypeError, r"parameters\[0\].*model.parameters\(\)"),
    (lambda ps: get_total_norm([[1.0]]), TypeError, r"tensors\[0\]: expected a numpy.ndarray"),
])
def test_bad_arguments(call, exc, match):
    with pytest.raises(exc, match=match):
        call(params_with_grads(np.float64))
