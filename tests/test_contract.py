"""The public API contract of docs/API.md §1, checked name by name.

Every call below uses the names and keywords exactly as the contract writes them, and every
test checks behaviour against a formula or an independent numpy computation.
"""
import inspect
import os

import numpy as np
import pytest

import pydl
from pydl import nn, optim


def _defaults(f):
    return {k: p.default for k, p in inspect.signature(f).parameters.items()
            if p.default is not inspect.Parameter.empty}


def _params(f):
    return list(inspect.signature(f).parameters)


# ----------------------------------------------------------------------------- top level

def test_version_and_cpu_info():
    assert isinstance(pydl.__version__, str) and pydl.__version__.count(".") >= 1
    info = pydl.cpu_info()
    assert info["isa"] in ("avx512", "avx2", "generic")
    assert isinstance(info["num_threads"], int) and info["num_threads"] >= 1
    assert info["num_threads"] == pydl.get_num_threads()


def test_set_get_num_threads():
    old = pydl.get_num_threads()
    try:
        pydl.set_num_threads(1)
        assert pydl.get_num_threads() == 1
        assert pydl.cpu_info()["num_threads"] == 1
        a = np.random.default_rng(0).standard_normal((70, 50)).astype(np.float32)
        r1 = pydl.ops.matmul(a, a, trans_b=True)
        pydl.set_num_threads(2)
        assert pydl.get_num_threads() == 2
        np.testing.assert_array_equal(pydl.ops.matmul(a, a, trans_b=True), r1)
    finally:
        pydl.set_num_threads(old)


def test_manual_seed_reproduces_init_dropout_shuffle_augmentation():
    def run():
        lin = nn.Linear(5, 4)
        drop = nn.Dropout(p=0.5)
        d = drop(np.ones((8, 16), np.float32))
        noise = nn.GaussianNoise(0.3)(np.zeros((4, 3), np.float32))
        x = np.arange(40, dtype=np.float32).reshape(20, 2)
        y = (np.arange(20) % 2).astype(np.int64)
        order = []

        class Rec(pydl.train.callbacks.Callback):
            pass

        model = nn.Sequential(nn.Linear(2, 2))
        tr = pydl.train.Trainer(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.0))
        seen = []
        orig = model.forward

        def fwd(xx):
            seen.append(xx.copy())
            return orig(xx)
        model.forward = fwd
        tr.fit(x, y, epochs=1, batch_size=5, shuffle=True, verbose=0)
        order = np.concatenate([s for s in seen if len(s) == 5])
        return lin.weight.data.copy(), d, noise, order

    pydl.manual_seed(123)
    a = run()
    pydl.manual_seed(123)
    b = run()
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    pydl.manual_seed(124)
    c = run()
    assert not np.array_equal(a[0], c[0])
    assert not np.array_equal(a[1], c[1])
    # the shuffled order is a permutation of the data, not the identity (20! orders)
    assert not np.array_equal(a[3], np.arange(40, dtype=np.float32).reshape(20, 2))
    assert sorted(a[3][:, 0].tolist()) == list(range(0, 40, 2))


def test_manual_seed_reproduces_augmentation():
    from pydl.data import transforms as T
    x = np.random.default_rng(0).random((6, 1, 8, 8)).astype(np.float32)
    y = np.arange(6) % 3

    def run():
        outs = [T.RandomRotation(30)(x), T.Cutout(3)(x), T.RandomCrop(8, padding=2)(x)]
        xm, ym = T.Mixup(alpha=1.0, num_classes=3)(x, y)
        return outs + [xm, ym]
    pydl.manual_seed(7)
    a = run()
    pydl.manual_seed(7)
    b = run()
    pydl.manual_seed(8)
    c = run()
    for u, v, w in zip(a, b, c):
        u, v, w = (np.asarray(t[0] if isinstance(t, tuple) else t) for t in (u, v, w))
        np.testing.assert_array_equal(u, v)
        assert not np.array_equal(u, w)


def test_save_load_npz_no_pickle(tmp_path):
    pydl.manual_seed(0)
    m = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
    m(np.random.default_rng(1).standard_normal((6, 3)).astype(np.float32))
    path = tmp_path / "ck.npz"
    pydl.save(m, path)
    with np.load(path, allow_pickle=False) as z:  # a plain .npz readable without pickle
        files = set(z.files)
    sd = m.state_dict()
    assert files == set(sd)
    back = pydl.load(path)
    assert isinstance(back, dict) and set(back) == set(sd)
    for k in sd:
        np.testing.assert_array_equal(back[k], sd[k])
    # a dict works too, and loading into a fresh model reproduces outputs
    pydl.save(sd, tmp_path / "d.npz")
    m2 = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
    m2.load_state_dict(pydl.load(tmp_path / "d.npz"))
    m.eval(), m2.eval()
    x = np.ones((2, 3), np.float32)
    np.testing.assert_array_equal(m(x), m2(x))
    # a pickled object array is refused
    bad = tmp_path / "bad.npz"
    np.savez(bad, a=np.array([{"x": 1}], dtype=object))
    with pytest.raises(ValueError):
        pydl.load(bad)


# ----------------------------------------------------------------------------- ops

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ops_contract(dtype):
    rng = np.random.default_rng(0)
    assert _defaults(pydl.ops.matmul) == {"trans_a": False, "trans_b": False, "out": None}
    for kw in ("trans_a", "trans_b", "out"):
        assert inspect.signature(pydl.ops.matmul).parameters[kw].kind == inspect.Parameter.KEYWORD_ONLY
    a = rng.standard_normal((7, 5)).astype(dtype)
    b = rng.standard_normal((6, 5)).astype(dtype)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    r = pydl.ops.matmul(a, b, trans_b=True)
    assert r.dtype == dtype
    np.testing.assert_allclose(r, a.astype(np.float64) @ b.T.astype(np.float64), **tol)
    out = np.empty((5, 5), dtype)
    r = pydl.ops.matmul(a, a, trans_a=True, trans_b=False, out=out)
    assert r is out or np.shares_memory(r, out)
    np.testing.assert_allclose(out, a.T.astype(np.float64) @ a, **tol)
    np.testing.assert_allclose(pydl.ops.matmul(np.ascontiguousarray(a.T), b, trans_a=True, trans_b=True),
                               a.astype(np.float64) @ b.T.astype(np.float64), **tol)

    x = rng.standard_normal((4, 9)).astype(dtype) * 3
    x64 = x.astype(np.float64)
    from math import erf
    ref = {
        "relu": np.maximum(x64, 0), "sigmoid": 1 / (1 + np.exp(-x64)), "tanh": np.tanh(x64),
        "gelu": 0.5 * x64 * (1 + np.vectorize(erf)(x64 / np.sqrt(2))),
    }
    for name, want in ref.items():
        got = getattr(pydl.ops, name)(x)
        assert got.dtype == dtype and got.shape == x.shape
        np.testing.assert_allclose(got, want, **tol)
    assert _defaults(pydl.ops.gelu) == {"approximate": "none"}
    th = 0.5 * x64 * (1 + np.tanh(np.sqrt(2 / np.pi) * (x64 + 0.044715 * x64 ** 3)))
    np.testing.assert_allclose(pydl.ops.gelu(x, approximate="tanh"), th, **tol)
    np.testing.assert_allclose(pydl.ops.gelu(x, approximate="none"), ref["gelu"], **tol)
    assert _defaults(pydl.ops.leaky_relu) == {"negative_slope": 0.01}
    np.testing.assert_allclose(pydl.ops.leaky_relu(x), np.where(x64 > 0, x64, 0.01 * x64), **tol)
    np.testing.assert_allclose(pydl.ops.leaky_relu(x, negative_slope=0.2), np.where(x64 > 0, x64, 0.2 * x64), **tol)
    e = np.exp(x64 - x64.max(-1, keepdims=True))
    sm = e / e.sum(-1, keepdims=True)
    np.testing.assert_allclose(pydl.ops.softmax(x), sm, **tol)
    np.testing.assert_allclose(pydl.ops.log_softmax(x), np.log(sm), **tol)
    # views (strided, transposed, Fortran-ordered) give op(a) @ op(b) too
    big = rng.standard_normal((8, 10)).astype(dtype)
    rhs = rng.standard_normal((10, 12)).astype(dtype)
    for A, B, kw in ((big[:, ::2], rhs[::2], {}), (big.T, rhs, dict(trans_a=True)),
                     (np.asfortranarray(big), rhs, {}), (big, rhs.T, dict(trans_b=True))):
        want = (A.T if kw.get("trans_a") else A).astype(np.float64) @ (B.T if kw.get("trans_b") else B)
        np.testing.assert_allclose(pydl.ops.matmul(A, B, **kw), want, **tol)
    np.testing.assert_allclose(pydl.ops.tanh(big[:, ::3]), np.tanh(big[:, ::3].astype(np.float64)), **tol)
    x3 = rng.standard_normal((2, 3, 4)).astype(dtype)
    e3 = np.exp(x3.astype(np.float64))
    np.testing.assert_allclose(pydl.ops.softmax(x3), e3 / e3.sum(-1, keepdims=True), **tol)


# ----------------------------------------------------------------------------- Parameter / Module

def test_parameter():
    d = np.ones((2, 3), np.float32)
    p = nn.Parameter(d)
    assert isinstance(p.data, np.ndarray) and p.data.shape == (2, 3)
    assert p.grad is None
    p.grad = np.full((2, 3), 2.0, np.float32)
    np.testing.assert_array_equal(p.grad, 2.0)
    p.grad = None
    assert p.grad is None


def test_module_named_parameters_train_eval_zero_grad_state_dict():
    m = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2, bias=False))
    names = [n for n, _ in m.named_parameters()]
    assert names == ["0.weight", "0.bias", "1.weight", "1.bias", "3.weight"]
    assert [id(p) for p in m.parameters()] == [id(p) for _, p in m.named_parameters()]
    assert m.training and all(c.training for c in m)
    assert m.eval() is m or m.eval() is None
    assert not m.training and not m[1].training
    m.train()
    assert m.training and m[1].training
    m.train(False)
    assert not m.training and not m[0].training
    m.train(mode=True)
    assert m[3].training
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    y = m(x)
    m.backward(np.ones_like(y))
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())
    sd = m.state_dict()
    assert {"0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var", "3.weight"} <= set(sd)
    assert all(isinstance(v, np.ndarray) for v in sd.values())
    np.testing.assert_array_equal(sd["1.running_mean"], m[1].running_mean)


def test_load_state_dict_errors_name_keys():
    m = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    sd = {k: v.copy() for k, v in m.state_dict().items()}
    missing = dict(sd)
    del missing["1.running_var"]
    with pytest.raises(Exception, match=r"1\.running_var"):
        m.load_state_dict(missing)
    extra = dict(sd, **{"2.weight": np.zeros(3, np.float32)})
    with pytest.raises(Exception, match=r"2\.weight"):
        m.load_state_dict(extra)
    shaped = dict(sd, **{"0.weight": np.zeros((3, 4), np.float32)})
    with pytest.raises(Exception, match=r"0\.weight"):
        m.load_state_dict(shaped)
    sd["0.bias"] = np.arange(4, dtype=np.float32)
    m.load_state_dict(sd)
    np.testing.assert_array_equal(m[0].bias.data, np.arange(4))


def test_backward_accumulates():
    rng = np.random.default_rng(0)
    lin = nn.Linear(3, 2, dtype=np.float64)
    x = rng.standard_normal((4, 3))
    g = rng.standard_normal((4, 2))
    lin(x)
    gx = lin.backward(g)
    np.testing.assert_allclose(gx, g @ lin.weight.data, rtol=1e-12)
    np.testing.assert_allclose(lin.weight.grad, g.T @ x, rtol=1e-12)
    np.testing.assert_allclose(lin.bias.grad, g.sum(0), rtol=1e-12)
    lin(x)
    lin.backward(g)
    np.testing.assert_allclose(lin.weight.grad, 2 * g.T @ x, rtol=1e-12)
    np.testing.assert_allclose(lin.bias.grad, 2 * g.sum(0), rtol=1e-12)
    lin.weight.grad = None
    lin(x)
    lin.backward(g)
    np.testing.assert_allclose(lin.weight.grad, g.T @ x, rtol=1e-12)
    np.testing.assert_allclose(lin.bias.grad, 3 * g.sum(0), rtol=1e-12)
    bn = nn.BatchNorm1d(2, dtype=np.float64) if "dtype" in _params(nn.BatchNorm1d) else None
    if bn is not None:
        xb = rng.standard_normal((6, 2))
        gb = rng.standard_normal((6, 2))
        bn(xb)
        bn.backward(gb)
        w1 = bn.weight.grad.copy()
        xhat = (xb - xb.mean(0)) / np.sqrt(xb.var(0) + 1e-5)
        np.testing.assert_allclose(w1, (gb * xhat).sum(0), rtol=1e-10)
        np.testing.assert_allclose(bn.bias.grad, gb.sum(0), rtol=1e-10)
        bn(xb)
        bn.backward(gb)
        np.testing.assert_allclose(bn.weight.grad, 2 * w1, rtol=1e-10)


def test_linear_shapes_init_forward():
    assert _params(nn.Linear)[:4] == ["in_features", "out_features", "bias", "dtype"]
    assert _defaults(nn.Linear)["bias"] is True and _defaults(nn.Linear)["dtype"] is np.float32
    pydl.manual_seed(0)
    lin = nn.Linear(in_features=400, out_features=300, bias=True, dtype=np.float32)
    assert lin.weight.data.shape == (300, 400) and lin.bias.data.shape == (300,)
    assert lin.weight.data.dtype == np.float32
    bound = 1 / np.sqrt(400)
    w = lin.weight.data
    assert np.abs(w).max() <= bound and np.abs(lin.bias.data).max() <= bound
    assert np.abs(w).max() > 0.98 * bound
    assert abs(w.var() - bound ** 2 / 3) < 0.03 * bound ** 2  # uniform variance
    x = np.random.default_rng(1).standard_normal((5, 400)).astype(np.float32)
    np.testing.assert_allclose(lin(x), x.astype(np.float64) @ w.T.astype(np.float64) + lin.bias.data,
                               rtol=1e-4, atol=1e-4)
    nb = nn.Linear(3, 2, bias=False, dtype=np.float64)
    assert nb.bias is None and [n for n, _ in nb.named_parameters()] == ["weight"]
    assert nb.weight.data.dtype == np.float64


def test_activation_modules():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5))
    for mod, f, df in [
        (nn.ReLU(), lambda v: np.maximum(v, 0), lambda v: (v > 0) * 1.0),
        (nn.LeakyReLU(negative_slope=0.1), lambda v: np.where(v > 0, v, 0.1 * v), lambda v: np.where(v > 0, 1, 0.1)),
        (nn.Sigmoid(), lambda v: 1 / (1 + np.exp(-v)), lambda v: np.exp(-v) / (1 + np.exp(-v)) ** 2),
        (nn.Tanh(), np.tanh, lambda v: 1 - np.tanh(v) ** 2),
        (nn.Identity(), lambda v: v, lambda v: np.ones_like(v)),
    ]:
        np.testing.assert_allclose(mod(x), f(x), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(mod.backward(np.ones_like(x)), df(x), rtol=1e-10, atol=1e-12)
    assert _defaults(nn.LeakyReLU) == {"negative_slope": 0.01}
    np.testing.assert_allclose(nn.LeakyReLU()(x), np.where(x > 0, x, 0.01 * x))
    assert _defaults(nn.GELU) == {"approximate": "none"}
    np.testing.assert_allclose(nn.GELU(approximate="tanh")(x), pydl.ops.gelu(x, approximate="tanh"))
    np.testing.assert_allclose(nn.GELU()(x), pydl.ops.gelu(x))
    e = np.exp(x)
    np.testing.assert_allclose(nn.Softmax()(x), e / e.sum(-1, keepdims=True), rtol=1e-12)
    x4 = rng.standard_normal((2, 3, 4, 5))
    f = nn.Flatten()
    assert f(x4).shape == (2, 60)
    np.testing.assert_array_equal(f(x4), x4.reshape(2, 60))
    assert f.backward(np.ones((2, 60))).shape == (2, 3, 4, 5)


def test_dropout_inverted_and_eval_identity():
    assert _defaults(nn.Dropout) == {"p": 0.5}
    pydl.manual_seed(0)
    d = nn.Dropout(p=0.25)
    x = np.ones((200, 500), np.float32)
    y = d(x)
    kept = y != 0
    np.testing.assert_allclose(y[kept], 1 / 0.75, rtol=1e-6)
    assert abs(kept.mean() - 0.75) < 0.01
    g = d.backward(np.full_like(x, 2.0))
    np.testing.assert_allclose(g, np.where(kept, 2.0 / 0.75, 0.0), rtol=1e-6)
    d.eval()
    x2 = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_array_equal(d(x2), x2)
    assert nn.Dropout()(x).dtype == np.float32


def test_batchnorm1d_contract():
    d = _defaults(nn.BatchNorm1d)
    assert d["eps"] == 1e-5 and d["momentum"] == 0.1 and d["affine"] is True
    assert _params(nn.BatchNorm1d)[:4] == ["num_features", "eps", "momentum", "affine"]
    rng = np.random.default_rng(0)
    bn = nn.BatchNorm1d(num_features=3, eps=1e-5, momentum=0.2, affine=True)
    x = (rng.standard_normal((8, 3)) * 2 + 1).astype(np.float32)
    y = bn(x)
    x64 = x.astype(np.float64)
    mu, var_b = x64.mean(0), x64.var(0)
    np.testing.assert_allclose(y, (x64 - mu) / np.sqrt(var_b + 1e-5), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn.running_mean, 0.8 * 0 + 0.2 * mu, rtol=1e-5)
    np.testing.assert_allclose(bn.running_var, 0.8 * 1 + 0.2 * x64.var(0, ddof=1), rtol=1e-5)
    sd = bn.state_dict()
    assert "running_mean" in sd and "running_var" in sd
    bn.eval()
    x2 = rng.standard_normal((4, 3)).astype(np.float32)
    np.testing.assert_allclose(bn(x2), (x2 - bn.running_mean) / np.sqrt(bn.running_var + 1e-5),
                               rtol=1e-4, atol=1e-5)
    na = nn.BatchNorm1d(3, affine=False)
    assert list(na.named_parameters()) == []


def test_gaussian_noise():
    assert _params(nn.GaussianNoise) == ["std"]
    pydl.manual_seed(0)
    g = nn.GaussianNoise(std=0.5)
    x = np.full((400, 500), 3.0, np.float32)
    y = g(x)
    n = y.astype(np.float64) - 3.0
    assert abs(n.mean()) < 0.01 and abs(n.std() - 0.5) < 0.01
    g.eval()
    np.testing.assert_array_equal(g(x), x)


def test_sequential_residual():
    rng = np.random.default_rng(0)
    l1, l2 = nn.Linear(3, 3, dtype=np.float64), nn.Linear(3, 2, dtype=np.float64)
    s = nn.Sequential(l1, nn.Tanh(), l2)
    assert len(s) == 3 and s[0] is l1 and s[2] is l2 and s[-1] is l2
    x = rng.standard_normal((4, 3))
    ref = np.tanh(x @ l1.weight.data.T + l1.bias.data) @ l2.weight.data.T + l2.bias.data
    np.testing.assert_allclose(s(x), ref, rtol=1e-12)
    r = nn.Residual(nn.Sequential(l1, nn.Tanh()))
    h = np.tanh(x @ l1.weight.data.T + l1.bias.data)
    np.testing.assert_allclose(r(x), x + h, rtol=1e-12)
    g = rng.standard_normal((4, 3))
    gin = r.backward(g)
    np.testing.assert_allclose(gin, g + (g * (1 - h ** 2)) @ l1.weight.data, rtol=1e-10)
    assert [n for n, _ in r.named_parameters()][0].endswith("0.weight")


def test_module_reuse_contract():
    """§2b: each call keeps its own state, backward consumes the latest (LIFO) and checks grad_out,
    no_grad saves nothing, zero_grad drops unconsumed calls."""
    rng = np.random.default_rng(0)
    lin = nn.Linear(3, 3, dtype=np.float64)
    x1, x2 = rng.standard_normal((4, 3)), rng.standard_normal((2, 3))
    g1, g2 = rng.standard_normal((4, 3)), rng.standard_normal((2, 3))
    lin(x1), lin(x2)
    with pytest.raises(ValueError, match="grad_out"):
        lin.backward(g1)  # the pending call is x2's
    np.testing.assert_allclose(lin.backward(g2), g2 @ lin.weight.data, rtol=1e-12)
    np.testing.assert_allclose(lin.backward(g1), g1 @ lin.weight.data, rtol=1e-12)
    np.testing.assert_allclose(lin.weight.grad, g1.T @ x1 + g2.T @ x2, rtol=1e-12)
    with pytest.raises(RuntimeError):
        lin.backward(g1)
    with pydl.no_grad():
        lin(x1)
    with pytest.raises(RuntimeError, match="no_grad"):
        lin.backward(g1)
    lin(x1)
    lin.zero_grad()
    with pytest.raises(RuntimeError):
        lin.backward(g1)
    s = nn.Sequential(lin, nn.Tanh(), lin)  # one instance twice
    y = s(x1)
    s.backward(np.ones_like(y))


def test_module_list_dict_to_contract():
    ml = nn.ModuleList([nn.Linear(2, 3), nn.ReLU()])
    ml.append(nn.Linear(3, 1))
    md = nn.ModuleDict({"enc": nn.Linear(2, 2)})
    assert len(ml) == 3 and isinstance(ml[-1], nn.Linear) and list(md.keys()) == ["enc"]
    m = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    w = m[0].weight
    assert m.double() is m and m[0].weight is w and w.data.dtype == np.float64
    assert m[1].running_mean.dtype == np.float64
    assert m.float() is m and w.data.dtype == np.float32
    assert m.to(np.float64) is m and w.data.dtype == np.float64


def test_init_functions():
    from pydl.nn import init
    pydl.manual_seed(0)
    fan_out, fan_in = 200, 300
    for target in (nn.Parameter(np.zeros((fan_out, fan_in), np.float32)), np.zeros((fan_out, fan_in), np.float64)):
        arr = lambda: target.data if isinstance(target, nn.Parameter) else target  # noqa: E731
        init.kaiming_uniform_(target, a=0.0, mode="fan_in", nonlinearity="relu")
        bound = np.sqrt(2.0) * np.sqrt(3.0 / fan_in)
        assert np.abs(arr()).max() <= bound * (1 + 1e-6) and np.abs(arr()).max() > 0.98 * bound
        init.kaiming_normal_(target, mode="fan_out", nonlinearity="relu")
        assert abs(arr().std() - np.sqrt(2.0 / fan_out)) < 0.02 * np.sqrt(2.0 / fan_out)
        init.xavier_uniform_(target, gain=2.0)
        bound = 2.0 * np.sqrt(6.0 / (fan_in + fan_out))
        assert np.abs(arr()).max() <= bound * (1 + 1e-6) and np.abs(arr()).max() > 0.98 * bound
        init.xavier_normal_(target)
        sd = np.sqrt(2.0 / (fan_in + fan_out))
        assert abs(arr().std() - sd) < 0.02 * sd
        init.normal_(target, mean=1.0, std=0.5)
        assert abs(arr().mean() - 1.0) < 0.01 and abs(arr().std() - 0.5) < 0.01
        init.uniform_(target, a=-2.0, b=-1.0)
        assert arr().min() >= -2.0 and arr().max() <= -1.0 and abs(arr().mean() + 1.5) < 0.01
        init.zeros_(target)
        assert not arr().any()
        init.ones_(target)
        assert (arr() == 1).all()
    # default kaiming_uniform_ (a=0, leaky_relu) has gain sqrt(2)
    w = np.zeros((50, 80))
    init.kaiming_uniform_(w)
    assert np.abs(w).max() <= np.sqrt(6.0 / 80) * (1 + 1e-9)


# ----------------------------------------------------------------------------- losses

def _logsm(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def test_regression_losses():
    rng = np.random.default_rng(0)
    p, t = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    for cls, f, df in [(nn.MSELoss, lambda d: d ** 2, lambda d: 2 * d), (nn.L1Loss, np.abs, np.sign)]:
        assert _defaults(cls) == {"reduction": "mean"}
        for red, scale in (("mean", p.size), ("sum", 1)):
            lf = cls(reduction=red)
            v = lf(p, t)
            assert isinstance(v, float)
            assert v == pytest.approx(f(p - t).sum() / scale, rel=1e-12)
            np.testing.assert_allclose(lf.backward(), df(p - t) / scale, rtol=1e-12)
        assert cls()(p, t) == pytest.approx(f(p - t).mean())


def test_cross_entropy_contract():
    assert _params(nn.CrossEntropyLoss)[:3] == ["weight", "reduction", "label_smoothing"]
    assert _defaults(nn.CrossEntropyLoss) == {"weight": None, "reduction": "mean", "label_smoothing": 0.0,
                                              "ignore_index": -100}  # issue 11: PyTorch's ignore_index
    rng = np.random.default_rng(0)
    N, C = 6, 4
    z = rng.standard_normal((N, C))
    y = rng.integers(0, C, N)
    ls = _logsm(z)
    p = np.exp(ls)
    onehot = np.eye(C)[y]
    lf = nn.CrossEntropyLoss()
    assert lf(z, y) == pytest.approx(-ls[np.arange(N), y].mean(), rel=1e-12)
    np.testing.assert_allclose(lf.backward(), (p - onehot) / N, rtol=1e-10, atol=1e-14)
    lf = nn.CrossEntropyLoss(reduction="sum")
    assert lf(z, y) == pytest.approx(-ls[np.arange(N), y].sum(), rel=1e-12)
    # label smoothing: (1-eps)*NLL + (eps/C)*sum_c(-log p_c)
    eps = 0.2
    lf = nn.CrossEntropyLoss(weight=None, reduction="mean", label_smoothing=eps)
    per = (1 - eps) * -ls[np.arange(N), y] + eps / C * -ls.sum(1)
    assert lf(z, y) == pytest.approx(per.mean(), rel=1e-12)
    tgt = (1 - eps) * onehot + eps / C
    np.testing.assert_allclose(lf.backward(), (p - tgt) / N, rtol=1e-10, atol=1e-14)
    # probability targets (mixup)
    q = rng.random((N, C))
    q /= q.sum(1, keepdims=True)
    lf = nn.CrossEntropyLoss()
    assert lf(z, q) == pytest.approx(-(q * ls).sum(1).mean(), rel=1e-12)
    np.testing.assert_allclose(lf.backward(), (p - q) / N, rtol=1e-10, atol=1e-14)
    # class weights with index targets: weighted mean over sum of weights (PyTorch)
    w = np.array([1.0, 2.0, 0.5, 3.0])
    lf = nn.CrossEntropyLoss(weight=w)
    assert lf(z, y) == pytest.approx((w[y] * -ls[np.arange(N), y]).sum() / w[y].sum(), rel=1e-12)


def test_nll_bce_losses():
    assert _params(nn.NLLLoss)[:2] == ["weight", "reduction"]
    assert _defaults(nn.NLLLoss) == {"weight": None, "reduction": "mean", "ignore_index": -100}  # PyTorch's
    rng = np.random.default_rng(1)
    N, C = 5, 3
    lp = _logsm(rng.standard_normal((N, C)))
    y = rng.integers(0, C, N)
    lf = nn.NLLLoss()
    assert lf(lp, y) == pytest.approx(-lp[np.arange(N), y].mean(), rel=1e-12)
    g = np.zeros((N, C))
    g[np.arange(N), y] = -1.0 / N
    np.testing.assert_allclose(lf.backward(), g)
    assert nn.NLLLoss(reduction="sum")(lp, y) == pytest.approx(-lp[np.arange(N), y].sum(), rel=1e-12)
    w = np.array([0.5, 1.0, 2.0])
    assert nn.NLLLoss(weight=w)(lp, y) == pytest.approx((w[y] * -lp[np.arange(N), y]).sum() / w[y].sum())

    d = _defaults(nn.BCEWithLogitsLoss)
    assert d["reduction"] == "mean" and d["pos_weight"] is None
    z = rng.standard_normal((N, 2))
    t = (rng.random((N, 2)) > 0.5).astype(np.float64)
    s = 1 / (1 + np.exp(-z))
    pw = np.array([2.0, 0.5])
    for red, pos_weight in (("mean", None), ("sum", None), ("mean", pw)):
        lf = nn.BCEWithLogitsLoss(reduction=red, pos_weight=pos_weight)
        pwv = 1.0 if pos_weight is None else pos_weight
        el = -(pwv * t * np.log(s) + (1 - t) * np.log(1 - s))
        scale = el.size if red == "mean" else 1
        assert lf(z, t) == pytest.approx(el.sum() / scale, rel=1e-10)
        grad = (pwv * t * (s - 1) + (1 - t) * s) / scale
        np.testing.assert_allclose(lf.backward(), grad, rtol=1e-9, atol=1e-14)


# ----------------------------------------------------------------------------- optimizers

_OPT_DEFAULTS = {
    "SGD": dict(lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, maximize=False),
    "Adagrad": dict(lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10),
    "Adadelta": dict(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0),
    "RMSprop": dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False),
    "Adam": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False),
    "AdamW": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False),
}


@pytest.mark.parametrize("name", sorted(_OPT_DEFAULTS))
def test_optimizer_signature_defaults(name):
    cls = getattr(optim, name)
    assert _params(cls)[0] == "params"
    d = _defaults(cls)
    for k, v in _OPT_DEFAULTS[name].items():
        assert d[k] == v, (name, k)
    p = nn.Parameter(np.ones(3))
    o = cls([p])
    for k, v in _OPT_DEFAULTS[name].items():
        if k != "maximize":
            assert o.param_groups[0][k] == v, (name, k)


def _run_opt(name, kw, steps=4):
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal(5)
    grads = [rng.standard_normal(5) for _ in range(steps)]
    p = nn.Parameter(p0.copy())
    o = getattr(optim, name)([p], **kw)
    for g in grads:
        o.zero_grad()
        p.grad = g.copy()
        o.step()
    return p0, grads, p.data


def _ref(name, kw, p, grads):
    d = dict(_OPT_DEFAULTS[name], **kw)
    p = p.copy()
    st = {}
    for t, g in enumerate(grads, 1):
        g = g.copy()
        if d.get("maximize"):
            g = -g
        wd = d["weight_decay"]
        if name == "SGD":
            g = g + wd * p
            if d["momentum"]:
                b = g if t == 1 else d["momentum"] * st["b"] + (1 - d["dampening"]) * g
                st["b"] = b
                g = g + d["momentum"] * b if d["nesterov"] else b
            p = p - d["lr"] * g
        elif name == "Adagrad":
            clr = d["lr"] / (1 + (t - 1) * d["lr_decay"])
            g = g + wd * p
            st["s"] = st.get("s", np.full_like(p, d["initial_accumulator_value"])) + g * g
            p = p - clr * g / (np.sqrt(st["s"]) + d["eps"])
        elif name == "Adadelta":
            g = g + wd * p
            v = d["rho"] * st.get("v", 0) + (1 - d["rho"]) * g * g
            u = st.get("u", 0)
            dx = np.sqrt(u + d["eps"]) / np.sqrt(v + d["eps"]) * g
            st["u"] = d["rho"] * u + (1 - d["rho"]) * dx * dx
            st["v"] = v
            p = p - d["lr"] * dx
        elif name == "RMSprop":
            g = g + wd * p
            a = d["alpha"]
            st["v"] = a * st.get("v", 0) + (1 - a) * g * g
            vt = st["v"]
            if d["centered"]:
                st["a"] = a * st.get("a", 0) + (1 - a) * g
                vt = vt - st["a"] ** 2
            if d["momentum"]:
                st["b"] = d["momentum"] * st.get("b", 0) + g / (np.sqrt(vt) + d["eps"])
                p = p - d["lr"] * st["b"]
            else:
                p = p - d["lr"] * g / (np.sqrt(vt) + d["eps"])
        else:
            b1, b2 = d["betas"]
            if name == "AdamW":
                p = p * (1 - d["lr"] * wd)
            else:
                g = g + wd * p
            st["m"] = b1 * st.get("m", 0) + (1 - b1) * g
            st["v"] = b2 * st.get("v", 0) + (1 - b2) * g * g
            v = st["v"]
            if d["amsgrad"]:
                st["vmax"] = np.maximum(st.get("vmax", 0), v)
                v = st["vmax"]
            bc1, bc2 = 1 - b1 ** t, 1 - b2 ** t
            p = p - (d["lr"] / bc1) * st["m"] / (np.sqrt(v) / np.sqrt(bc2) + d["eps"])
    return p


@pytest.mark.parametrize("name,kw", [
    ("SGD", {}), ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)), ("SGD", dict(lr=0.1, maximize=True)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.1, weight_decay=0.01, initial_accumulator_value=0.5)),
    ("Adadelta", dict(lr=0.5, rho=0.8, weight_decay=0.01)), ("Adadelta", {}),
    ("RMSprop", dict(lr=0.01, momentum=0.9, centered=True, weight_decay=0.1)), ("RMSprop", {}),
    ("Adam", dict(lr=0.01, weight_decay=0.1)), ("Adam", dict(lr=0.01, amsgrad=True, betas=(0.8, 0.9))),
    ("AdamW", dict(lr=0.01)), ("AdamW", dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
])
def test_optimizer_formulas(name, kw):
    p0, grads, got = _run_opt(name, kw)
    np.testing.assert_allclose(got, _ref(name, kw, p0, grads), rtol=1e-10, atol=1e-12)


def test_optimizer_param_groups_and_state():
    a, b = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(3))
    o = optim.SGD([{"params": [a], "lr": 0.5}, {"params": [b]}], lr=0.1, momentum=0.9)
    assert o.param_groups[0]["lr"] == 0.5 and o.param_groups[1]["lr"] == 0.1
    assert o.param_groups[1]["momentum"] == 0.9
    a.grad, b.grad = np.ones(2), np.ones(3)
    o.step()
    np.testing.assert_allclose(a.data, 0.5)
    np.testing.assert_allclose(b.data, 0.9)
    o.param_groups[1]["lr"] = 1.0  # mutable
    o.step()
    np.testing.assert_allclose(b.data, 0.9 - 1.0 * (0.9 * 1 + 1))
    sd = o.state_dict()
    o.zero_grad()
    assert a.grad is None and b.grad is None
    a2, b2 = nn.Parameter(a.data.copy()), nn.Parameter(b.data.copy())
    o2 = optim.SGD([{"params": [a2], "lr": 0.5}, {"params": [b2]}], lr=0.1, momentum=0.9)
    o2.load_state_dict(sd)
    assert o2.param_groups[1]["lr"] == 1.0
    for o_, p_, q_ in ((o, a, b), (o2, a2, b2)):
        p_.grad, q_.grad = np.ones(2), np.ones(3)
        o_.step()
    np.testing.assert_allclose(a2.data, a.data)
    np.testing.assert_allclose(b2.data, b.data)


def test_lr_schedulers():
    from pydl.optim import lr_scheduler as S

    def mk(lr=1.0):
        return optim.SGD([nn.Parameter(np.ones(1))], lr=lr)
    o = mk()
    s = S.StepLR(o, step_size=2, gamma=0.5)
    lrs = []
    for _ in range(5):
        lrs.append(o.param_groups[0]["lr"])
        o.step(), s.step()
    np.testing.assert_allclose(lrs, [1, 1, 0.5, 0.5, 0.25])
    o = mk()
    s = S.ExponentialLR(o, gamma=0.9)
    for _ in range(3):
        o.step(), s.step()
    assert o.param_groups[0]["lr"] == pytest.approx(0.9 ** 3)
    o = mk()
    s = S.CosineAnnealingLR(o, T_max=10, eta_min=0.1)
    for _ in range(4):
        o.step(), s.step()
    assert o.param_groups[0]["lr"] == pytest.approx(0.1 + 0.9 * (1 + np.cos(np.pi * 4 / 10)) / 2)
    o = mk()
    s = S.ReduceLROnPlateau(o, mode="min", factor=0.5, patience=1)
    for v in (1.0, 0.5, 0.6, 0.6, 0.6):
        s.step(v)
    assert o.param_groups[0]["lr"] == pytest.approx(0.5)  # reduced once after 2 bad epochs


# ----------------------------------------------------------------------------- training

def _trainer(d_in=2, C=2, lr=0.0, **kw):
    model = nn.Sequential(nn.Linear(d_in, C, dtype=np.float64))
    return pydl.train.Trainer(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=lr), **kw)


def test_trainer_signature_and_history():
    T = pydl.train.Trainer
    assert _params(T)[:5] == ["model", "loss_fn", "optimizer", "metrics", "callbacks"]
    # metrics=None: default metrics follow the loss (accuracy for classification losses, issue 11)
    assert _defaults(T)["metrics"] is None and tuple(_defaults(T)["callbacks"]) == ()
    d = _defaults(T.fit)
    assert _params(T.fit)[1:3] == ["x", "y"]
    expect = dict(epochs=10, batch_size=32, validation_data=None, validation_split=0.0, shuffle=True, verbose=1)
    for k, v in expect.items():
        assert d[k] == v, k
    assert _defaults(T.evaluate)["batch_size"] == 256 and _defaults(T.predict)["batch_size"] == 256
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 2))
    y = (x[:, 0] > 0).astype(np.int64)
    pydl.manual_seed(0)
    tr = _trainer(lr=0.5)
    assert isinstance(tr.model, nn.Module)
    h = tr.fit(x, y, epochs=3, batch_size=8, validation_data=(x[:10], y[:10]), validation_split=0.0,
               shuffle=True, verbose=0)
    # the contract's four keys; pydl documents one extra per-epoch key, "gap" = val_loss - loss
    assert set(h.history) - {"gap"} == {"loss", "val_loss", "accuracy", "val_accuracy"}
    assert all(len(v) == 3 for v in h.history.values())
    ev = tr.evaluate(x, y, batch_size=256)
    assert isinstance(ev, dict) and set(ev) >= {"loss", "accuracy"}
    logits = tr.predict(x, batch_size=256)
    assert isinstance(logits, np.ndarray) and logits.shape == (40, 2)
    lin = tr.model[0]
    np.testing.assert_allclose(logits, x @ lin.weight.data.T + lin.bias.data, rtol=1e-12)
    ls = _logsm(logits)
    assert ev["loss"] == pytest.approx(-ls[np.arange(40), y].mean(), rel=1e-9)
    assert ev["accuracy"] == pytest.approx((logits.argmax(1) == y).mean())
    # val_loss of the last epoch is the loss of the final model on the validation data
    ls10 = ls[:10]
    assert h.history["val_loss"][-1] == pytest.approx(-ls10[np.arange(10), y[:10]].mean(), rel=1e-9)
    np.testing.assert_allclose(tr.predict(x, batch_size=7), logits, rtol=1e-12)


@pytest.mark.parametrize("batch_size,steps", [(1, 10), (None, 1), (4, 3), (32, 1)])
def test_batch_size_semantics(batch_size, steps):
    x = np.random.default_rng(0).standard_normal((10, 2))
    y = np.arange(10) % 2
    counts = []

    class C(pydl.train.callbacks.Callback):
        def on_batch_end(self, batch, logs=None):
            counts.append(batch)
    tr = _trainer(callbacks=(C(),))
    tr.fit(x, y, epochs=1, batch_size=batch_size, verbose=0)
    assert counts == list(range(steps))


def test_validation_split_takes_last_fraction_before_shuffling():
    x = np.arange(20, dtype=np.float64).reshape(10, 2)
    y = np.arange(10) % 2
    seen, rec = [], []

    class Rec(pydl.train.callbacks.Callback):
        def on_batch_begin(self, batch, logs=None):
            rec.append(True)

        def on_batch_end(self, batch, logs=None):
            rec.clear()
    tr = _trainer(callbacks=(Rec(),))
    orig = tr.model.forward

    def fwd(xx):
        if rec:
            seen.append(xx.copy())
        return orig(xx)
    tr.model.forward = fwd
    pydl.manual_seed(0)
    h = tr.fit(x, y, epochs=1, batch_size=2, validation_split=0.3, shuffle=True, verbose=0)
    train_rows = np.concatenate(seen)
    assert sorted(train_rows[:, 0].tolist()) == [0, 2, 4, 6, 8, 10, 12]
    lin = tr.model[0]
    lv = _logsm(x[7:] @ lin.weight.data.T + lin.bias.data)
    assert h.history["val_loss"][0] == pytest.approx(-lv[np.arange(3), y[7:]].mean(), rel=1e-9)


def test_callbacks_hooks_numbering_trainer_and_stop():
    events = []

    class Rec(pydl.train.callbacks.Callback):
        def on_train_begin(self, logs=None):
            events.append(("train_begin", self.trainer is tr))

        def on_epoch_begin(self, epoch, logs=None):
            events.append(("epoch_begin", epoch))

        def on_batch_begin(self, batch, logs=None):
            events.append(("batch_begin", batch))

        def on_batch_end(self, batch, logs=None):
            events.append(("batch_end", batch))

        def on_epoch_end(self, epoch, logs=None):
            events.append(("epoch_end", epoch, "loss" in logs))
            if epoch == 1:
                self.trainer.stop_training = True

        def on_train_end(self, logs=None):
            events.append(("train_end",))
    x = np.random.default_rng(0).standard_normal((4, 2))
    y = np.array([0, 1, 0, 1])
    rec = Rec()
    tr = _trainer(callbacks=(rec,))
    h = tr.fit(x, y, epochs=5, batch_size=2, verbose=0)
    assert events == [("train_begin", True),
                      ("epoch_begin", 0), ("batch_begin", 0), ("batch_end", 0), ("batch_begin", 1),
                      ("batch_end", 1), ("epoch_end", 0, True),
                      ("epoch_begin", 1), ("batch_begin", 0), ("batch_end", 0), ("batch_begin", 1),
                      ("batch_end", 1), ("epoch_end", 1, True), ("train_end",)]
    assert len(h.history["loss"]) == 2 and tr.stop_training is True


def test_early_stopping_contract():
    ES = pydl.train.callbacks.EarlyStopping
    expect = dict(monitor="val_loss", min_delta=0, patience=0, mode="auto", baseline=None,
                  restore_best_weights=False, start_from_epoch=0)
    assert _params(ES)[:7] == list(expect)
    d = _defaults(ES)
    for k, v in expect.items():
        assert d[k] == v
    # a monitored loss scripted per epoch: the trainer's own loss replaced via a callback-fed log
    vals = iter([1.0, 0.5, 0.7, 0.4, 0.6, 0.65, 0.8, 0.9])
    weights = []

    class Feed(pydl.train.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["score"] = next(vals)
            weights.append(self.trainer.model[0].weight.data.copy())
    x = np.random.default_rng(0).standard_normal((8, 2))
    y = np.arange(8) % 2
    es = ES(monitor="score", min_delta=0, patience=2, mode="min", baseline=None,
            restore_best_weights=True, start_from_epoch=0)
    tr = _trainer(lr=0.5, callbacks=(Feed(), es))
    h = tr.fit(x, y, epochs=8, batch_size=4, verbose=0)
    assert len(h.history["loss"]) == 6  # best at epoch 3, no improvement in 4, 5 -> stop after 5
    np.testing.assert_array_equal(tr.model[0].weight.data, weights[3])
    # Keras 3: restores best weights even without stopping early
    vals = iter([1.0, 0.5, 0.7])
    weights.clear()
    es = ES(monitor="score", patience=5, mode="min", restore_best_weights=True)
    tr = _trainer(lr=0.5, callbacks=(Feed(), es))
    tr.fit(x, y, epochs=3, batch_size=4, verbose=0)
    np.testing.assert_array_equal(tr.model[0].weight.data, weights[1])


# ----------------------------------------------------------------------------- model selection

def test_kfold_and_stratified():
    from pydl.model_selection import KFold, StratifiedKFold
    assert _defaults(KFold) == {"n_splits": 5, "shuffle": False, "random_state": None}
    assert {k: _defaults(StratifiedKFold)[k] for k in ("n_splits", "shuffle", "random_state")} == \
        {"n_splits": 5, "shuffle": False, "random_state": None}
    X = np.zeros((13, 2))
    folds = list(KFold(n_splits=5).split(X))
    assert [len(te) for _, te in folds] == [3, 3, 3, 2, 2]
    np.testing.assert_array_equal(np.concatenate([te for _, te in folds]), np.arange(13))
    for tr, te in folds:
        np.testing.assert_array_equal(np.sort(np.concatenate([tr, te])), np.arange(13))
    sh = [te for _, te in KFold(n_splits=5, shuffle=True, random_state=0).split(X, y=None)]
    assert sorted(np.concatenate(sh).tolist()) == list(range(13))
    y = np.array([0] * 8 + [1] * 4)
    for tr, te in StratifiedKFold(n_splits=4).split(np.zeros((12, 1)), y):
        assert (y[te] == 0).sum() == 2 and (y[te] == 1).sum() == 1
        assert len(set(tr) & set(te)) == 0


def test_train_test_split():
    from pydl.model_selection import train_test_split
    d = _defaults(train_test_split)
    assert d["shuffle"] is True and d["stratify"] is None and d["random_state"] is None
    X = np.arange(40).reshape(20, 2)
    y = np.arange(20)
    Xtr, Xte, ytr, yte = train_test_split(X, y, random_state=0)
    assert len(Xte) == 5 and len(Xtr) == 15  # test_size=0.25 by default
    np.testing.assert_array_equal(Xtr[:, 0] // 2, ytr)
    assert sorted(np.concatenate([ytr, yte]).tolist()) == list(range(20))
    Xtr, Xte = train_test_split(X, test_size=0.25, shuffle=False)
    np.testing.assert_array_equal(Xte, X[15:])
    ys = np.array([0] * 12 + [1] * 8)
    _, _, ytr, yte = train_test_split(X, ys, test_size=0.25, stratify=ys, random_state=1)
    assert (yte == 1).sum() == 2 and (yte == 0).sum() == 3


def test_cross_validate_and_bias_variance():
    from pydl.model_selection import KFold, bias_variance_decomp, cross_validate
    assert _params(cross_validate)[:6] == ["build", "X", "y", "cv", "fit_kwargs", "n_jobs"]
    d = _defaults(cross_validate)
    assert d["cv"] == 5 and d["fit_kwargs"] is None and d["n_jobs"] == 1
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 2))
    y = (X[:, 0] > 0).astype(np.int64)

    def build():
        return _trainer(lr=0.3)
    r = cross_validate(build, X, y, cv=3, fit_kwargs={"epochs": 2, "batch_size": 10, "verbose": 0}, n_jobs=1)
    for k in ("test_score", "train_score", "fit_time"):
        assert isinstance(r[k], np.ndarray) and r[k].shape == (3,)
    assert ((r["test_score"] >= 0) & (r["test_score"] <= 1)).all()
    skl = pytest.importorskip("sklearn.model_selection")
    r2 = cross_validate(build, X, y, cv=skl.KFold(3), fit_kwargs={"epochs": 1, "verbose": 0})
    assert r2["test_score"].shape == (3,)
    r3 = cross_validate(build, X, y, cv=KFold(n_splits=2), fit_kwargs={"epochs": 1, "verbose": 0})
    assert r3["test_score"].shape == (2,)

    assert _params(bias_variance_decomp)[:8] == ["build", "X_train", "y_train", "X_test", "y_test", "loss",
                                                 "num_rounds", "random_seed"]
    d = _defaults(bias_variance_decomp)
    assert d["loss"] == "mse" and d["num_rounds"] == 200 and d["random_seed"] is None

    # a model that always predicts zero: bias = mean(y^2), variance 0 (mlxtend's formulas)
    class Zero(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(np.zeros(1))

        def forward(self, x):
            return np.zeros((len(x), 1)) + 0 * self.w.data

        def backward(self, g):
            self.w.grad = np.zeros(1)
            return np.zeros((len(g), 1))

    def build0():
        m = Zero()
        return pydl.train.Trainer(m, nn.MSELoss(), optim.SGD(m.parameters(), lr=0.0), metrics=())
    yt = rng.standard_normal((6, 1))
    out = bias_variance_decomp(build0, X[:10], rng.standard_normal((10, 1)), X[:6], yt, loss="mse",
                               num_rounds=3, random_seed=0, fit_kwargs={"epochs": 1, "verbose": 0}) \
        if "fit_kwargs" in _params(bias_variance_decomp) else \
        bias_variance_decomp(build0, X[:10], rng.standard_normal((10, 1)), X[:6], yt, loss="mse",
                             num_rounds=3, random_seed=0)
    assert isinstance(out, tuple) and len(out) == 3
    el, bias, var = out
    assert el == pytest.approx((yt ** 2).mean()) and bias == pytest.approx((yt ** 2).mean())
    assert var == pytest.approx(0.0, abs=1e-15)


def test_cross_entropy_weight_and_smoothing_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    z = rng.standard_normal((7, 4))
    y = rng.integers(0, 4, 7)
    w = np.array([0.5, 2.0, 1.0, 3.0])
    for red in ("mean", "sum"):
        zt = torch.tensor(z, requires_grad=True)
        ref = torch.nn.CrossEntropyLoss(weight=torch.tensor(w), reduction=red, label_smoothing=0.1)(zt, torch.tensor(y))
        ref.backward()
        lf = nn.CrossEntropyLoss(weight=w, reduction=red, label_smoothing=0.1)
        assert lf(z, y) == pytest.approx(ref.item(), rel=1e-10)
        np.testing.assert_allclose(lf.backward(), zt.grad.numpy(), rtol=1e-9, atol=1e-14)
    # float32 input still returns a Python float (a float subclass whose .backward names the fix),
    # not a numpy scalar
    for value in (nn.CrossEntropyLoss()(z.astype(np.float32), y), nn.MSELoss()(z.astype(np.float32), z.astype(np.float32))):
        assert isinstance(value, float) and not isinstance(value, np.generic)
        assert type(value.item()) is float and value.item() == value


def test_lr_schedulers_match_torch():
    torch = pytest.importorskip("torch")
    from pydl.optim import lr_scheduler as S
    cases = [("StepLR", dict(step_size=3, gamma=0.5)), ("ExponentialLR", dict(gamma=0.8)),
             ("CosineAnnealingLR", dict(T_max=4, eta_min=0.01))]
    for name, kw in cases:
        o = optim.SGD([nn.Parameter(np.ones(1))], lr=0.1)
        to = torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=0.1)
        s, ts = getattr(S, name)(o, **kw), getattr(torch.optim.lr_scheduler, name)(to, **kw)
        for _ in range(10):
            o.step(), to.step(), s.step(), ts.step()
            assert o.param_groups[0]["lr"] == pytest.approx(to.param_groups[0]["lr"], rel=1e-9, abs=1e-15), name
    o = optim.SGD([nn.Parameter(np.ones(1))], lr=0.1)
    to = torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=0.1)
    s = S.ReduceLROnPlateau(o, mode="min", factor=0.5, patience=2, threshold=0.01, cooldown=1, min_lr=0.02)
    ts = torch.optim.lr_scheduler.ReduceLROnPlateau(to, mode="min", factor=0.5, patience=2, threshold=0.01,
                                                    cooldown=1, min_lr=0.02)
    for v in [1.0, 0.9, 0.895, 0.9, 0.9, 0.9, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]:
        s.step(v), ts.step(v)
        assert o.param_groups[0]["lr"] == pytest.approx(to.param_groups[0]["lr"], rel=1e-12)


def test_sgd_nesterov_validation():
    p = nn.Parameter(np.ones(2))
    with pytest.raises(ValueError):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError):
        optim.SGD([p], lr=0.1, momentum=0.9, dampening=0.1, nesterov=True)


@pytest.mark.parametrize("kw,vals,epochs", [
    (dict(mode="min", min_delta=0.1, patience=1), [1.0, 0.95, 0.8, 0.75, 0.74], 2),
    (dict(mode="min", baseline=0.5, patience=2), [0.9, 0.9, 0.9, 0.9], 2),
    (dict(mode="min", patience=0, start_from_epoch=2), [1.0, 2.0, 3.0, 4.0, 5.0], 4),
    (dict(mode="min", patience=0), [1.0, 2.0, 3.0, 4.0, 5.0], 2),
    (dict(mode="max", patience=1), [1.0, 2.0, 1.5, 1.5, 3.0], 3),
])
def test_early_stopping_keras3_cases(kw, vals, epochs):
    it = iter(vals)

    class Feed(pydl.train.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["score"] = next(it)
    x = np.random.default_rng(0).standard_normal((4, 2))
    tr = _trainer(callbacks=(Feed(), pydl.train.callbacks.EarlyStopping(monitor="score", **kw)))
    h = tr.fit(x, np.arange(4) % 2, epochs=len(vals), batch_size=4, verbose=0)
    assert len(h.history["loss"]) == epochs


def test_early_stopping_default_monitors_val_loss():
    x = np.random.default_rng(0).standard_normal((20, 2))
    y = (x[:, 0] > 0).astype(np.int64)
    es = pydl.train.callbacks.EarlyStopping()
    tr = _trainer(lr=0.0, callbacks=(es,))  # lr 0: val_loss never improves -> stops after epoch 1
    h = tr.fit(x, y, epochs=5, batch_size=5, validation_split=0.2, verbose=0)
    assert len(h.history["val_loss"]) == 2 and es.stopped_epoch == 1


def test_splitters_match_sklearn():
    skl = pytest.importorskip("sklearn.model_selection")
    from pydl.model_selection import KFold, StratifiedKFold
    X = np.zeros((23, 1))
    y = np.array([0] * 11 + [1] * 7 + [2] * 5)
    for ours, theirs in ((KFold(n_splits=4), skl.KFold(n_splits=4)),
                         (StratifiedKFold(n_splits=4), skl.StratifiedKFold(n_splits=4))):
        for (a, b), (c, d) in zip(ours.split(X, y), theirs.split(X, y)):
            assert len(b) == len(d)
            np.testing.assert_array_equal(np.sort(a), np.sort(np.setdiff1d(np.arange(23), b)))
            np.testing.assert_array_equal(np.bincount(y[b], minlength=3), np.bincount(y[d], minlength=3))


def test_cross_validate_scores_are_fold_accuracy():
    from pydl.model_selection import KFold, cross_validate
    rng = np.random.default_rng(5)
    X = rng.standard_normal((24, 2))
    y = (X[:, 0] + 0.3 * X[:, 1] > 0).astype(np.int64)
    built = []

    def build():
        built.append(_trainer(lr=0.3))
        return built[-1]
    kw = {"epochs": 3, "batch_size": 4, "verbose": 0}
    pydl.manual_seed(11)
    r = cross_validate(build, X, y, cv=KFold(n_splits=3), fit_kwargs=kw, n_jobs=1)
    for tr, (train, test), ts, trs in zip(built, KFold(n_splits=3).split(X), r["test_score"], r["train_score"]):
        assert ts == pytest.approx((tr.predict(X[test]).argmax(1) == y[test]).mean())
        assert trs == pytest.approx((tr.predict(X[train]).argmax(1) == y[train]).mean())
    assert (r["fit_time"] > 0).all()
    pydl.manual_seed(11)  # same seed -> same folds' models, in worker processes too
    r2 = cross_validate(build, X, y, cv=KFold(n_splits=3), fit_kwargs=kw, n_jobs=2)
    np.testing.assert_allclose(r2["test_score"], r["test_score"])


def test_probability_targets_and_bce_weight_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(9)
    z = rng.standard_normal((5, 3))
    q = rng.random((5, 3))
    q /= q.sum(1, keepdims=True)
    w = np.array([0.5, 2.0, 1.5])
    for kw in (dict(weight=w), dict(label_smoothing=0.3), dict(weight=w, label_smoothing=0.1, reduction="sum")):
        zt = torch.tensor(z, requires_grad=True)
        tkw = {k: (torch.tensor(v) if k == "weight" else v) for k, v in kw.items()}
        ref = torch.nn.CrossEntropyLoss(**tkw)(zt, torch.tensor(q))
        ref.backward()
        lf = nn.CrossEntropyLoss(**kw)
        assert lf(z, q) == pytest.approx(ref.item(), rel=1e-10), kw
        np.testing.assert_allclose(lf.backward(), zt.grad.numpy(), rtol=1e-9, atol=1e-14)
    t = (rng.random((5, 3)) > 0.5).astype(np.float64)
    ew = rng.random((5, 3))
    pw = np.array([1.0, 3.0, 0.5])
    zt = torch.tensor(z, requires_grad=True)
    ref = torch.nn.BCEWithLogitsLoss(weight=torch.tensor(ew), pos_weight=torch.tensor(pw))(zt, torch.tensor(t))
    ref.backward()
    lf = nn.BCEWithLogitsLoss(weight=ew, reduction="mean", pos_weight=pw)
    assert lf(z, t) == pytest.approx(ref.item(), rel=1e-10)
    np.testing.assert_allclose(lf.backward(), zt.grad.numpy(), rtol=1e-9, atol=1e-14)


def test_optimizer_skips_params_without_grad_and_refit_after_stop():
    a, b = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(2))
    o = optim.Adam([a, b], lr=0.1)
    a.grad = np.ones(2)
    o.step()
    np.testing.assert_array_equal(b.data, 1.0)
    assert a.data[0] == pytest.approx(1 - 0.1, rel=1e-6)

    class Stop(pydl.train.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.trainer.stop_training = True
    x = np.random.default_rng(0).standard_normal((4, 2))
    tr = _trainer(callbacks=(Stop(),))
    assert len(tr.fit(x, np.arange(4) % 2, epochs=3, verbose=0).history["loss"]) == 1
    assert len(tr.fit(x, np.arange(4) % 2, epochs=3, verbose=0).history["loss"]) == 1  # reset by fit
    tr2 = _trainer()
    tr2.stop_training = True  # Keras resets it at the start of fit
    assert len(tr2.fit(x, np.arange(4) % 2, epochs=3, verbose=0).history["loss"]) == 3


@pytest.mark.parametrize("loss", ["mse", "0-1_loss"])
def test_bias_variance_matches_mlxtend_formulas(loss):
    """Untrainable models (lr=0) of random init: the decomposition of their recorded predictions."""
    from pydl.model_selection import bias_variance_decomp
    rng = np.random.default_rng(2)
    Xtr, Xte = rng.standard_normal((12, 3)), rng.standard_normal((7, 3))
    C = 1 if loss == "mse" else 3
    ytr = rng.standard_normal((12, 1)) if loss == "mse" else rng.integers(0, C, 12)
    yte = rng.standard_normal((7, 1)) if loss == "mse" else rng.integers(0, C, 7)
    built = []

    def build():
        m = nn.Sequential(nn.Linear(3, C, dtype=np.float64))
        lf = nn.MSELoss() if loss == "mse" else nn.CrossEntropyLoss()
        built.append(pydl.train.Trainer(m, lf, optim.SGD(m.parameters(), lr=0.0), metrics=()))
        return built[-1]
    el, bias, var = bias_variance_decomp(build, Xtr, ytr, Xte, yte, loss=loss, num_rounds=5, random_seed=3)
    assert len(built) == 5
    preds = np.stack([t.predict(Xte) for t in built])
    if loss == "mse":
        preds = preds.reshape(5, -1)
        yt = yte.reshape(-1)
        main = preds.mean(0)
        want = (((preds - yt) ** 2).mean(), ((main - yt) ** 2).mean(), ((main - preds) ** 2).mean())
    else:
        labels = preds.argmax(-1)
        main = np.array([np.bincount(col, minlength=C).argmax() for col in labels.T])
        want = ((labels != yte).mean(), (main != yte).mean(), (main != labels).mean())
    np.testing.assert_allclose([el, bias, var], want, rtol=1e-10, atol=1e-14)
