"""BatchNorm2d (and BatchNorm1d on (N, C, L), same kernel) against torch: training and eval
values, all gradients, running statistics (momentum and cumulative), state_dict keys; central
differences; thread-count independence; bad input."""
import numpy as np
import pytest

import pydl
from pydl import nn

torch = pytest.importorskip("torch")


def rand(shape, dtype, seed=0, scale=2.0, offset=1.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale + offset).astype(dtype)


def twin(cls, C, dtype, **kwargs):
    """A pydl BatchNorm and torch's, with the same random affine parameters."""
    bn = getattr(nn, cls)(C, dtype=dtype, **kwargs)
    t = getattr(torch.nn, cls)(C, **kwargs).to(getattr(torch, np.dtype(dtype).name))
    if bn.affine:
        bn.weight.data[:] = rand(C, dtype, 7, 1.0, 0.5)
        bn.bias.data[:] = rand(C, dtype, 8, 1.0, 0.0)
    t.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in bn.state_dict().items()})
    return bn, t


def step_both(bn, t, x, g, parity, what):
    """One forward/backward of each; compares y, dx and the accumulated parameter gradients."""
    xt = torch.from_numpy(x.copy()).requires_grad_()
    yt = t(xt)
    yt.backward(torch.from_numpy(g))
    parity(bn(x), yt, f"{what}: output")
    parity(bn.backward(g), xt.grad, f"{what}: grad input")
    for name, p in bn.named_parameters():
        parity(p.grad, getattr(t, name).grad, f"{what}: grad {name}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls, shape", [("BatchNorm2d", (4, 5, 6, 7)), ("BatchNorm2d", (1, 3, 5, 3)),
                                        ("BatchNorm2d", (3, 2, 1, 1)), ("BatchNorm1d", (4, 5, 9))])
@pytest.mark.parametrize("kwargs", [{}, dict(momentum=None), dict(affine=False), dict(track_running_stats=False),
                                    dict(eps=1e-3, momentum=0.3)])
def test_matches_torch(cls, shape, kwargs, dtype, parity):
    C = shape[1]
    bn, t = twin(cls, C, dtype, **kwargs)
    for step in range(3):
        step_both(bn, t, rand(shape, dtype, step), rand(shape, dtype, 10 + step, 1.0, 0.0), parity, f"train {step}")
    assert list(bn.state_dict()) == list(t.state_dict())
    for k, v in bn.state_dict().items():
        if k == "num_batches_tracked":
            assert v.dtype == np.int64 and int(v) == int(t.num_batches_tracked) == 3
        else:
            parity(v, t.state_dict()[k], k)
    bn.eval(), t.eval()
    step_both(bn, t, rand(shape, dtype, 20), rand(shape, dtype, 21, 1.0, 0.0), parity, "eval")


@pytest.mark.parametrize("affine", [True, False])
def test_numerical_gradients_train_and_eval(affine, check_module_grads):
    bn = nn.BatchNorm2d(3, affine=affine, dtype=np.float64, momentum=0.0)  # running stats stay put
    if affine:
        bn.weight.data[:] = [0.5, -1.5, 2.0]
        bn.bias.data[:] = [0.1, 0.0, -0.3]
    check_module_grads(bn, rand((3, 3, 2, 3), np.float64, 1))
    bn.running_mean[:] = [0.2, -0.1, 1.0]
    bn.running_var[:] = [0.5, 2.0, 1.5]
    bn.eval()
    check_module_grads(bn, rand((2, 3, 3, 2), np.float64, 2))


def test_large_offset_keeps_precision():
    """Two-pass statistics in double: a mean of 1e4 does not swamp a unit variance in float32
    (torch's float32 is 6e-4 off here; pydl is within 2e-7 of the float64 result)."""
    x = rand((8, 4, 10, 10), np.float32, 3, 1.0, 1e4)
    g = rand(x.shape, np.float32, 4)
    got, ref = nn.BatchNorm2d(4), nn.BatchNorm2d(4, dtype=np.float64)
    y, y64 = got(x), ref(x.astype(np.float64))
    dx, dx64 = got.backward(g), ref.backward(g.astype(np.float64))
    np.testing.assert_allclose(y, y64, rtol=0, atol=1e-6)
    np.testing.assert_allclose(dx, dx64, rtol=0, atol=1e-6 * np.abs(dx64).max())


def test_threads_bitwise():
    x, g = rand((8, 16, 20, 20), np.float32, 1), rand((8, 16, 20, 20), np.float32, 2)
    out = []
    for n in (1, 2):
        pydl.set_num_threads(n)
        bn = nn.BatchNorm2d(16)
        y = bn(x)
        out.append([y, bn.backward(g), bn.weight.grad, bn.bias.grad, bn.running_var])
    for a, b in zip(*out):
        assert np.array_equal(a, b)


def test_no_grad_eval_saves_nothing_and_train_updates_stats():
    bn = nn.BatchNorm2d(2)
    x = rand((2, 2, 3, 3), np.float32)
    bn(x)
    assert int(bn.num_batches_tracked) == 1 and not np.all(bn.running_mean == 0)
    bn.zero_grad()
    bn.eval()
    with pydl.no_grad():
        bn(x)
    assert bn._pending == [] and int(bn.num_batches_tracked) == 1


@pytest.mark.parametrize("layer, x, exc, match", [
    (nn.BatchNorm2d(3), rand((2, 3, 4), np.float32), ValueError, r"input.*\(N, 3, H, W\).*\(2, 3, 4\)"),
    (nn.BatchNorm2d(3), rand((2, 4, 4, 4), np.float32), ValueError, r"\(N, 3, H, W\).*\(2, 4, 4, 4\)"),
    (nn.BatchNorm1d(3), rand((2, 4, 5), np.float32), ValueError, r"\(N, 3, L\).*\(2, 4, 5\)"),
    (nn.BatchNorm2d(3), rand((1, 3, 1, 1), np.float32), ValueError, "more than 1 value"),
    (nn.BatchNorm2d(3), rand((2, 3, 2, 2), np.float64), TypeError, "input.*float32"),
    (nn.BatchNorm2d(3), [[1.0]], TypeError, "input"),
])
def test_bad_input(layer, x, exc, match):
    with pytest.raises(exc, match=match):
        layer(x)
    assert layer._pending == []


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="num_features"):
        nn.BatchNorm2d(0)
    with pytest.raises(ValueError, match="eps"):
        nn.BatchNorm2d(3, eps=0.0)
    with pytest.raises(TypeError, match="dtype"):
        nn.BatchNorm2d(3, dtype=np.int64)


def test_kernel_checks_name_the_argument():
    x = rand((2, 3, 4), np.float32)
    with pytest.raises(ValueError, match="save_mean"):
        pydl._C.batchnorm2d_forward_train(x, None, None, np.empty_like(x), np.empty(2, np.float32),
                                          np.empty(3, np.float32), None, None, 1e-5, 0.1)
    with pytest.raises(ValueError, match="out: must not share memory with input"):
        pydl._C.batchnorm2d_forward_eval(x, None, None, np.zeros(3, np.float32), np.ones(3, np.float32), x, 1e-5)
    with pytest.raises(TypeError, match="grad_out"):
        pydl._C.batchnorm2d_backward(x.astype(np.float64), x, np.zeros(3, np.float32), np.ones(3, np.float32),
                                     None, None, None, None, True, False)
