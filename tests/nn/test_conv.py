"""nn.Conv1d / nn.Conv2d against torch (values, input/weight/bias gradients), central-difference
gradient checks, init and repr as PyTorch, module reuse, Conv+ReLU fusion, threads, ISAs, bad input;
and a LeNet-5 forward/backward beside torch."""
import math

import numpy as np
import pytest

import pydl
from pydl import nn

torch = pytest.importorskip("torch")

# torch's own note on its even-kernel "same" padding
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")

DTYPES = [np.float32, np.float64]


def rand(shape, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def to_torch(module, reference):
    """``reference`` (a torch module of the same structure) loaded with ``module``'s state, in its dtype."""
    dt = torch.float64 if next(module.parameters()).data.dtype == np.float64 else torch.float32
    reference = reference.to(dt)
    reference.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in module.state_dict().items()})
    return reference


def run_both(module, reference, x, seed=1):
    """Forward and backward (a random dL/dy) through both; returns ((y, dx), (torch y, torch dx))."""
    xt = torch.from_numpy(x.copy()).requires_grad_()
    yt = reference(xt)
    y = module(x)
    g = rand(y.shape, x.dtype, seed)
    yt.backward(torch.from_numpy(g))
    return (y, module.backward(g)), (yt, xt.grad)


def check_against_torch(module, reference, x, parity):
    reference = to_torch(module, reference)
    (y, dx), (yt, dxt) = run_both(module, reference, x)
    parity(y, yt, "output")
    parity(dx, dxt, "grad input")
    tparams = dict(reference.named_parameters())
    for name, p in module.named_parameters():
        parity(p.grad, tparams[name].grad, f"grad {name}")


# (in, out, kernel, stride, padding, dilation, groups, bias, input shape)
CASES_2D = [
    (3, 4, 3, 1, 0, 1, 1, True, (2, 3, 7, 9)),
    (3, 5, (2, 3), (2, 1), (1, 0), 1, 1, True, (3, 3, 8, 7)),
    (4, 6, 3, 2, 1, 2, 2, False, (2, 4, 11, 10)),
    (4, 4, 3, 1, "same", 1, 4, True, (2, 4, 6, 5)),  # depthwise
    (2, 3, 4, 1, "same", 1, 1, True, (2, 2, 7, 6)),  # even kernel: asymmetric padding
    (2, 3, (2, 5), 1, "same", (2, 1), 1, True, (1, 2, 6, 9)),
    (3, 2, 3, 1, "valid", 1, 1, True, (2, 3, 5, 5)),
    (6, 4, 1, 1, 0, 1, 2, True, (2, 6, 5, 3)),  # 1x1 grouped
    (1, 2, 5, 3, 2, 1, 1, True, (3, 1, 13, 13)),
    (3, 4, 3, 1, 1, 1, 1, True, (3, 9, 8)),  # unbatched
]
CASES_1D = [
    (3, 4, 3, 1, 0, 1, 1, True, (2, 3, 11)),
    (4, 6, 5, 2, 2, 2, 2, True, (3, 4, 17)),
    (4, 4, 2, 1, "same", 3, 4, False, (2, 4, 9)),
    (2, 3, 4, 1, "same", 1, 1, True, (2, 2, 8)),
    (3, 5, 1, 3, 0, 1, 1, True, (2, 3, 10)),
    (2, 2, 3, 1, 1, 1, 1, True, (2, 7)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nd, case", [(2, c) for c in CASES_2D] + [(1, c) for c in CASES_1D])
def test_matches_torch(nd, case, dtype, parity):
    cin, cout, k, s, p, d, g, bias, shape = case
    layer = (nn.Conv2d if nd == 2 else nn.Conv1d)(cin, cout, k, stride=s, padding=p, dilation=d, groups=g,
                                                  bias=bias, dtype=dtype)
    ref = (torch.nn.Conv2d if nd == 2 else torch.nn.Conv1d)(cin, cout, k, stride=s, padding=p, dilation=d,
                                                            groups=g, bias=bias)
    check_against_torch(layer, ref, rand(shape, dtype), parity)


@pytest.mark.parametrize("nd, kwargs, shape", [
    (2, dict(kernel_size=3, stride=2, padding=1, groups=2), (2, 4, 5, 4)),
    (2, dict(kernel_size=(2, 3), padding="same", dilation=(1, 2)), (1, 4, 4, 5)),
    (1, dict(kernel_size=3, stride=2, padding=1, dilation=2), (2, 4, 9)),
    (1, dict(kernel_size=2, padding="same", groups=4, bias=False), (2, 4, 5)),
])
def test_numerical_gradients(nd, kwargs, shape, check_module_grads):
    layer = (nn.Conv2d if nd == 2 else nn.Conv1d)(4, 4, dtype=np.float64, **kwargs)
    check_module_grads(layer, rand(shape, np.float64, 3))


# ---------------------------------------------------------------- init, repr, state
@pytest.mark.parametrize("cls, args, kwargs", [
    ("Conv2d", (3, 8, 3), {}), ("Conv2d", (4, 6, (2, 5)), dict(groups=2, bias=False)),
    ("Conv1d", (2, 5, 7), {}), ("Conv2d", (6, 6, 3), dict(groups=6)),
])
def test_init_as_torch(cls, args, kwargs):
    pydl.manual_seed(0)
    layer = getattr(nn, cls)(*args, **kwargs)
    ref = getattr(torch.nn, cls)(*args, **kwargs)
    assert layer.weight.data.shape == tuple(ref.weight.shape) and layer.weight.data.dtype == np.float32
    fan_in = layer.weight.data[0].size
    bound = 1 / math.sqrt(fan_in)
    for p in layer.parameters():
        assert np.all(np.abs(p.data) <= bound)
        assert np.abs(p.data).max() > 0.5 * bound  # a uniform spread over the range, not a tiny one
    assert (layer.bias is None) == (ref.bias is None)
    assert list(layer.state_dict()) == list(ref.state_dict())
    pydl.manual_seed(0)
    again = getattr(nn, cls)(*args, **kwargs)
    assert np.array_equal(again.weight.data, layer.weight.data)


@pytest.mark.parametrize("text", [
    "Conv2d(3, 8, 3)", "Conv2d(3, 8, (2, 3), stride=2, padding=1, bias=False)", "Conv2d(4, 4, 3, padding='same', groups=4)",
    "Conv2d(4, 4, 3, padding='valid', dilation=2)", "Conv1d(3, 8, 5, stride=2, padding=(2,))",
    "Conv1d(4, 8, 3, padding='same', groups=2)",
    "MaxPool2d(2)", "MaxPool2d((3, 2), stride=1, padding=1)", "MaxPool1d(3, 2)", "AvgPool2d(3, 2, 1)",
    "AvgPool1d(4)", "AvgPool1d(3, stride=2, padding=1)", "AdaptiveAvgPool2d((3, None))", "AdaptiveAvgPool1d(5)",
])
def test_repr_as_torch(text):
    assert repr(eval("nn." + text)) == repr(eval("torch.nn." + text))


def test_float64_and_to():
    layer = nn.Conv2d(2, 3, 3, dtype=np.float64)
    assert layer.weight.data.dtype == np.float64 and layer.bias.data.dtype == np.float64
    layer.float()
    y = layer(rand((1, 2, 4, 4), np.float32))
    assert y.dtype == np.float32 and y.shape == (1, 3, 2, 2)


# ---------------------------------------------------------------- module reuse, no_grad
@pytest.mark.parametrize("dtype", DTYPES)
def test_reuse_twice_then_backward_twice(dtype, parity):
    conv = nn.Conv2d(3, 3, 3, padding=1, dtype=dtype)
    ref = to_torch(conv, torch.nn.Conv2d(3, 3, 3, padding=1))
    x = rand((2, 3, 5, 6), dtype)
    g1, g2 = rand((2, 3, 5, 6), dtype, 1), rand((2, 3, 5, 6), dtype, 2)
    y1 = conv(x)
    y2 = conv(y1)  # the same layer applied twice
    dy1 = conv.backward(g2)  # the latest call first
    dx = conv.backward(g1 + dy1)
    xt = torch.from_numpy(x.copy()).requires_grad_()
    y1t = ref(xt)
    y2t = ref(y1t)
    torch.autograd.backward([y1t, y2t], [torch.from_numpy(g1), torch.from_numpy(g2)])
    parity(y2, y2t)
    parity(dx, xt.grad)
    parity(conv.weight.grad, ref.weight.grad)
    parity(conv.bias.grad, ref.bias.grad)


def test_no_grad_saves_nothing_and_grads_accumulate():
    conv = nn.Conv1d(2, 2, 3)
    x = rand((2, 2, 6), np.float32)
    with pydl.no_grad():
        conv(x)
    assert conv._pending == []
    with pytest.raises(RuntimeError, match="before forward"):
        conv.backward(np.ones((2, 2, 4), np.float32))
    g = rand((2, 2, 4), np.float32, 1)
    conv(x)
    conv.backward(g)
    first = conv.weight.grad.copy(), conv.bias.grad.copy()
    conv(x)
    conv.backward(g)
    np.testing.assert_allclose(conv.weight.grad, 2 * first[0], rtol=1e-6)
    np.testing.assert_allclose(conv.bias.grad, 2 * first[1], rtol=1e-6)


# ---------------------------------------------------------------- Conv + ReLU fusion
@pytest.mark.parametrize("nd", [1, 2])
@pytest.mark.parametrize("dtype", DTYPES)
def test_sequential_fuses_conv_relu_bitwise(nd, dtype):
    Conv = nn.Conv2d if nd == 2 else nn.Conv1d
    pydl.manual_seed(3)
    model = nn.Sequential(Conv(3, 4, 3, padding=1, dtype=dtype), nn.ReLU(), Conv(4, 2, 3, stride=2, dtype=dtype))
    assert model.plan() == [("0", "1"), ("2",)]
    x = rand((2, 3) + (7,) * nd, dtype)
    y = model(x)
    g = rand(y.shape, dtype, 1)
    dx = model.backward(g)
    fused = [p.grad.copy() for p in model.parameters()]
    model.zero_grad()
    conv0, relu, conv2 = model
    y_ref = conv2(relu(conv0(x)))
    dx_ref = conv0.backward(relu.backward(conv2.backward(g)))
    assert np.array_equal(y, y_ref) and np.array_equal(dx, dx_ref)
    for a, p in zip(fused, model.parameters()):
        assert np.array_equal(a, p.grad)
    out = model(x)  # conv0's pending call ran fused: only the Sequential's backward takes it
    with pytest.raises(RuntimeError, match="fused"):
        conv0.backward(np.ones((2, 4) + (7,) * nd, dtype))
    model.backward(np.ones_like(out))


def test_sequential_first_conv_skips_input_grad():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 2))
    y = model(rand((3, 1, 4, 4), np.float32))
    assert model.backward(np.ones_like(y), input_grad=False) is None
    assert model[0].weight.grad is not None


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("make, exc, match", [
    (lambda: nn.Conv2d(3, 4, 0), ValueError, "kernel_size"),
    (lambda: nn.Conv2d(3, 4, (3, 3, 3)), ValueError, "kernel_size"),
    (lambda: nn.Conv2d(3, 4, 2.5), TypeError, "kernel_size"),
    (lambda: nn.Conv2d(0, 4, 3), ValueError, "in_channels"),
    (lambda: nn.Conv2d(3, 4, 3, stride=0), ValueError, "stride"),
    (lambda: nn.Conv2d(3, 4, 3, padding=-1), ValueError, "padding"),
    (lambda: nn.Conv2d(3, 4, 3, padding="full"), ValueError, "padding"),
    (lambda: nn.Conv2d(3, 4, 3, dilation=(1, 0)), ValueError, "dilation"),
    (lambda: nn.Conv2d(3, 4, 3, groups=2), ValueError, "groups.*in_channels"),
    (lambda: nn.Conv2d(4, 6, 3, groups=4), ValueError, "groups.*out_channels"),
    (lambda: nn.Conv2d(3, 3, 3, stride=2, padding="same"), ValueError, "padding.*stride"),
    (lambda: nn.Conv1d(3, 3, 3, stride=2, padding="same"), ValueError, "padding.*stride"),
    (lambda: nn.Conv2d(3, 4, 3, dtype=np.int32), TypeError, "dtype"),
])
def test_bad_constructor_arguments(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


@pytest.mark.parametrize("layer, x, exc, match", [
    (nn.Conv2d(3, 4, 3), rand((3, 5), np.float32), ValueError, r"input.*4-D.*\(3, 5\)"),
    (nn.Conv2d(3, 4, 3), rand((2, 3, 5), np.float32), ValueError, r"input.*3 channels.*\(2, 3, 5\)"),
    (nn.Conv2d(3, 4, 3), rand((1, 2, 3, 5, 5), np.float32), ValueError, r"input.*\(1, 2, 3, 5, 5\)"),
    (nn.Conv2d(3, 4, 3), rand((2, 2, 5, 5), np.float32), ValueError, r"input.*3 channels.*\(2, 2, 5, 5\)"),
    (nn.Conv1d(3, 4, 3), rand((2, 4, 5), np.float32), ValueError, r"input.*3 channels.*\(2, 4, 5\)"),
    (nn.Conv2d(3, 4, 5), rand((2, 3, 4, 9), np.float32), ValueError, r"input.*\(4, 9\).*kernel"),
    (nn.Conv2d(3, 4, 3, dilation=3, padding=1), rand((1, 3, 4, 9), np.float32), ValueError, "input.*padded"),
    (nn.Conv1d(3, 4, 4, padding="valid"), rand((2, 3, 3), np.float32), ValueError, r"input.*\(3,\)"),
    (nn.Conv2d(3, 4, 3), rand((2, 3, 5, 5), np.float64), TypeError, "input.*float32"),
    (nn.Conv2d(3, 4, 3), rand((2, 3, 5, 5), np.float32).astype(np.int64), TypeError, "input"),
    (nn.Conv2d(3, 4, 3), [[1.0]], TypeError, "input"),
])
def test_bad_input(layer, x, exc, match):
    with pytest.raises(exc, match=match):
        layer(x)
    assert layer._pending == []


def test_bad_grad_out():
    conv = nn.Conv2d(2, 2, 3)
    y = conv(rand((1, 2, 5, 5), np.float32))
    with pytest.raises(ValueError, match=r"grad_out.*\(1, 2, 3, 3\)"):
        conv.backward(np.ones((1, 2, 3, 4), np.float32))
    with pytest.raises(TypeError, match="grad_out"):
        conv.backward(np.ones(y.shape, np.float64))
    conv.backward(np.ones_like(y))  # the record survived the bad calls


def test_non_contiguous_input():
    conv = nn.Conv2d(3, 2, 3, padding=1)
    x = rand((2, 5, 5, 3), np.float32).transpose(0, 3, 1, 2)
    y = conv(x)
    np.testing.assert_array_equal(y, conv(np.ascontiguousarray(x)))
    assert conv.backward(np.ones_like(y)).shape == x.shape


# ---------------------------------------------------------------- networks
def lenet(dtype=np.float32):
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2, dtype=dtype), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5, dtype=dtype), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(400, 120, dtype=dtype), nn.ReLU(), nn.Linear(120, 84, dtype=dtype), nn.ReLU(),
        nn.Linear(84, 10, dtype=dtype))


def torch_lenet():
    t = torch.nn
    return t.Sequential(t.Conv2d(1, 6, 5, padding=2), t.ReLU(), t.MaxPool2d(2), t.Conv2d(6, 16, 5), t.ReLU(),
                        t.MaxPool2d(2), t.Flatten(), t.Linear(400, 120), t.ReLU(), t.Linear(120, 84), t.ReLU(),
                        t.Linear(84, 10))


@pytest.mark.parametrize("dtype", DTYPES)
def test_lenet5_matches_torch(dtype, parity):
    pydl.manual_seed(0)
    model = lenet(dtype)
    check_against_torch(model, torch_lenet(), rand((8, 1, 28, 28), dtype), parity)


def conv_net_grads(x, g):
    """Output, dL/dx and every parameter gradient of a small seeded conv net (fused Conv+ReLU,
    a strided grouped conv, max pooling, a 1x1 conv)."""
    pydl.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, stride=2, groups=2),
                          nn.MaxPool2d(2), nn.Conv2d(16, 8, 1), nn.Flatten()).to(x.dtype)
    y = model(x)
    dx = model.backward(g)
    return [y, dx] + [p.grad for p in model.parameters()]


def test_threads_bitwise():
    x = rand((16, 3, 24, 24), np.float32)
    g = rand((16, 8 * 5 * 5), np.float32, 1)
    pydl.set_num_threads(1)
    one = conv_net_grads(x, g)
    pydl.set_num_threads(2)
    two = conv_net_grads(x, g)
    for a, b in zip(one, two):
        assert np.array_equal(a, b)


def test_every_isa(isa):
    """Each ISA's conv net agrees with the best ISA's result within float32 tolerance."""
    x = rand((4, 3, 12, 12), np.float32)
    g = rand((4, 8 * 2 * 2), np.float32, 1)
    got = conv_net_grads(x, g)
    pydl._C.set_isa(pydl._C.detected_isa())
    try:
        best = conv_net_grads(x, g)
    finally:
        pydl._C.set_isa(isa)
    for a, b in zip(got, best):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-4 * np.abs(b).max())


def mnist1d_cnn(lib, **dt):
    """The MNIST-1D paper's CNN (Greydanus 2020): three stride-2 Conv1d of 25 channels, ReLU, a Linear."""
    return lib.Sequential(lib.Conv1d(1, 25, 5, stride=2, padding=1, **dt), lib.ReLU(),
                          lib.Conv1d(25, 25, 3, stride=2, padding=1, **dt), lib.ReLU(),
                          lib.Conv1d(25, 25, 3, stride=2, padding=1, **dt), lib.ReLU(),
                          lib.Flatten(), lib.Linear(125, 10, **dt))


def train_mnist1d_cnn(dtype, steps=4):
    """pydl's TrainStep (Adam 1e-2) on random signals: the losses and the final weights."""
    from pydl.train import TrainStep
    pydl.manual_seed(2)
    model = mnist1d_cnn(nn, dtype=dtype)
    step = TrainStep(model, nn.CrossEntropyLoss(), pydl.optim.Adam(model.parameters(), lr=1e-2))
    rng = np.random.default_rng(3)
    data = [(rng.standard_normal((100, 1, 40)).astype(dtype), rng.integers(0, 10, 100)) for _ in range(steps)]
    losses = [step(x, y) for x, y in data]
    return model, data, losses


@pytest.mark.parametrize("dtype", DTYPES)
def test_mnist1d_cnn_trains_as_torch(dtype):
    """The strided Conv1d kernels (the batch stacked into one wide row) through whole training steps."""
    model, data, losses = train_mnist1d_cnn(dtype)
    pydl.manual_seed(2)
    tmodel = to_torch(mnist1d_cnn(nn, dtype=dtype), mnist1d_cnn(torch.nn))
    opt = torch.optim.Adam(tmodel.parameters(), lr=1e-2)
    tol = 2e-4 if dtype == np.float32 else 1e-9
    for (x, y), loss in zip(data, losses):
        opt.zero_grad()
        tloss = torch.nn.functional.cross_entropy(tmodel(torch.from_numpy(x)), torch.from_numpy(y))
        tloss.backward()
        opt.step()
        assert loss == pytest.approx(tloss.item(), rel=tol)
    tstate = tmodel.state_dict()
    for k, v in model.state_dict().items():
        ref = tstate[k].numpy()
        np.testing.assert_allclose(v, ref, rtol=tol, atol=tol * np.abs(ref).max(), err_msg=k)


def test_mnist1d_cnn_threads_bitwise():
    runs = []
    for n in (1, 2):
        pydl.set_num_threads(n)
        model, _, losses = train_mnist1d_cnn(np.float32)
        runs.append((losses, [p.data.copy() for p in model.parameters()]))
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1]):
        assert np.array_equal(a, b)
