"""Bad input across the public entry points: a TypeError/ValueError naming the argument, or a
documented correct result (strided views computed as their contiguous copies, NaN propagated),
never a crash, a hang or silently wrong numbers. Everything runs in-process: a crash fails the run."""
import io
import os
import zipfile

import numpy as np
import pytest
from numpy.lib.stride_tricks import as_strided

import pydl
from pydl import _C, data, nn, ops, optim
from pydl import model_selection as ms
from pydl.data import transforms as T
from pydl.train import Trainer

f32, f64 = np.float32, np.float64
RNG = np.random.default_rng(0)
X = RNG.standard_normal((6, 3)).astype(f32)
Y = np.array([0, 1, 2, 0, 1, 2])


def raises(exc, name, fn, *args, **kw):
    """fn(*args) raises exc whose message starts with (or names) ``name``."""
    with pytest.raises(exc) as info:
        fn(*args, **kw)
    assert name in str(info.value), str(info.value)


def readonly(a):
    a = np.array(a)
    a.setflags(write=False)
    return a


# Inputs that are not float32/float64 ndarrays.
NOT_FLOAT = {
    "list": [[1.0, 2.0]], "scalar": 1.0, "none": None,
    "int": np.ones((2, 2), np.int64), "bool": np.ones(2, bool), "f16": np.ones(2, np.float16),
    "complex": np.ones(2, np.complex64), "object": np.ones(2, object), "str": np.array(["a"]),
}

ELEMENTWISE = [ops.relu, ops.leaky_relu, ops.sigmoid, ops.tanh, ops.gelu, ops.softmax, ops.log_softmax]


# ---------------------------------------------------------------- pydl.ops
@pytest.mark.parametrize("fn", ELEMENTWISE, ids=lambda f: f.__name__)
@pytest.mark.parametrize("bad", list(NOT_FLOAT), ids=str)
def test_ops_reject_non_float(fn, bad):
    raises(TypeError, "x", fn, NOT_FLOAT[bad])


def _array_args(fn):
    """The positional parameters of ``fn`` without a default (the arrays it operates on)."""
    import inspect
    return [p.name for p in inspect.signature(fn).parameters.values()
            if p.default is inspect.Parameter.empty and p.kind == p.POSITIONAL_OR_KEYWORD]


OPS_ALL = [getattr(ops, n) for n in ops.__all__ if callable(getattr(ops, n))]


@pytest.mark.parametrize("fn", OPS_ALL, ids=lambda f: f.__name__)
def test_ops_name_every_non_array_argument(fn):
    """Every required argument of every pydl.ops function, replaced by a non-array (None, a str, a
    list, a 0-d or 1-d array where more is needed), gives a TypeError/ValueError, not an
    AttributeError/IndexError from deep inside."""
    names = _array_args(fn)
    for i, name in enumerate(names):
        for bad in (None, "a", [1.0, 2.0], f32(1.0), np.ones(3, f32)):
            args = [np.ones((2, 3, 4, 4), f32) for _ in names]
            args[i] = bad
            try:
                fn(*args)
            except (TypeError, ValueError):
                pass


@pytest.mark.parametrize("fn", ELEMENTWISE, ids=lambda f: f.__name__)
def test_ops_views_empty_nan(fn):
    base = RNG.standard_normal((5, 8)).astype(f32)
    for view in (base.T, base[::-1, ::-2], base[1:4, 2:7], base.astype(">f4").astype(f32)):
        np.testing.assert_array_equal(fn(view), fn(np.ascontiguousarray(view)))
    for shape in ((0, 3), (3, 0), (0,)):
        out = fn(np.ones(shape, f32))
        assert out.shape == shape and out.dtype == f32
    v = np.array([[np.nan, 1.0, 2.0]], f32)
    assert np.isnan(fn(v)[0, 0])  # NaN propagates (softmax: the whole row)


def test_ops_zero_d_and_byteswapped():
    assert ops.relu(np.array(-1.0, f32)).shape == ()
    raises(ValueError, "x", ops.softmax, np.array(1.0, f32))
    raises(TypeError, "x", ops.relu, np.ones(3, ">f4"))


def test_matmul_bad_input():
    a, b = X[:3].copy(), RNG.standard_normal((3, 5)).astype(f32)
    raises(TypeError, "a", ops.matmul, [[1.0]], b)
    raises(TypeError, "b", ops.matmul, a, None)
    raises(TypeError, "a", ops.matmul, a.astype(np.int32), b)
    raises(TypeError, "b", ops.matmul, a, b.astype(f64))
    raises(ValueError, "a", ops.matmul, np.array(1.0, f32), b)
    raises(ValueError, "b", ops.matmul, b, b)
    raises(TypeError, "out", ops.matmul, a, b, out=np.zeros((3, 5), f64))
    raises(ValueError, "out", ops.matmul, a, b, out=np.zeros((3, 4), f32))
    raises(ValueError, "out", ops.matmul, a, b, out=np.zeros((5, 3), f32).T)
    raises(ValueError, "out", ops.matmul, a, b, out=readonly(np.zeros((3, 5), f32)))


def test_matmul_views_and_overlap_exact():
    a = RNG.standard_normal((6, 7))
    b = RNG.standard_normal((7, 5))
    for va, vb in ((a[::-1], b[:, ::-1]), (a[::2], b.T.copy().T), (as_strided(a[:1], (6, 7), (0, 8)), b)):
        np.testing.assert_allclose(ops.matmul(va, vb), np.asarray(va) @ np.asarray(vb), rtol=1e-12, atol=1e-12)
    assert ops.matmul(np.ones((0, 7)), b).shape == (0, 5)
    np.testing.assert_array_equal(ops.matmul(np.ones((3, 0)), np.ones((0, 5))), np.zeros((3, 5)))
    buf = RNG.standard_normal(80)  # out partially overlaps a: documented as allowed, must be exact
    A, O = buf[:42].reshape(6, 7), buf[20:50].reshape(6, 5)
    ref = A @ b
    ops.matmul(A, b, out=O)
    np.testing.assert_allclose(O, ref, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- pydl._C
def test_gemm_binding():
    a, b, c = X[:3].copy(), RNG.standard_normal((3, 5)).astype(f32), np.zeros((3, 5), f32)
    raises(TypeError, "a", _C.gemm, [[1.0]], b, c)
    raises(TypeError, "c", _C.gemm, a, b, c.astype(f64))
    raises(ValueError, "c", _C.gemm, a, b, readonly(c))
    raises(ValueError, "c", _C.gemm, a, b, np.zeros((5, 3), f32).T)
    raises(ValueError, "c", _C.gemm, a, b, np.zeros((3, 5), f32)[::-1])
    raises(ValueError, "bias", _C.gemm, a, b, c, bias=np.zeros(4, f32))
    raises(ValueError, "bias", _C.gemm, a, b, c, bias=np.zeros(10, f32)[::2])
    raises(ValueError, "activation", _C.gemm, a, b, c, activation="swish")
    # Sizes past 2**31 built with zero strides (nothing allocated): refused before any work.
    zs = lambda shape: as_strided(np.zeros(1, f32), shape, (0,) * len(shape))  # noqa: E731
    raises(ValueError, "a", _C.gemm, zs((2 ** 31 + 3, 2 ** 29)), zs((2 ** 29, 4)), zs((2 ** 31 + 3, 4)))
    raises(ValueError, "c", _C.gemm, np.zeros((3, 0), f32), zs((0, 2 ** 31 + 3)), zs((3, 2 ** 31 + 3)))
    raises(ValueError, "x", _C.activation_forward, "relu", as_strided(np.zeros(1, f32), (2 ** 40,), (0,)),
           np.zeros(1, f32))
    buf = np.zeros(64, f32)
    raises(ValueError, "c", _C.gemm, buf[:9].reshape(3, 3), b[:, :3].copy(), buf[4:13].reshape(3, 3))


def test_activation_softmax_bindings():
    x = X.copy()
    raises(TypeError, "x", _C.activation_forward, "relu", [1.0], np.zeros(1))
    raises(ValueError, "activation", _C.activation_forward, "nope", x, np.empty_like(x))
    raises(ValueError, "out", _C.activation_forward, "relu", x, readonly(x))
    raises(ValueError, "out", _C.activation_forward, "relu", x, np.empty((3, 6), f32))
    raises(TypeError, "out", _C.activation_forward, "relu", x, np.empty_like(x, f64))
    raises(ValueError, "x", _C.activation_forward, "relu", x.T, np.empty((3, 6), f32))
    buf = RNG.standard_normal(20).astype(f32)
    raises(ValueError, "out", _C.activation_forward, "relu", buf[:10], buf[2:12])
    raises(ValueError, "x", _C.activation_backward, "relu", x, None, None, np.empty_like(x))
    raises(ValueError, "y", _C.activation_backward, "tanh", x, None, None, np.empty_like(x))
    raises(ValueError, "x", _C.activation_backward, "relu", x, x[:2], None, np.empty_like(x))
    raises(ValueError, "x", _C.softmax_forward, np.array(1.0, f32), np.array(1.0, f32))
    raises(ValueError, "y", _C.softmax_backward, x, x[:2], np.empty_like(x))
    raises(ValueError, "grad_in", _C.softmax_backward, x, x.copy(), readonly(x))
    y = x.copy()  # in place (out is x) is documented
    _C.activation_forward("relu", y, y)
    np.testing.assert_array_equal(y, np.maximum(x, 0))


def test_cross_entropy_binding():
    t = np.array([0, 1, 2, 0, 1, 2])
    raises(TypeError, "target", _C.cross_entropy, X, t.astype(np.int32))
    raises(TypeError, "target", _C.cross_entropy, X, t.astype(">i8"))
    raises(ValueError, "target", _C.cross_entropy, X, np.array([0, -1, 2, 0, 1, 2]))
    raises(ValueError, "target", _C.cross_entropy, X, np.array([0, 3, 2, 0, 1, 2]))
    raises(ValueError, "target", _C.cross_entropy, X, t[:5])
    raises(ValueError, "target", _C.cross_entropy, X, np.repeat(t, 2)[::2])
    raises(ValueError, "logits", _C.cross_entropy, np.zeros((6, 0), f32), t)
    raises(ValueError, "logits", _C.cross_entropy, X[:, 0].copy(), t)
    raises(TypeError, "target", _C.cross_entropy, X, np.ones((6, 3), f64))
    raises(ValueError, "label_smoothing", _C.cross_entropy, X, t, label_smoothing=float("nan"))
    raises(ValueError, "reduction", _C.cross_entropy, X, t, reduction="none")
    raises(ValueError, "weight", _C.cross_entropy, X, t, weight=np.ones(2, f32))
    raises(ValueError, "grad", _C.cross_entropy, X, t, grad=readonly(X))
    assert np.isnan(_C.cross_entropy(np.zeros((0, 3), f32), np.zeros(0, np.int64)))  # torch: mean of nothing


def test_optimizer_step_bindings():
    p, g = np.zeros(5, f32), np.ones(5, f32)
    sgd = lambda params, grads, bufs=None, first=None, mom=0.0: _C.sgd_step(  # noqa: E731
        params, grads, bufs, first, 0.1, mom, 0.0, 0.0, False, False)
    sgd([p.copy()], [g])  # documented: momentum_buffers and first may be None without momentum
    q = np.zeros(5, f32)
    sgd([q], [g], [np.zeros(5, f32)], [True], 0.9)
    np.testing.assert_allclose(q, -0.1 * g)
    raises(ValueError, "first", sgd, [p.copy()], [g], [np.zeros(5, f32)], None, 0.9)
    raises(ValueError, "first", sgd, [p.copy()], [g], [np.zeros(5, f32)], [], 0.9)
    raises(TypeError, "params", sgd, p.copy(), [g])
    raises(TypeError, "params[0]", sgd, [np.zeros(5, np.int64)], [g])
    raises(TypeError, "grads[0]", sgd, [p.copy()], [g.astype(f64)])
    raises(ValueError, "grads[0]", sgd, [p.copy()], [g[:3]])
    raises(ValueError, "grads", sgd, [p.copy()], [g, g])
    raises(ValueError, "params[0]", sgd, [np.zeros(10, f32)[::2]], [g])
    raises(ValueError, "params[0]", sgd, [readonly(p)], [g])
    same = p.copy()
    raises(ValueError, "params[1]", sgd, [same, same], [g, g])
    m, v = np.zeros(5, f32), np.zeros(5, f32)
    adam = lambda st, steps, ams=False, mm=m, vv=v: _C.adam_step(  # noqa: E731
        [p.copy()], [g], [mm], [vv], st, steps, 1e-3, 0.9, 0.999, 1e-8, 0.0, ams, False)
    raises(ValueError, "steps[0]", adam, None, [0])
    raises(ValueError, "steps", adam, None, [])
    raises(ValueError, "max_exp_avg_sqs", adam, None, [1], True)
    raises(ValueError, "exp_avg_sqs[0]", adam, None, [1], False, m, m)
    raises(ValueError, "grad_avgs", _C.rmsprop_step, [p.copy()], [g], [np.zeros(5, f32)], None, None,
           0.01, 0.99, 1e-8, 0.0, 0.0, True, False)
    raises(ValueError, "acc_deltas", _C.adadelta_step, [p.copy()], [g], [np.zeros(5, f32)], [], 1.0, 0.9,
           1e-6, 0.0, False)


def test_nn_kernel_bindings():
    x, w = X[:4].copy(), RNG.standard_normal((2, 3)).astype(f32)
    y = np.zeros((4, 2), f32)
    raises(TypeError, "input", _C.linear_forward, [[1.0, 2.0, 3.0]], w, None, y)
    raises(TypeError, "input", _C.linear_forward, None, w, None, y)
    raises(TypeError, "out", _C.linear_forward, x, w, None, [[0.0] * 2] * 4)
    raises(ValueError, "weight", _C.linear_forward, x, w.T.copy(), None, y)
    raises(ValueError, "weight", _C.linear_forward, x, np.ascontiguousarray(w.T).T, None, y)
    raises(ValueError, "bias", _C.linear_forward, x, w, np.zeros(3, f32), y)
    raises(TypeError, "bias", _C.linear_forward, x, w, [0.0, 0.0], y)
    raises(ValueError, "out", _C.linear_forward, x, w, None, readonly(y))
    raises(ValueError, "activation", _C.linear_forward, x, w, None, y, "swish")
    sq, wsq = RNG.standard_normal((3, 3)).astype(f32), RNG.standard_normal((3, 3)).astype(f32)
    raises(ValueError, "out", _C.linear_forward, sq, wsq, None, sq)  # out aliasing input
    raises(ValueError, "out", _C.linear_forward, sq, wsq, None, wsq)
    dy, gw = np.ones((3, 3), f32), np.zeros((3, 3), f32)
    # grad_in aliasing the input used to corrupt grad_weight silently
    raises(ValueError, "grad_in", _C.linear_backward, dy, sq, wsq, None, sq, gw, None)
    raises(ValueError, "grad_weight", _C.linear_backward, dy, sq, wsq, None, None, wsq, None)
    raises(ValueError, "grad_out", _C.linear_backward, np.ones((4, 3), f32), x, w, None, None,
           np.zeros((2, 3), f32), None)
    raises(ValueError, "out", _C.linear_backward, np.ones((4, 2), f32), x, w, None, None,
           np.zeros((2, 3), f32), None, "relu")
    xb = X[:4].copy()
    raises(ValueError, "out", _C.batchnorm_forward_train, xb, None, None, xb, np.zeros(3, f32),
           np.zeros(3, f32), None, None, 1e-5, 0.1)
    raises(ValueError, "running_mean", _C.batchnorm_forward_eval, xb, None, None, np.zeros(2, f32),
           np.ones(3, f32), np.empty_like(xb), 1e-5)
    raises(ValueError, "weight", _C.batchnorm_forward_eval, xb, np.ones(3, f32), None, np.zeros(3, f32),
           np.ones(3, f32), np.empty_like(xb), 1e-5)
    raises(ValueError, "grad_in", _C.batchnorm_backward, xb, xb, np.zeros(3, f32), np.ones(3, f32), None,
           xb, None, None, True, False)
    mask = np.zeros(12, np.uint8)
    raises(TypeError, "mask", _C.dropout_forward, xb, np.empty_like(xb), np.zeros(12, np.int64), 0.5, 1)
    raises(ValueError, "mask", _C.dropout_forward, xb, np.empty_like(xb), np.zeros(11, np.uint8), 0.5, 1)
    raises(ValueError, "p", _C.dropout_forward, xb, np.empty_like(xb), mask, 1.5, 1)
    raises(ValueError, "mask", _C.dropout_mask, readonly(mask), 0.5, 1)
    flat = RNG.standard_normal(16).astype(f32)
    raises(ValueError, "out", _C.dropout_forward, flat[:12], flat[2:14], mask, 0.5, 1)
    raises(ValueError, "grad_in", _C.dropout_backward, flat[:12], mask, flat[1:13], 0.5)
    out = np.empty_like(xb)
    _C.dropout_forward(xb, out, mask, 1.0, 1)  # p = 1 drops everything (torch), no 0 * inf
    np.testing.assert_array_equal(out, np.zeros_like(xb))


# ---------------------------------------------------------------- nn layers and losses
LAYERS = {
    "Linear": lambda: nn.Linear(3, 2), "BatchNorm1d": lambda: nn.BatchNorm1d(3), "ReLU": nn.ReLU,
    "Softmax": nn.Softmax, "Dropout": lambda: nn.Dropout(0.5),
    "Sequential": lambda: nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)),
}


@pytest.mark.parametrize("layer", list(LAYERS), ids=str)
def test_layer_forward_backward(layer):
    for bad in ("list", "none", "int", "f16", "object"):
        raises(TypeError, "input", LAYERS[layer](), NOT_FLOAT[bad])
    m = LAYERS[layer]()
    if layer in ("Linear", "BatchNorm1d", "Sequential"):
        raises(TypeError, "input", m, X.astype(f64))  # float64 into a float32 layer
        raises(ValueError, "input", m, np.ones((2, 4), f32))
        raises(ValueError, "input", m, np.array(1.0, f32))
    if layer == "Dropout":
        m.eval()
    ref = m(np.ascontiguousarray(X[::-1]))
    np.testing.assert_allclose(m(X[::-1]), ref, rtol=1e-6, atol=1e-6)
    raises(ValueError, "grad_out", m.backward, np.ones((ref.shape[0] + 1,) + ref.shape[1:], f32))
    raises(TypeError, "grad_out", m.backward, np.ones(ref.shape, f64))
    raises(TypeError, "grad_out", m.backward, ref.tolist())


def test_layer_constructors():
    raises(ValueError, "in_features", nn.Linear, -1, 2)
    raises(TypeError, "in_features", nn.Linear, 2.5, 2)
    raises(ValueError, "num_features", nn.BatchNorm1d, 0)
    raises(ValueError, "eps", nn.BatchNorm1d, 3, eps=-1.0)
    raises(ValueError, "p", nn.Dropout, 1.5)
    raises(ValueError, "p", nn.Dropout, float("nan"))
    raises(ValueError, "input", nn.BatchNorm1d(3), X[:1])  # one value per channel in training
    raises(ValueError, "activation", nn.Linear, 3, 2, activation="gelu")
    raises(ValueError, "activation", nn.Linear, 3, 2, activation="leaky_relu", negative_slope=-1.0)
    raises(TypeError, "negative_slope", nn.Linear, 3, 2, activation="leaky_relu", negative_slope="0.1")
    raises(ValueError, "std", nn.GaussianNoise, -1.0)
    raises(TypeError, "p", nn.Dropout, "0.5")


def test_containers_and_reuse():
    raises(TypeError, "module", nn.ModuleList().append, "relu")
    raises(TypeError, "modules[1]", nn.ModuleList, [nn.ReLU(), None])
    raises(TypeError, "modules", nn.ModuleList, 3)
    raises(TypeError, "name", nn.ModuleDict().__setitem__, 1, nn.ReLU())
    raises(KeyError, "name", nn.ModuleDict().__setitem__, "a.b", nn.ReLU())
    raises(TypeError, "module", nn.ModuleDict().__setitem__, "a", "relu")
    raises(TypeError, "index", nn.ModuleList([nn.ReLU()]).__getitem__, "0")
    raises(TypeError, "dtype", nn.Linear(3, 2).to, np.int64)
    raises(TypeError, "dtype", nn.Linear(3, 2).to, "bogus")
    raises(TypeError, "hook", nn.Linear(3, 2).register_forward_hook, None)
    raises(TypeError, "input_shape", nn.summary, nn.Linear(3, 2), None)
    raises(RuntimeError, "no_grad", nn.Linear(3, 2).backward, np.ones((6, 2), f32))
    lin = nn.Linear(3, 2)
    with pydl.no_grad():
        y = lin(X)
    raises(RuntimeError, "no_grad", lin.backward, np.ones_like(y))


@pytest.mark.parametrize("loss", ["CrossEntropyLoss", "NLLLoss"])
def test_class_losses(loss):
    fn = getattr(nn, loss)()
    raises(TypeError, "target", fn, X, Y.tolist())
    raises(TypeError, "target", fn, X, None)
    raises(TypeError, "target", fn, X, Y.astype(object))
    raises(ValueError, "target", fn, X, -Y)
    raises(ValueError, "target", fn, X, Y + 1)
    raises(ValueError, "target", fn, X, np.array([0, 2 ** 63, 1, 0, 1, 2], np.uint64))
    raises(ValueError, "target", fn, X, Y[:5])
    raises(ValueError, "target", fn, X, Y[:, None])
    raises(TypeError, "input", fn, X.astype(np.int64), Y)
    raises(TypeError, "input", fn, X.tolist(), Y)
    raises(ValueError, "input", fn, X[0], np.array(0))
    raises(ValueError, "weight", getattr(nn, loss)(weight=np.ones(2)), X, Y)
    raises(TypeError, "weight", getattr(nn, loss), weight=[1.0, 1.0, 1.0])
    raises(ValueError, "reduction", getattr(nn, loss), reduction="avg")     # "none" is valid (issue 11)
    assert fn(np.asfortranarray(X), Y) == pytest.approx(fn(np.ascontiguousarray(X), Y), rel=1e-6)


@pytest.mark.parametrize("loss", ["MSELoss", "L1Loss", "BCEWithLogitsLoss"])
def test_elementwise_losses(loss):
    fn = getattr(nn, loss)()
    raises(TypeError, "target", fn, X, X.tolist())
    raises(TypeError, "target", fn, X, None)
    raises(TypeError, "target", fn, X, X.astype(np.complex64))
    raises(TypeError, "target", fn, X, np.full(X.shape, "a"))
    raises(ValueError, "target", fn, X, X[:1])  # no silent broadcasting
    raises(TypeError, "input", fn, X.astype(np.float16), X)


# ---------------------------------------------------------------- optimizers
def test_optimizers():
    m = nn.Linear(3, 2)
    for name, kw in [("SGD", {"lr": -1.0}), ("SGD", {"lr": float("nan")}), ("SGD", {"lr": 0.1, "momentum": -1}),
                     ("Adam", {"betas": (1.0, 0.9)}), ("Adam", {"eps": -1.0}), ("RMSprop", {"alpha": -1.0}),
                     ("Adagrad", {"lr_decay": -1.0}), ("Adadelta", {"rho": 2.0}),
                     ("AdamW", {"weight_decay": -1.0})]:
        with pytest.raises(ValueError):
            getattr(optim, name)(m.parameters(), **kw)
    raises(ValueError, "betas", optim.Adam, m.parameters(), betas=0.9)
    raises(TypeError, "params", optim.SGD, None, lr=0.1)
    raises(TypeError, "params", optim.SGD, 3, lr=0.1)
    raises(ValueError, "params", optim.SGD, [], lr=0.1)
    raises(TypeError, "params[0]", optim.SGD, [np.zeros(3)], lr=0.1)

    def step_with(grad):
        mm = nn.Linear(3, 2)
        mm.weight.grad = grad
        optim.Adam(mm.parameters()).step()

    raises(ValueError, "grad", step_with, np.ones((3, 2), f32))
    raises(TypeError, "grad", step_with, np.ones((2, 3), f64))
    raises(TypeError, "grad", step_with, [[1.0] * 3] * 2)
    mm = nn.Linear(3, 2)  # a transposed (non-contiguous) gradient is used as its values
    w0 = mm.weight.data.copy()
    g = np.arange(6, dtype=f32).reshape(3, 2).T
    mm.weight.grad = g
    optim.SGD(mm.parameters(), lr=1.0).step()
    np.testing.assert_allclose(mm.weight.data, w0 - g, rtol=1e-6)


# ---------------------------------------------------------------- Trainer
def _trainer():
    m = nn.Sequential(nn.Linear(3, 3))
    return Trainer(m, nn.CrossEntropyLoss(), optim.SGD(m.parameters(), lr=0.1))


@pytest.mark.parametrize("kw,name", [
    ({"batch_size": 0}, "batch_size"), ({"batch_size": -1}, "batch_size"), ({"batch_size": 1.5}, "batch_size"),
    ({"batch_size": True}, "batch_size"), ({"epochs": -1}, "epochs"), ({"epochs": 2.0}, "epochs"),
    ({"validation_split": 1.0}, "validation_split"), ({"validation_split": -0.1}, "validation_split"),
    ({"validation_split": float("nan")}, "validation_split"), ({"validation_split": True}, "validation_split"),
    ({"validation_data": (X,)}, "validation_data"), ({"verbose": 3}, "verbose"),
    ({"validation_data": (X[:, :2], Y)}, "validation_data[0]"),
])
def test_fit_bad_arguments(kw, name):
    raises(ValueError, name, _trainer().fit, X, Y, **{"verbose": 0, **kw})


def test_fit_evaluate_predict_bad_data():
    t = _trainer()
    assert len(t.fit(X, Y, epochs=0, verbose=0).history.get("loss", [])) == 0
    t.fit(X, Y, epochs=1, validation_split=np.float64(0.5), verbose=0)  # numpy scalars are real numbers
    for fn in (lambda x, y: t.fit(x, y, epochs=1, verbose=0), t.evaluate):
        raises(TypeError, "x", fn, None, Y)
        raises(TypeError, "x", fn, X.astype(np.complex64), Y)
        raises(ValueError, "y", fn, X, -Y)
        raises(ValueError, "y", fn, X, Y + 1)
        raises(ValueError, "y", fn, X, Y[:5])
        raises(ValueError, "x", fn, X[:0], Y[:0])
        raises(ValueError, "x", fn, np.full_like(X, np.nan), Y)
        raises(ValueError, "y", fn, X, np.ones((6, 2), f32))
        with pytest.raises(ValueError) as info:  # names x and its actual shape
            fn(X[:, :2], Y)
        assert str(info.value).startswith("x:") and "(6, 2)" in str(info.value)
    raises(ValueError, "x", t.predict, X[:0])
    raises(ValueError, "batch_size", t.predict, X, batch_size=0)
    raises(ValueError, "batch_size", t.evaluate, X, Y, batch_size=-1)
    raises(TypeError, "model", Trainer, None, nn.CrossEntropyLoss(), None)


# ---------------------------------------------------------------- data
def test_dataloader():
    for kw, exc in [({"batch_size": 0}, ValueError), ({"batch_size": -1}, ValueError),
                    ({"batch_size": 1.5}, TypeError), ({"batch_size": True}, TypeError),
                    ({"transform": 3}, TypeError), ({"seed": "a"}, TypeError)]:
        raises(exc, next(iter(kw)), data.DataLoader, X, Y, **kw)
    raises(ValueError, "x", data.DataLoader, None)
    raises(ValueError, "x", data.DataLoader, X[:0])
    raises(ValueError, "y", data.DataLoader, X, Y[:3])


IMG = RNG.random((4, 1, 8, 8)).astype(f32)
TRANSFORMS = {
    "RandomRotation": lambda: T.RandomRotation(10), "RandomHorizontalFlip": T.RandomHorizontalFlip,
    "RandomVerticalFlip": T.RandomVerticalFlip, "RandomCrop": lambda: T.RandomCrop(6),
    "GaussianNoise": lambda: T.GaussianNoise(0.1), "Cutout": lambda: T.Cutout(3),
}


@pytest.mark.parametrize("name", list(TRANSFORMS), ids=str)
def test_transforms(name):
    for bad in ("list", "none", "int", "f16", "object"):
        raises(TypeError, "x", TRANSFORMS[name](), NOT_FLOAT[bad] if bad != "list" else IMG.tolist())
    raises(TypeError, "x", TRANSFORMS[name](), IMG.astype(">f4"))
    raises(ValueError, "x", TRANSFORMS[name](), IMG[:0])
    for view in (IMG[:, :, ::-1], np.moveaxis(np.moveaxis(IMG, 3, 0).copy(), 0, 3)):
        assert TRANSFORMS[name]()(view).shape[0] == 4


def test_transform_parameters_and_mixers():
    raises(ValueError, "size", T.RandomCrop, 0)
    raises(ValueError, "size", T.RandomCrop(20), IMG)
    raises(ValueError, "degrees", T.RandomRotation, float("nan"))
    raises(ValueError, "std", T.GaussianNoise, -1.0)
    raises(ValueError, "size", T.Cutout, 0)
    raises(ValueError, "alpha", T.Mixup, alpha=-1.0)
    raises(ValueError, "p", T.RandomHorizontalFlip, p=2.0)
    for mixer in (T.Mixup, T.CutMix):
        raises(ValueError, "y", mixer(num_classes=3), IMG, np.array([0, -1, 1, 0]))
        raises(ValueError, "y", mixer(num_classes=3), IMG, np.array([0, 5, 1, 0]))
        raises(TypeError, "y", mixer(num_classes=3), IMG, np.array([0.0, 1, 1, 0]))
        raises(ValueError, "y", mixer(num_classes=3), IMG, np.array([0, 1]))
        raises(TypeError, "y", mixer(num_classes=3), IMG, None)


# ---------------------------------------------------------------- model_selection
def test_splitters():
    raises(ValueError, "n_splits", ms.KFold, 1)
    raises(TypeError, "n_splits", ms.KFold, 2.5)
    raises(ValueError, "n_splits", lambda: list(ms.KFold(7).split(X)))
    raises(TypeError, "X", lambda: list(ms.KFold(2).split(None)))
    raises(ValueError, "n_splits", lambda: list(ms.KFold(2).split(X[:0])))
    raises(ValueError, "y", lambda: list(ms.StratifiedKFold(2).split(X, None)))
    raises(ValueError, "y", lambda: list(ms.StratifiedKFold(2).split(X, Y[:4])))
    raises(ValueError, "y", lambda: list(ms.StratifiedKFold(2).split(X, np.array([0, 1, np.nan] * 2))))
    for kw, exc in [({"test_size": 0}, ValueError), ({"test_size": 1.0}, ValueError), ({"test_size": 7}, ValueError),
                    ({"test_size": float("nan")}, ValueError), ({"test_size": "a"}, TypeError)]:
        raises(exc, "test_size", ms.train_test_split, X, Y, **kw)
    raises(ValueError, "stratify", ms.train_test_split, X, Y, stratify=Y[:3])
    raises(ValueError, "arrays", ms.train_test_split)


# ---------------------------------------------------------------- checkpoints
def _npz_with(member_bytes, compress=zipfile.ZIP_STORED):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", compress) as z:
        z.writestr("a.npy", member_bytes)
    return b.getvalue()


def _npy_header(descr_and_shape):
    hdr = "{" + descr_and_shape + "}"
    hdr += " " * (117 - len(hdr)) + "\n"
    return b"\x93NUMPY\x01\x00" + len(hdr).to_bytes(2, "little") + hdr.encode()


def test_load_corrupt_and_foreign(tmp_path):
    good = tmp_path / "good.npz"
    pydl.save({"w": np.arange(50.0)}, good)
    gb = good.read_bytes()
    arr = io.BytesIO()
    np.save(arr, np.ones(100))
    deflated = bytearray(_npz_with(arr.getvalue(), zipfile.ZIP_DEFLATED))
    deflated[60] ^= 0xFF
    cases = {
        "empty": b"", "text": b"hello", "half": gb[: len(gb) // 2], "tail": gb[:-10],
        "flipped": gb[:70] + bytes([gb[70] ^ 0xFF]) + gb[71:], "deflate": bytes(deflated),
        "bad_header": _npz_with(b"\x93NUMPY\x01\x00\x10\x00{'descr': 'zz', }\n"),
        "huge_shape": _npz_with(_npy_header("'descr': '<f8', 'fortran_order': False, 'shape': (100000000000,), ")),
        "short_data": _npz_with(_npy_header("'descr': '<f8', 'fortran_order': False, 'shape': (4,), ") + b"\0" * 8),
    }
    for name, content in cases.items():
        p = tmp_path / f"{name}.npz"
        p.write_bytes(content)
        with pytest.raises(ValueError) as info:
            pydl.load(p)
        assert str(p) in str(info.value), (name, str(info.value))
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, a=np.array([{}], dtype=object))
    raises(ValueError, "pickled", pydl.load, pickled)
    np.save(tmp_path / "x.npy", np.ones(3))
    raises(ValueError, "x.npy", pydl.load, tmp_path / "x.npy")
    raises(ValueError, str(tmp_path), pydl.load, tmp_path)
    raises(TypeError, "path", pydl.load, None)
    raises(FileNotFoundError, "path", pydl.load, tmp_path / "absent.npz")
    np.testing.assert_array_equal(pydl.load(good)["w"], np.arange(50.0))


def test_failed_save_and_load_state_dict_lose_nothing(tmp_path):
    p = tmp_path / "ckpt.npz"
    pydl.save({"a": np.ones(3)}, p)
    raises(TypeError, "obj", pydl.save, {"a": np.array([{}], dtype=object)}, p)
    raises(TypeError, "obj", pydl.save, {1: np.ones(3)}, p)
    np.testing.assert_array_equal(pydl.load(p)["a"], np.ones(3))
    assert sorted(os.listdir(tmp_path)) == ["ckpt.npz"]  # no temporary left behind
    m = nn.Linear(3, 2)
    w0 = m.weight.data.copy()
    with pytest.raises(ValueError):  # the bias mismatch must not leave weight half-loaded
        m.load_state_dict({"weight": np.ones((2, 3), f32), "bias": np.ones(5, f32)})
    np.testing.assert_array_equal(m.weight.data, w0)


# ---------------------------------------------------------------- found later in the sweep
def test_gemm_bias_sharing_c_rejected():
    # The epilogue reads bias while writing c: a bias inside c gave silently wrong numbers.
    a, b = RNG.standard_normal((8, 4)).astype(f32), RNG.standard_normal((4, 8)).astype(f32)
    buf = np.zeros(8 * 8, f32)
    raises(ValueError, "bias", _C.gemm, a, b, buf.reshape(8, 8), bias=buf[8:16])
    c, bias = np.zeros((8, 8), f32), RNG.standard_normal(8).astype(f32)
    _C.gemm(a, b, c, bias=bias)
    np.testing.assert_allclose(c, a @ b + bias, rtol=1e-5, atol=1e-5)


def test_set_num_threads_bounds():
    before = pydl.get_num_threads()
    try:
        raises(ValueError, "n", pydl.set_num_threads, 10 ** 6)  # used to spawn a thread per chunk: hang
        raises(ValueError, "n", pydl.set_num_threads, 2 ** 40)
        raises(ValueError, "n", pydl.set_num_threads, 0)
        raises(TypeError, "n", pydl.set_num_threads, 2.0)
    finally:
        pydl.set_num_threads(before)


def test_metrics_and_state_dict_and_loader_messages():
    from pydl.train import metrics
    raises(ValueError, "y_true", metrics.accuracy, np.array([0, 1]), np.ones((3, 2)))
    raises(ValueError, "y_true", metrics.accuracy, np.array([0, 1]), np.ones((3, 1)))
    m = nn.Linear(3, 2)
    w0 = m.weight.data.copy()
    with pytest.raises(ValueError) as info:  # complex would silently lose its imaginary part
        m.load_state_dict({"weight": np.ones((2, 3), np.complex64), "bias": np.ones(2)})
    assert "weight" in str(info.value)
    np.testing.assert_array_equal(m.weight.data, w0)
    raises(ValueError, "x", data.DataLoader, [[1.0, 2.0], [3.0]])


def test_functional_transforms_positions():
    # Float positions were truncated silently (NaN cast to garbage); huge ones overflowed int64.
    raises(ValueError, "top", T.crop, IMG, 1.7, 0, 4)
    raises(ValueError, "top", T.crop, IMG, np.full(4, np.nan), 0, 4)
    raises(ValueError, "top", T.crop, IMG, np.full(4, 2 ** 63, np.uint64), 0, 4)
    raises(ValueError, "centers_y", T.cutout, IMG, np.full(4, np.nan), 3, 3)
    raises(ValueError, "centers_x", T.cutout, IMG, 3, -(2 ** 62), 3)
    raises(TypeError, "centers_y", T.cutout, IMG, np.array([None] * 4), 3, 3)
    raises(TypeError, "angle", T.rotate, IMG, "a")
    raises(TypeError, "transforms", T.Compose, None)
    np.testing.assert_array_equal(T.crop(IMG, 2.0, 1, 4), IMG[:, :, 2:6, 1:5])  # integral floats are fine
    np.testing.assert_array_equal(T.cutout(IMG, 3, 3, 2 ** 63 - 1), np.zeros_like(IMG))  # covers everything


def _misaligned(shape, dtype):
    """A C-contiguous array at an address that is not a multiple of its item size."""
    n = int(np.prod(shape)) * np.dtype(dtype).itemsize
    buf = np.zeros(n + 1, np.uint8)
    a = np.frombuffer(buf.data, dtype=np.uint8, count=n, offset=1).view(dtype).reshape(shape)
    assert not a.flags.aligned and a.flags.c_contiguous
    return a


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_misaligned_arrays_refused_by_bindings_copied_by_ops(dtype):
    x = _misaligned((3, 5), dtype)
    x[...] = np.arange(15, dtype=dtype).reshape(3, 5) / 7
    out = np.empty((3, 5), dtype)
    with pytest.raises(ValueError, match=r"x: expected an aligned array"):
        _C.softmax_forward(x, out)
    with pytest.raises(ValueError, match=r"aligned"):
        _C.activation_forward("relu", x, out, 0.0)
    e = np.exp(x - x.max(-1, keepdims=True))
    np.testing.assert_allclose(pydl.ops.softmax(x), e / e.sum(-1, keepdims=True), rtol=1e-6)
    np.testing.assert_allclose(pydl.ops.matmul(x, x.T.copy()), x.astype(np.float64) @ x.T, rtol=1e-5)
