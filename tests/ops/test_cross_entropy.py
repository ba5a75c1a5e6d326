"""Fused softmax cross-entropy _C.cross_entropy: every option (class-index / probability target,
class weights, label smoothing, mean / sum) against a numpy float64 formula, torch, and finite
differences; every ISA; bad input."""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pydl
from pydl import _C
from pydl.testing import assert_close, numerical_grad

OPTIONS = list(itertools.product(["index", "prob"], [False, True], [0.0, 0.1], ["mean", "sum"]))


def ref_ce(x, target, weight, eps, reduction):
    """numpy float64 formula of torch.nn.functional.cross_entropy."""
    x = x.astype(np.float64)
    n, c = x.shape
    z = x - x.max(1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    w = np.ones(c) if weight is None else weight.astype(np.float64)
    if target.dtype == np.int64:
        nll = -logp[np.arange(n), target] * w[target]
        smooth = -(logp * w).sum(1)
        losses = (1 - eps) * nll + eps / c * smooth
        denom = w[target].sum()
    else:
        t = target.astype(np.float64) * (1 - eps) + eps / c
        losses = -(w * t * logp).sum(1)
        denom = n
    return losses.sum() / (denom if reduction == "mean" else 1.0)


def make(kind, use_w, n, c, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, c)) * 3).astype(dtype)
    if kind == "index":
        t = rng.integers(0, c, n).astype(np.int64)
    else:
        t = rng.random((n, c))
        t = (t / t.sum(1, keepdims=True)).astype(dtype)
    w = (rng.random(c) + 0.5).astype(dtype) if use_w else None
    return x, t, w


def ce(x, t, w, eps, red, grad=False):
    g = np.empty_like(x) if grad else None
    loss = _C.cross_entropy(x, t, grad=g, weight=w, label_smoothing=eps, reduction=red)
    return (loss, g) if grad else loss


def tols(dtype):
    return (1e-5, 1e-6) if dtype == np.float32 else (1e-12, 1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind,use_w,eps,red", OPTIONS)
def test_against_formula_and_torch(isa, kind, use_w, eps, red, dtype):
    torch = pytest.importorskip("torch")
    for n, c in [(1, 1), (5, 3), (16, 17), (9, 100), (3, 1000)]:
        x, t, w = make(kind, use_w, n, c, dtype, seed=n * c)
        loss, g = ce(x, t, w, eps, red, grad=True)
        assert isinstance(loss, float) and g.dtype == dtype
        assert loss == pytest.approx(ref_ce(x, t, w, eps, red), rel=tols(dtype)[0], abs=tols(dtype)[1])
        assert ce(x, t, w, eps, red) == loss  # same loss without grad
        xt = torch.tensor(x.astype(np.float64), requires_grad=True)
        tt = torch.tensor(t if kind == "index" else t.astype(np.float64))
        wt = None if w is None else torch.tensor(w.astype(np.float64))
        lt = torch.nn.functional.cross_entropy(xt, tt, weight=wt, label_smoothing=eps, reduction=red)
        lt.backward()
        rtol, atol = tols(dtype)
        assert loss == pytest.approx(lt.item(), rel=rtol, abs=atol), (n, c)
        assert_close(g, xt.grad.numpy(), rtol=rtol, atol=atol * (1 if red == "mean" else n), err_msg=f"n={n} c={c}")


@pytest.mark.parametrize("kind,use_w,eps,red", OPTIONS)
def test_grad_finite_differences(kind, use_w, eps, red):
    x, t, w = make(kind, use_w, 4, 6, np.float64, seed=7)
    num = numerical_grad(lambda: ce(x, t, w, eps, red), x)
    _, g = ce(x, t, w, eps, red, grad=True)
    assert_close(g, num, rtol=1e-6, atol=1e-9)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(0, 9), c=st.integers(1, 40), kind=st.sampled_from(["index", "prob"]), use_w=st.booleans(),
       eps=st.sampled_from([0.0, 0.05, 1.0]), red=st.sampled_from(["mean", "sum"]), scale=st.sampled_from([0.1, 10.0, 1e3]),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**16))
def test_random_shapes_and_scales(n, c, kind, use_w, eps, red, scale, dtype, seed):
    x, t, w = make(kind, use_w, n, c, dtype, seed=seed)
    x = (x * scale).astype(dtype)
    want = ref_ce(x, t, w, eps, red) if n else (np.nan if red == "mean" else 0.0)
    loss = ce(x, t, w, eps, red)
    rtol = 2e-5 if dtype == np.float32 else 1e-10
    # float32: the loss sums terms of size ~|x|, so the absolute error scales with the logits
    assert loss == pytest.approx(want, rel=rtol, abs=rtol * scale, nan_ok=True)


def test_grad_may_alias_logits_and_threads_identical(isa):
    x, t, w = make("index", True, 3000, 37, np.float32, seed=3)
    pydl.set_num_threads(1)
    l1, g1 = ce(x, t, w, 0.1, "mean", grad=True)
    pydl.set_num_threads(2)
    l2, g2 = ce(x, t, w, 0.1, "mean", grad=True)
    assert l1 == l2
    np.testing.assert_array_equal(g1, g2)
    y = x.copy()
    assert _C.cross_entropy(y, t, grad=y, weight=w, label_smoothing=0.1) == l1
    np.testing.assert_array_equal(y, g1)


def test_extreme_logits(isa):
    # Large logits must not overflow (log-sum-exp with max subtraction).
    x = np.array([[1e4, 0.0, -1e4], [50.0, 50.0, 50.0]], np.float32)
    t = np.array([1, 2], np.int64)
    assert ce(x, t, None, 0.0, "sum") == pytest.approx(1e4 + np.log(3.0), rel=1e-6)


def test_bad_input():
    x = np.zeros((4, 3), np.float32)
    t = np.array([0, 1, 2, 0], np.int64)
    with pytest.raises(ValueError, match="target.*3.*out of range"):
        _C.cross_entropy(x, np.array([0, 1, 3, 0], np.int64))
    with pytest.raises(ValueError, match="target.*-1"):
        _C.cross_entropy(x, np.array([0, -1, 2, 0], np.int64))
    with pytest.raises(TypeError, match="target.*int32"):
        _C.cross_entropy(x, t.astype(np.int32))
    with pytest.raises(TypeError, match="target.*float64"):
        _C.cross_entropy(x, np.zeros((4, 3)))
    with pytest.raises(ValueError, match="target.*shape"):
        _C.cross_entropy(x, t[:3])
    with pytest.raises(ValueError, match="target.*shape"):
        _C.cross_entropy(x, np.zeros((4, 2), np.float32))
    with pytest.raises(ValueError, match="logits.*2-D"):
        _C.cross_entropy(np.zeros(3, np.float32), t[:1])
    with pytest.raises(TypeError, match="logits"):
        _C.cross_entropy(x.astype(np.float16), t)
    with pytest.raises(ValueError, match="weight.*shape"):
        _C.cross_entropy(x, t, weight=np.ones(4, np.float32))
    with pytest.raises(TypeError, match="weight"):
        _C.cross_entropy(x, t, weight=np.ones(3))
    with pytest.raises(ValueError, match="grad.*shape"):
        _C.cross_entropy(x, t, grad=np.empty((3, 4), np.float32))
    with pytest.raises(ValueError, match="label_smoothing"):
        _C.cross_entropy(x, t, label_smoothing=1.5)
    with pytest.raises(ValueError, match="reduction"):
        _C.cross_entropy(x, t, reduction="none")
    with pytest.raises(ValueError, match="logits.*class"):
        _C.cross_entropy(np.zeros((2, 0), np.float32), np.zeros(2, np.int64))
    with pytest.raises(TypeError, match="target.*ndarray"):
        _C.cross_entropy(x, [0, 1, 2, 0])


def test_unpickled_arrays_are_accepted():
    # arrays that went through pickle (joblib workers) carry equal but distinct dtype objects
    import pickle
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((5, 4)).astype(np.float32)
    target = np.array([0, 3, 1, 2, 3], dtype=np.int64)
    probs = np.full((5, 4), 0.25, np.float32)
    want_idx = _C.cross_entropy(logits, target)
    want_prob = _C.cross_entropy(logits, probs)
    rt = lambda a: pickle.loads(pickle.dumps(a))  # noqa: E731
    assert _C.cross_entropy(rt(logits), rt(target)) == want_idx
    assert _C.cross_entropy(rt(logits), rt(probs)) == want_prob
