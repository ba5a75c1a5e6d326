"""Changes between forward and backward (issue 10, defect 5; docs/RELIABILITY.md).

An in-place edit of something a layer saved for its backward must raise, never silently change
the gradients: outputs a layer saves are handed back read-only; the arrays passed to an
outermost call are sampled and compared at backward. Edits nothing depends on stay allowed.
"""
import numpy as np
import pytest

import pydl
from pydl import nn

RNG = np.random.default_rng(0)


def _x(shape=(6, 5), dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


def _grads(model):
    return [None if p.grad is None else p.grad.copy() for p in model.parameters()]


# Models whose output is saved for backward: the output comes back read-only.
SAVES_OUTPUT = {
    "Linear+ReLU": lambda: nn.Sequential(nn.Linear(5, 4), nn.ReLU()),
    "Linear+Sigmoid": lambda: nn.Sequential(nn.Linear(5, 4), nn.Sigmoid()),
    "Linear+Tanh": lambda: nn.Sequential(nn.Linear(5, 4), nn.Tanh()),
    "Linear+LeakyReLU": lambda: nn.Sequential(nn.Linear(5, 4), nn.LeakyReLU(0.1)),
    "Linear(activation=tanh)": lambda: nn.Linear(5, 4, activation="tanh"),
    "Linear(activation=sigmoid)": lambda: nn.Linear(5, 4, activation="sigmoid"),
    "MLP": lambda: nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 4), nn.Sigmoid()),
    "Sigmoid": lambda: nn.Sigmoid(),
    "Tanh": lambda: nn.Tanh(),
    "ReLU": lambda: nn.ReLU(),
    "GELU": lambda: nn.GELU(),
    "Softmax": lambda: nn.Softmax(),
}


@pytest.mark.parametrize("name", list(SAVES_OUTPUT))
@pytest.mark.parametrize("edit", ["imul", "setitem", "ufunc_out", "fill"])
def test_edit_of_saved_output_raises(name, edit):
    pydl.manual_seed(0)
    model = SAVES_OUTPUT[name]()
    x = _x()
    out = model(x)
    assert not out.flags.writeable
    ref = out.copy()
    with pytest.raises(ValueError, match="read-only"):
        if edit == "imul":
            out *= 0.5
        elif edit == "setitem":
            out[0, 0] = 3.0
        elif edit == "ufunc_out":
            np.multiply(out, 0.5, out=out)
        else:
            out.fill(0)
    np.testing.assert_array_equal(out, ref)  # nothing was written
    # the backward is the one of the unedited forward: same as a fresh model's
    g = np.ones_like(out)
    model.backward(g)
    pydl.manual_seed(0)
    fresh = SAVES_OUTPUT[name]()
    fresh.backward(np.ones_like(fresh(x)))
    for a, b in zip(_grads(model), _grads(fresh)):
        np.testing.assert_array_equal(a, b)


def test_edit_of_a_copy_is_fine_and_does_not_change_gradients():
    pydl.manual_seed(0)
    model = SAVES_OUTPUT["Linear+Sigmoid"]()
    x = _x()
    out = model(x).copy()
    out *= 0.5  # the user's own copy
    model.backward(np.ones_like(out))
    pydl.manual_seed(0)
    fresh = SAVES_OUTPUT["Linear+Sigmoid"]()
    fresh.backward(np.ones_like(fresh(x)))
    np.testing.assert_array_equal(model[0].weight.grad, fresh[0].weight.grad)


def test_outputs_under_no_grad_stay_writeable():
    model = SAVES_OUTPUT["Linear+Sigmoid"]()
    with pydl.no_grad():
        out = model(_x())
    assert out.flags.writeable
    out *= 0.5


@pytest.mark.parametrize("make", [lambda: nn.Linear(5, 4), lambda: nn.BatchNorm1d(5), lambda: nn.Dropout(0.3),
                                  lambda: nn.Sequential(nn.Linear(5, 4), nn.Linear(4, 3)), lambda: nn.Identity()],
                         ids=["Linear", "BatchNorm1d", "Dropout", "Linear-Linear", "Identity"])
def test_outputs_nothing_saved_stay_writeable(make):
    """A plain Linear, BatchNorm1d, Dropout save their input (or a mask), not their output:
    editing the output is allowed and changes no parameter gradient."""
    pydl.manual_seed(0)
    model = make()
    x = _x()
    out = model(x)
    assert out.flags.writeable
    out *= 0.5
    g = np.ones_like(out)
    model.backward(g)
    pydl.manual_seed(0)
    fresh = make()
    fresh.backward(np.ones_like(fresh(x)))
    for a, b in zip(_grads(model), _grads(fresh)):
        np.testing.assert_array_equal(a, b)


def test_loss_input_edit_after_call_does_not_change_its_gradient():
    """Losses keep their gradient, computed during the call: a later edit of the logits changes nothing."""
    logits, target = _x((6, 4)), np.arange(6) % 4
    loss = nn.CrossEntropyLoss()
    loss(logits, target)
    ref = loss.backward().copy()
    loss(logits, target)
    logits *= 2
    np.testing.assert_array_equal(loss.backward(), ref)


# Models that save their input: an in-place edit of x before backward raises RuntimeError.
SAVES_INPUT = {
    "Linear": lambda: nn.Linear(5, 4),
    "Linear(activation=relu)": lambda: nn.Linear(5, 4, activation="relu"),
    "BatchNorm1d": lambda: nn.BatchNorm1d(5),
    "BatchNorm1d-eval": lambda: nn.BatchNorm1d(5).eval(),
    "ReLU": lambda: nn.ReLU(),
    "Sequential": lambda: nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 4)),
    "Sequential-BatchNorm": lambda: nn.Sequential(nn.BatchNorm1d(5), nn.Linear(5, 4)),
    "Residual": lambda: nn.Residual(nn.Linear(5, 5)),
}


@pytest.mark.parametrize("name", list(SAVES_INPUT))
@pytest.mark.parametrize("edit", ["imul", "assign_batch", "fill", "column", "row"])
def test_edit_of_saved_input_raises(name, edit):
    model = SAVES_INPUT[name]()
    x = _x((16, 5))
    out = model(x)
    if edit == "imul":
        x *= 0.5
    elif edit == "assign_batch":
        x[:] = _x((16, 5))
    elif edit == "fill":
        x.fill(0)
    elif edit == "column":
        x[:, 3] += 1
    else:
        x[7] = 0
    with pytest.raises(RuntimeError, match="modified in place after forward"):
        model.backward(np.ones_like(out))
    # the call stays pending (not consumed); zero_grad drops it
    assert all(p.grad is None for p in model.parameters())
    model.zero_grad()
    with pytest.raises(RuntimeError):
        model.backward(np.ones_like(out))


def test_restored_input_and_fresh_calls_are_fine():
    model = SAVES_INPUT["Sequential"]()
    x = _x((16, 5))
    out = model(x)
    x *= 2
    x /= 2  # exactly restored (powers of two)
    model.backward(np.ones_like(out))
    x *= 3  # after backward: nothing pending
    out = model(x)
    model.backward(np.ones_like(out))


def test_input_of_nested_calls_is_checked_through_the_outermost_call():
    """Records of the layers inside a model are consumed by the model's backward, whose own
    record (checked first) holds the sample of the caller's array."""
    model = nn.Sequential(nn.Linear(5, 4))
    x = _x((3, 5))
    out = model(x)
    x += 1
    with pytest.raises(RuntimeError, match="Sequential.backward: input 0"):
        model.backward(np.ones_like(out))


def test_edit_with_shared_memory_view():
    """An edit through another view of the same memory is caught as well."""
    model = nn.Linear(5, 4)
    base = _x((16, 5))
    x = base[:]
    out = model(x)
    base[:8] = 0
    with pytest.raises(RuntimeError, match="modified in place"):
        model.backward(np.ones_like(out))


def test_float64_and_strided_view_inputs_are_checked():
    model = nn.Linear(5, 4, dtype=np.float64)
    base = _x((3, 16, 5), np.float64)
    x = base[1]  # a contiguous view into a bigger array
    out = model(x)
    base *= -1
    with pytest.raises(RuntimeError, match="modified in place"):
        model.backward(np.ones_like(out))


def test_non_contiguous_input_is_copied_so_edits_are_harmless():
    """A Linear copies a non-contiguous input once (forward and backward use the copy): the
    caller's array is not saved, so editing it is allowed and changes nothing."""
    pydl.manual_seed(0)
    model = nn.Linear(5, 4)
    x = _x((16, 10))[:, ::2]
    out = model(x)
    ref_x = x.copy()
    x *= -1
    model.backward(np.ones_like(out))
    pydl.manual_seed(0)
    fresh = nn.Linear(5, 4)
    fresh.backward(np.ones_like(fresh(ref_x)))
    np.testing.assert_array_equal(model.weight.grad, fresh.weight.grad)


@pytest.mark.parametrize("make", [lambda: nn.Identity(), lambda: nn.Dropout(0.5), lambda: nn.Flatten(),
                                  lambda: nn.GaussianNoise(0.1)], ids=["Identity", "Dropout", "Flatten", "Noise"])
def test_input_nothing_saved_may_be_edited(make):
    model = make()
    x = _x((4, 5))
    out = model(x)
    x *= 2
    model.backward(np.ones_like(out))


def test_input_saved_through_a_view_is_checked():
    """Flatten hands a view of x to the Linear, which saves it: an edit of x is caught."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(10, 3))
    x = _x((4, 2, 5))
    out = model(x)
    x[:, 1] = 0
    with pytest.raises(RuntimeError, match="modified in place"):
        model.backward(np.ones_like(out))


def test_reused_module_checks_each_call():
    lin = nn.Linear(5, 4)
    x1, x2 = _x((4, 5)), _x((4, 5))
    o1, o2 = lin(x1), lin(x2)
    x1 *= 2  # the first call's input; the second call's backward is fine
    lin.backward(np.ones_like(o2))
    with pytest.raises(RuntimeError, match="modified in place"):
        lin.backward(np.ones_like(o1))


def test_issue_reproducer_sigmoid_output_scaled():
    """The issue's case: out *= 0.5 used to change the weight gradient by up to 2.4."""
    pydl.manual_seed(1)
    model = nn.Sequential(nn.Linear(5, 3), nn.Sigmoid())
    x = _x((8, 5))
    out = model(x)
    with pytest.raises(ValueError):
        out *= 0.5
    model.backward(np.ones_like(out))
    w = model[0].weight.data.astype(np.float64)
    s = 1 / (1 + np.exp(-(x.astype(np.float64) @ w.T + model[0].bias.data)))
    ref = ((s * (1 - s)).T @ x.astype(np.float64))
    np.testing.assert_allclose(model[0].weight.grad, ref, rtol=1e-5, atol=1e-6)
