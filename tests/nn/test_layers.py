"""Layers: finite-difference gradients (float64), torch parity (float32/float64), fusion, bad input."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pydl
from pydl import nn

DTYPES = [np.float32, np.float64]


def rand(*shape, dtype=np.float64, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def torch_forward_backward(f, x, g):
    """Run torch's ``f`` on a copy of ``x`` requiring grad and backpropagate ``g``: (input, output)."""
    import torch

    tx = torch.from_numpy(x.copy()).requires_grad_()
    ty = f(tx)
    ty.backward(torch.from_numpy(g))
    return tx, ty


ACTIVATIONS = {
    "relu": (lambda: nn.ReLU(), "ReLU", {}),
    "leaky": (lambda: nn.LeakyReLU(0.2), "LeakyReLU", {"negative_slope": 0.2}),
    "leaky_neg": (lambda: nn.LeakyReLU(-0.3), "LeakyReLU", {"negative_slope": -0.3}),
    "sigmoid": (lambda: nn.Sigmoid(), "Sigmoid", {}),
    "tanh": (lambda: nn.Tanh(), "Tanh", {}),
    "gelu": (lambda: nn.GELU(), "GELU", {}),
    "gelu_tanh": (lambda: nn.GELU("tanh"), "GELU", {"approximate": "tanh"}),
    "softmax": (lambda: nn.Softmax(), "Softmax", {"dim": -1}),
    "identity": (lambda: nn.Identity(), "Identity", {}),
}


# ---------------------------------------------------------------- gradient checks (float64)
@pytest.mark.parametrize("bias", [True, False])
def test_linear_gradcheck(check_module_grads, bias):
    pydl.manual_seed(0)
    check_module_grads(nn.Linear(5, 4, bias=bias, dtype=np.float64), rand(3, 5))


def test_linear_gradcheck_nd_input(check_module_grads):
    pydl.manual_seed(0)
    check_module_grads(nn.Linear(3, 2, dtype=np.float64), rand(2, 4, 3))


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_gradcheck(check_module_grads, name):
    x = rand(4, 6)
    x[np.abs(x) < 1e-3] = 0.5  # keep away from relu's kink
    check_module_grads(ACTIVATIONS[name][0](), x)


@pytest.mark.parametrize("act", ["relu", "leaky", "sigmoid", "tanh", "gelu"])
def test_mlp_gradcheck(check_module_grads, act):
    pydl.manual_seed(3)
    m = nn.Sequential(nn.Linear(4, 6, dtype=np.float64), ACTIVATIONS[act][0](), nn.Linear(6, 3, dtype=np.float64),
                      nn.Tanh(), nn.Linear(3, 2, dtype=np.float64))
    check_module_grads(m, rand(5, 4))


def test_flatten_residual_gradcheck(check_module_grads):
    pydl.manual_seed(0)
    check_module_grads(nn.Sequential(nn.Flatten(), nn.Residual(nn.Sequential(nn.Linear(6, 6, dtype=np.float64),
                                                                               nn.Tanh()))), rand(3, 2, 3))


# ---------------------------------------------------------------- torch parity
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch(parity, dtype, bias):
    torch = pytest.importorskip("torch")
    pydl.manual_seed(0)
    m = nn.Linear(7, 5, bias=bias, dtype=dtype)
    t = torch.nn.Linear(7, 5, bias=bias, dtype=getattr(torch, np.dtype(dtype).name))
    with torch.no_grad():
        t.weight.copy_(torch.from_numpy(m.weight.data))
        if bias:
            t.bias.copy_(torch.from_numpy(m.bias.data))
    x, g = rand(9, 7, dtype=dtype), rand(9, 5, dtype=dtype, seed=1)
    tx, ty = torch_forward_backward(t, x, g)
    parity(m(x), ty)
    parity(m.backward(g), tx.grad)
    parity(m.weight.grad, t.weight.grad)
    if bias:
        parity(m.bias.grad, t.bias.grad)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_matches_torch(parity, dtype, name):
    torch = pytest.importorskip("torch")
    make, tname, kw = ACTIVATIONS[name]
    x, g = rand(5, 8, dtype=dtype) * 3, rand(5, 8, dtype=dtype, seed=1)
    tx, ty = torch_forward_backward(getattr(torch.nn, tname)(**kw), x, g)
    m = make()
    parity(m(x), ty)
    parity(m.backward(g), tx.grad)


@pytest.mark.parametrize("dtype", DTYPES)
def test_mlp_matches_torch(parity, dtype):
    torch = pytest.importorskip("torch")
    pydl.manual_seed(0)
    m = nn.Sequential(nn.Linear(6, 16, dtype=dtype), nn.ReLU(), nn.Linear(16, 8, dtype=dtype), nn.Sigmoid(),
                      nn.Linear(8, 8, dtype=dtype), nn.GELU(), nn.Residual(nn.Linear(8, 8, dtype=dtype)),
                      nn.Linear(8, 3, dtype=dtype))
    tdt = getattr(torch, np.dtype(dtype).name)

    class TRes(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.module = inner

        def forward(self, x):
            return x + self.module(x)

    t = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 8), torch.nn.Sigmoid(),
                            torch.nn.Linear(8, 8), torch.nn.GELU(), TRes(torch.nn.Linear(8, 8)),
                            torch.nn.Linear(8, 3)).to(tdt)
    t.load_state_dict({k: torch.from_numpy(v) for k, v in m.state_dict().items()})
    x, g = rand(10, 6, dtype=dtype), rand(10, 3, dtype=dtype, seed=2)
    tx, ty = torch_forward_backward(t, x, g)
    parity(m(x), ty)
    parity(m.backward(g), tx.grad)
    tp = dict(t.named_parameters())
    for name, p in m.named_parameters():
        parity(p.grad, tp[name].grad, err_msg=name)


# ---------------------------------------------------------------- fusion
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ["relu", "leaky", "leaky_neg", "sigmoid", "tanh", "gelu", "identity"])
def test_fused_equals_unfused(dtype, act):
    pydl.manual_seed(0)
    fused = nn.Sequential(nn.Linear(9, 12, dtype=dtype), ACTIVATIONS[act][0](), nn.Linear(12, 4, dtype=dtype))
    lin1, a, lin2 = fused
    x, g = rand(7, 9, dtype=dtype), rand(7, 4, dtype=dtype, seed=1)
    y = fused(x)
    fusable = act in ("relu", "leaky", "sigmoid", "tanh")  # derivative from the output (leaky: slope >= 0)
    assert fused.plan() == ([("0", "1"), ("2",)] if fusable else [("0",), ("1",), ("2",)])
    gx = fused.backward(g)
    grads = [p.grad.copy() for p in fused.parameters()]
    fused.zero_grad()
    y_ref = lin2(a(lin1(x)))  # the same modules, one at a time
    gx_ref = lin1.backward(a.backward(lin2.backward(g)))
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_allclose(gx, gx_ref, rtol=1e-6 if dtype == np.float32 else 1e-14, atol=0)
    for got, p in zip(grads, fused.parameters()):
        np.testing.assert_allclose(got, p.grad, rtol=1e-6 if dtype == np.float32 else 1e-14, atol=0)


def test_linear_backward_after_fused_forward_refuses():
    s = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    s(np.ones((1, 2), np.float32))
    with pytest.raises(RuntimeError, match="fused"):
        s[0].backward(np.ones((1, 3), np.float32))
    with pytest.raises(RuntimeError, match="before forward"):
        s[1].backward(np.ones((1, 3), np.float32))


# ---------------------------------------------------------------- semantics and shapes
def test_linear_default_init_as_torch():
    pydl.manual_seed(0)
    m = nn.Linear(400, 300)
    b = 1 / math.sqrt(400)
    for a in (m.weight.data, m.bias.data):
        assert a.dtype == np.float32 and np.all(np.abs(a) <= b)
        assert np.abs(a).max() > 0.95 * b
        np.testing.assert_allclose(a.var(), b * b / 3, rtol=0.05)
    assert m.weight.shape == (300, 400) and m.bias.shape == (300,)
    pydl.manual_seed(0)
    np.testing.assert_array_equal(nn.Linear(400, 300).weight.data, m.weight.data)


def test_linear_nd_and_1d_input():
    pydl.manual_seed(0)
    m = nn.Linear(3, 2, dtype=np.float64)
    x = rand(2, 5, 3)
    y = m(x)
    assert y.shape == (2, 5, 2)
    np.testing.assert_allclose(y, x @ m.weight.data.T + m.bias.data, rtol=1e-12)
    assert m.backward(np.ones((2, 5, 2))).shape == (2, 5, 3)
    assert m(rand(3)).shape == (2,)


def test_linear_non_contiguous_input():
    pydl.manual_seed(0)
    m = nn.Linear(3, 2, dtype=np.float64)
    x = rand(3, 8)[:, ::2].T.copy().T[:3, :3]
    x = rand(6, 3)[::2]
    assert not x.flags.c_contiguous
    np.testing.assert_allclose(m(x), x @ m.weight.data.T + m.bias.data, rtol=1e-12)


def test_linear_bad_inputs():
    m = nn.Linear(4, 3)
    with pytest.raises(TypeError, match=r"input.*float32.*float64"):
        m(np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"\(\*, 4\).*\(2, 5\)"):
        m(np.zeros((2, 5), np.float32))
    with pytest.raises(TypeError, match="input"):
        m([[1.0] * 4])
    with pytest.raises(TypeError, match="input"):
        m(np.zeros((2, 4), np.int32))
    m(np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match=r"grad_out.*\(2, 3\).*\(2, 4\)"):
        m.backward(np.zeros((2, 4), np.float32))
    with pytest.raises(TypeError, match="grad_out"):
        m.backward(np.zeros((2, 3), np.float64))
    with pytest.raises(TypeError, match="in_features"):
        nn.Linear(2.5, 3)
    with pytest.raises(TypeError, match="dtype"):
        nn.Linear(2, 3, dtype=np.int64)


def test_activation_bad_inputs():
    r = nn.ReLU()
    with pytest.raises(TypeError, match="input"):
        r(np.zeros(3, np.int64))
    r(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="grad_out"):
        r.backward(np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match="approximate"):
        nn.GELU("fast")


def test_identity_flatten():
    x = rand(2, 3, 4)
    y = nn.Identity()(x)  # a fresh view of x (no copy), so that the call's liveness is trackable
    assert y is not x and np.shares_memory(y, x) and y.shape == x.shape
    with pydl.no_grad():
        assert nn.Identity()(x) is x
    f = nn.Flatten()
    y = f(x)
    assert y.shape == (2, 12)
    assert f.backward(np.ones((2, 12))).shape == (2, 3, 4)
    assert nn.Flatten(0, 1)(x).shape == (6, 4)
    f(x)
    with pytest.raises(ValueError, match="grad_out"):
        f.backward(np.ones((2, 11)))


def test_residual_shape_check():
    with pytest.raises(ValueError, match="Residual"):
        nn.Residual(nn.Linear(3, 2, dtype=np.float64))(rand(2, 3))
    with pytest.raises(ValueError, match="shortcut"):
        nn.Residual(nn.Linear(3, 2, dtype=np.float64), nn.Linear(3, 4, dtype=np.float64))(rand(2, 3))
    with pytest.raises(TypeError, match="shortcut"):
        nn.Residual(nn.Tanh(), "identity")


@pytest.mark.parametrize("dtype", DTYPES)
def test_residual_with_shortcut_matches_torch(parity, dtype):
    """y = module(x) + shortcut(x), also with the same module as both (its two calls consumed LIFO)."""
    torch = pytest.importorskip("torch")
    pydl.manual_seed(0)
    body, proj = nn.Linear(3, 4, dtype=dtype), nn.Linear(3, 4, bias=False, dtype=dtype)
    tdt = getattr(torch, np.dtype(dtype).name)
    tb, tp = torch.nn.Linear(3, 4).to(tdt), torch.nn.Linear(3, 4, bias=False).to(tdt)
    tb.load_state_dict({k: torch.from_numpy(v) for k, v in body.state_dict().items()})
    tp.load_state_dict({k: torch.from_numpy(v) for k, v in proj.state_dict().items()})
    x, g = rand(5, 3, dtype=dtype), rand(5, 4, dtype=dtype, seed=1)
    for r, f in ((nn.Residual(nn.Sequential(body, nn.Tanh()), proj), lambda v: torch.tanh(tb(v)) + tp(v)),
                 (nn.Residual(body, body), lambda v: tb(v) + tb(v))):
        assert [n for n, _ in r.named_children()][-1] == "shortcut"
        body.zero_grad(), proj.zero_grad(), tb.zero_grad(), tp.zero_grad()
        tx, ty = torch_forward_backward(f, x, g)
        parity(r(x), ty)
        parity(r.backward(g), tx.grad)
        parity(body.weight.grad, tb.weight.grad)
        parity(body.bias.grad, tb.bias.grad)


@pytest.mark.parametrize("first", ["linear_relu", "linear", "tanh"])
def test_backward_without_input_grad(first):
    pydl.manual_seed(0)
    head = {"linear_relu": [nn.Linear(5, 6), nn.ReLU()], "linear": [nn.Linear(5, 6)], "tanh": [nn.Tanh(),
                                                                                               nn.Linear(5, 6)]}[first]
    m = nn.Sequential(*head, nn.Linear(6, 3))
    x, g = rand(4, 5, dtype=np.float32), rand(4, 3, dtype=np.float32, seed=1)
    m(x)
    m.backward(g)
    ref = [p.grad.copy() for p in m.parameters()]
    m.zero_grad()
    m(x)
    assert m.backward(g, input_grad=False) is None
    for a, p in zip(ref, m.parameters()):
        np.testing.assert_array_equal(p.grad, a)
    lin = nn.Linear(5, 2)
    lin(x)
    assert lin.backward(np.ones((4, 2), np.float32), input_grad=False) is None
    assert lin.weight.grad is not None


@pytest.mark.parametrize("dtype", DTYPES)
def test_sequential_with_a_module_used_twice_matches_torch(parity, dtype):
    """A Linear at two places of a Sequential (once fused with the ReLU, once alone): each call
    keeps its own state and backward consumes them in reverse, as torch's graph does."""
    torch = pytest.importorskip("torch")
    pydl.manual_seed(0)
    lin = nn.Linear(3, 3, dtype=dtype)
    s = nn.Sequential(lin, nn.ReLU(), lin)
    assert s.plan() == [("0", "1"), ("2",)]
    t = torch.nn.Linear(3, 3).to(getattr(torch, np.dtype(dtype).name))
    t.load_state_dict({k: torch.from_numpy(v) for k, v in lin.state_dict().items()})
    x, g = rand(4, 3, dtype=dtype), rand(4, 3, dtype=dtype, seed=1)
    tx, ty = torch_forward_backward(lambda v: t(torch.relu(t(v))), x, g)
    parity(s(x), ty)
    parity(s.backward(g), tx.grad)
    parity(lin.weight.grad, t.weight.grad)
    parity(lin.bias.grad, t.bias.grad)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(0, 9), i=st.integers(1, 40), o=st.integers(1, 40), bias=st.booleans(),
       act=st.sampled_from(["relu", "sigmoid", "tanh", "leaky", "identity"]))
def test_linear_act_shapes_against_numpy(n, i, o, bias, act):
    pydl.manual_seed(n + i + o)
    m = nn.Sequential(nn.Linear(i, o, bias=bias, dtype=np.float64), ACTIVATIONS[act][0]())
    x, g = rand(n, i), rand(n, o, seed=1)
    z = x @ m[0].weight.data.T + (m[0].bias.data if bias else 0)
    ref = {"relu": lambda v: np.maximum(v, 0), "sigmoid": lambda v: 1 / (1 + np.exp(-v)), "tanh": np.tanh,
           "leaky": lambda v: np.where(v > 0, v, 0.2 * v), "identity": lambda v: v}[act]
    d = {"relu": lambda v: (v > 0) * 1.0, "sigmoid": lambda v: ref(v) * (1 - ref(v)),
         "tanh": lambda v: 1 - np.tanh(v) ** 2, "leaky": lambda v: np.where(v > 0, 1.0, 0.2),
         "identity": lambda v: np.ones_like(v)}[act]
    np.testing.assert_allclose(m(x), ref(z), rtol=1e-12, atol=1e-14)
    gx = m.backward(g)
    dz = g * d(z)
    np.testing.assert_allclose(gx, dz @ m[0].weight.data, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(m[0].weight.grad, dz.T @ x, rtol=1e-12, atol=1e-13)
    if bias:
        np.testing.assert_allclose(m[0].bias.grad, dz.sum(0), rtol=1e-12, atol=1e-13)


def test_flatten_and_dropout_match_torch(parity):
    torch = pytest.importorskip("torch")
    x = rand(2, 3, 4)
    g = rand(2, 12, seed=1)
    tx, ty = torch_forward_backward(torch.nn.Flatten(), x, g)
    f = nn.Flatten()
    parity(f(x), ty)
    parity(f.backward(g), tx.grad)
    pydl.manual_seed(0)
    d = nn.Dropout(0.25)
    y = d(x)
    mask = torch.from_numpy((y != 0).astype(np.float64))
    gg = rand(2, 3, 4, seed=2)
    # torch's dropout with this mask (torch.nn.functional.dropout's formula)
    tx, ty = torch_forward_backward(lambda v: v * mask / 0.75, x, gg)
    parity(y, ty)
    parity(d.backward(gg), tx.grad)


def test_empty_batch():
    pydl.manual_seed(0)
    m = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    y = m(np.zeros((0, 3), np.float32))
    assert y.shape == (0, 2)
    gx = m.backward(np.zeros((0, 2), np.float32))
    assert gx.shape == (0, 3)
    for p in m.parameters():
        np.testing.assert_array_equal(p.grad, np.zeros_like(p.data))


@pytest.mark.parametrize("make,shape", [(lambda dt: nn.Linear(3, 2, dtype=dt), (4, 3)),
                                        (lambda dt: nn.Conv2d(1, 2, 3, dtype=dt), (1, 1, 5, 5)),
                                        (lambda dt: nn.BatchNorm1d(3, dtype=dt), (4, 3)),
                                        (lambda dt: nn.Sequential(nn.Linear(3, 4, dtype=dt), nn.ReLU()), (2, 3))])
def test_data_of_the_other_float_dtype_names_the_fix(make, shape):
    """float64 data (numpy's default) into float32 layers: cast the data or convert the model."""
    with pytest.raises(TypeError, match=r"input: expected dtype float32 \(the layer's dtype\), got float64: cast the "
                                        r"data with x.astype\(np.float32\), or convert the model to float64 with "
                                        r"model.double\(\)"):
        make(np.float32)(np.ones(shape))
    with pytest.raises(TypeError, match=r"got float32: cast the data with x.astype\(np.float64\), or convert the "
                                        r"model to float32 with model.float\(\)"):
        make(np.float64)(np.ones(shape, np.float32))
    with pytest.raises(TypeError, match=r"got int64: cast the data with x.astype\(np.float32\)$"):
        make(np.float32)(np.ones(shape, np.int64))
    layer = make(np.float32).double()                                   # the fix named works
    assert layer(np.ones(shape)).dtype == np.float64
