"""A Sequential of Linear layers runs as one chain call each way (docs/ARCHITECTURE.md §2): bitwise
the step-by-step path (forced here by a no-op forward hook), with the module-reuse rules of
docs/API.md §2 (records LIFO, no_grad, zero_grad, the input guard, read-only saved outputs)."""
import numpy as np
import pytest

import pydl
from pydl import nn


def rand(*shape, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def mlp(dtype=np.float32, last=None):
    pydl.manual_seed(0)
    layers = [nn.Linear(6, 9, dtype=dtype), nn.LeakyReLU(0.1), nn.Linear(9, 7, dtype=dtype, activation="tanh"),
              nn.Linear(7, 5, dtype=dtype, bias=False), nn.Sigmoid(), nn.Linear(5, 3, dtype=dtype)]
    if last is not None:
        layers.append(last)
    return nn.Sequential(*layers)


def pending(model):
    return sum(len(m._pending) for m in model.modules())


def run(model, step_by_step, dtype, input_grad=True):
    """Two calls, then two backwards (LIFO), with gradients accumulating over both."""
    handle = model.register_forward_hook(lambda *a: None) if step_by_step else None
    model.zero_grad()
    x1, x2 = rand(4, 6, dtype=dtype, seed=1), rand(4, 6, dtype=dtype, seed=2)
    y1, y2 = model(x1), model(x2)
    assert model._plan.dense is not None or step_by_step
    g2, g1 = model.backward(np.ones_like(y2), input_grad), model.backward(y1 * 2, input_grad)
    if handle:
        handle.remove()
    return [y1, y2, g1, g2] + [p.grad.copy() for p in model.parameters()]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("last", [None, "relu"])
@pytest.mark.parametrize("input_grad", [True, False])
def test_dense_chain_is_bitwise_step_by_step(isa, dtype, last, input_grad):
    model = mlp(dtype, nn.ReLU() if last else None)
    fused, ref = run(model, False, dtype, input_grad), run(model, True, dtype, input_grad)
    for a, b in zip(fused, ref):
        assert (a is None and b is None) or (a.dtype == b.dtype and np.array_equal(a, b))


def test_one_record_per_call_consumed_last_in_first_out():
    model = mlp()
    ys = [model(rand(3, 6, seed=k)) for k in range(3)]
    assert pending(model) == 3 and all(len(m._pending) == 0 for m in model)
    for y in reversed(ys):
        model.backward(np.ones_like(y))
    assert pending(model) == 0
    with pytest.raises(RuntimeError, match="before forward"):
        model.backward(np.ones_like(ys[0]))
    with pydl.no_grad():
        model(rand(3, 6))
    assert pending(model) == 0
    model(rand(3, 6))
    model.zero_grad()
    assert pending(model) == 0


def test_grad_out_and_input_edits_are_refused_as_step_by_step():
    model = mlp()
    x = rand(3, 6)
    y = model(x)
    with pytest.raises(ValueError, match=r"grad_out: expected shape \(3, 3\)"):
        model.backward(np.ones((3, 4), np.float32))
    with pytest.raises(TypeError, match="grad_out"):
        model.backward(np.ones((3, 3)))
    x *= 2  # the call saved x: the guard catches the edit
    with pytest.raises(RuntimeError, match="modified in place"):
        model.backward(np.ones_like(y))


def test_saved_output_is_read_only_only_when_backward_reads_it():
    assert mlp()(rand(2, 6)).flags.writeable  # a plain last Linear saves nothing
    y = mlp(last=nn.Tanh())(rand(2, 6))
    with pytest.raises(ValueError, match="read-only"):
        y *= 2


def test_inputs_the_chain_does_not_take_run_step_by_step():
    model = mlp()
    x3 = rand(2, 4, 6)  # (*, in): Linear flattens it, the chain does not
    y = model(x3)
    assert y.shape == (2, 4, 3) and pending(model) > 1
    np.testing.assert_array_equal(y.reshape(8, 3), model(x3.reshape(8, 6)))
    xt = rand(6, 5).T  # non-contiguous: copied once, as a Linear does
    np.testing.assert_array_equal(model(xt), model(np.ascontiguousarray(xt)))
    with pytest.raises(TypeError, match="input: expected dtype float32"):
        model(rand(2, 6, dtype=np.float64))  # the step-by-step error, as before
    with pytest.raises(ValueError, match=r"input.*Linear\(6, 9\)"):
        model(rand(2, 5))


def test_a_linear_used_twice_or_with_hooks_is_not_a_chain():
    lin = nn.Linear(4, 4)
    assert nn.Sequential(lin, nn.ReLU(), lin)._current_plan().dense is None
    s = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    assert s._current_plan().dense is not None
    h = s[2].register_forward_hook(lambda *a: None)
    assert s._current_plan().dense is None
    h.remove()
    s.forward = s.forward  # an instance override (monkeypatch) of a pass
    s[0].forward_fused = s[0].forward_fused
    assert s._build_plan().dense is None


def test_a_parameter_shared_by_two_layers_accumulates_step_by_step():
    a, b = nn.Linear(4, 4), nn.Linear(4, 4)
    b.weight = a.weight  # tied: the chain call refuses it, the layers run one by one
    s = nn.Sequential(a, nn.Tanh(), b)
    x = rand(3, 4)
    s.zero_grad()
    s.backward(np.ones_like(s(x)))
    got = a.weight.grad.copy()
    s.zero_grad()
    h = s.register_forward_hook(lambda *args: None)
    s.backward(np.ones_like(s(x)))
    h.remove()
    np.testing.assert_array_equal(got, a.weight.grad)
