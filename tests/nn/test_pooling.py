"""nn.MaxPool1d/2d, nn.AvgPool1d/2d, nn.AdaptiveAvgPool1d/2d against torch (values and dL/dx),
central-difference gradient checks, module reuse, no_grad and bad input."""
import numpy as np
import pytest

import pydl
from pydl import nn

torch = pytest.importorskip("torch")

DTYPES = [np.float32, np.float64]

# (class name, constructor args, input shape)
CASES = [
    ("MaxPool2d", (2,), (2, 3, 8, 8)),
    ("MaxPool2d", (3, 2, 1), (2, 2, 7, 9)),
    ("MaxPool2d", ((2, 3), (1, 2), (1, 1)), (1, 3, 5, 8)),
    ("MaxPool2d", (3,), (2, 7, 7)),  # unbatched
    ("MaxPool1d", (2,), (2, 3, 9)),
    ("MaxPool1d", (4, 1, 2), (2, 2, 7)),
    ("AvgPool2d", (2,), (2, 3, 8, 6)),
    ("AvgPool2d", (3, 2, 1), (2, 2, 7, 9)),
    ("AvgPool2d", ((3, 2), 1, (1, 0)), (1, 2, 5, 4)),
    ("AvgPool1d", (3, 2, 1), (2, 3, 10)),
    ("AvgPool1d", (2,), (3, 7)),
    ("AdaptiveAvgPool2d", (1,), (2, 4, 5, 5)),
    ("AdaptiveAvgPool2d", ((3, 4),), (2, 2, 7, 10)),
    ("AdaptiveAvgPool2d", ((2, None),), (1, 3, 5, 6)),
    ("AdaptiveAvgPool2d", (4,), (2, 3, 3)),  # more bins than rows: overlapping bins
    ("AdaptiveAvgPool1d", (3,), (2, 3, 11)),
    ("AdaptiveAvgPool1d", (5,), (2, 4)),
]


def rand(shape, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name, args, shape", CASES)
def test_matches_torch(name, args, shape, dtype, parity):
    layer, ref = getattr(nn, name)(*args), getattr(torch.nn, name)(*args)
    x = rand(shape, dtype)
    xt = torch.from_numpy(x.copy()).requires_grad_()
    y, yt = layer(x), ref(xt)
    g = rand(y.shape, dtype, 1)
    yt.backward(torch.from_numpy(g))
    parity(y, yt, "output")
    assert y.dtype == x.dtype
    parity(layer.backward(g), xt.grad, "grad input")


@pytest.mark.parametrize("name, args, shape", [
    ("MaxPool2d", (3, 2, 1), (2, 2, 5, 6)), ("MaxPool1d", (2, 1), (2, 2, 6)),
    ("AvgPool2d", (3, 2, 1), (2, 2, 5, 6)), ("AvgPool1d", (3, 2, 1), (2, 2, 7)),
    ("AdaptiveAvgPool2d", ((2, 3),), (2, 2, 5, 7)), ("AdaptiveAvgPool1d", (4,), (2, 2, 6)),
])
def test_numerical_gradients(name, args, shape, check_module_grads):
    check_module_grads(getattr(nn, name)(*args), rand(shape, np.float64, 4), params=False)


@pytest.mark.parametrize("name", ["MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d"])
def test_reuse_twice_then_backward_twice(name, parity):
    layer, ref = getattr(nn, name)(2), getattr(torch.nn, name)(2)
    a, b = rand((2, 3, 6, 6), np.float64), rand((2, 3, 4, 4), np.float64, 1)
    ya, yb = layer(a), layer(b)
    ga, gb = rand(ya.shape, np.float64, 2), rand(yb.shape, np.float64, 3)
    db = layer.backward(gb)
    da = layer.backward(ga)
    at, bt = (torch.from_numpy(v.copy()).requires_grad_() for v in (a, b))
    torch.autograd.backward([ref(at), ref(bt)], [torch.from_numpy(ga), torch.from_numpy(gb)])
    parity(da, at.grad)
    parity(db, bt.grad)


def test_no_grad_saves_nothing():
    pool = nn.MaxPool2d(2)
    with pydl.no_grad():
        pool(rand((1, 1, 4, 4), np.float32))
    assert pool._pending == []


@pytest.mark.parametrize("make, exc, match", [
    (lambda: nn.MaxPool2d(0), ValueError, "kernel_size"),
    (lambda: nn.MaxPool2d(2, stride=0), ValueError, "stride"),
    (lambda: nn.MaxPool2d(3, padding=2), ValueError, "padding.*half"),
    (lambda: nn.AvgPool1d(2, padding=2), ValueError, "padding.*half"),
    (lambda: nn.AvgPool2d((2, 4), padding=(1, 3)), ValueError, "padding.*half"),
    (lambda: nn.MaxPool2d(2, padding=-1), ValueError, "padding"),
    (lambda: nn.MaxPool1d((2, 2)), ValueError, "kernel_size"),
    (lambda: nn.AvgPool2d(1.5), TypeError, "kernel_size"),
    (lambda: nn.AdaptiveAvgPool2d(0), ValueError, "output_size"),
    (lambda: nn.AdaptiveAvgPool2d((1, 2, 3)), ValueError, "output_size"),
    (lambda: nn.AdaptiveAvgPool1d("3"), TypeError, "output_size"),
])
def test_bad_constructor_arguments(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


@pytest.mark.parametrize("layer, x, exc, match", [
    (nn.MaxPool2d(2), rand((4, 4), np.float32), ValueError, r"input.*\(4, 4\)"),
    (nn.AvgPool1d(2), rand((1, 2, 4, 4), np.float32), ValueError, r"input.*\(1, 2, 4, 4\)"),
    (nn.MaxPool2d(5), rand((1, 2, 4, 9), np.float32), ValueError, r"kernel_size.*\(4, 9\)"),
    (nn.AvgPool2d(4, padding=1), rand((1, 1, 1, 5), np.float32), ValueError, "kernel_size.*padd"),
    (nn.AdaptiveAvgPool2d(2), rand((2, 3), np.float32), ValueError, "input"),
    (nn.MaxPool2d(2), rand((1, 1, 4, 4), np.float32).astype(np.int32), TypeError, "input.*int32"),
    (nn.AvgPool2d(2), rand((1, 1, 4, 4), np.float32).astype(np.float16), TypeError, "input"),
    (nn.MaxPool1d(2), "x", TypeError, "input"),
])
def test_bad_input(layer, x, exc, match):
    with pytest.raises(exc, match=match):
        layer(x)
    assert layer._pending == []
