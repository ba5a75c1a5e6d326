"""Defect 4b: Optimizer.load_state_dict validates what it loads as the constructor validates its
arguments; errors name the key, and a refused state leaves the optimizer unchanged."""
import copy

import numpy as np
import pytest

import pydl
from pydl import nn, optim


def stepped(cls, **kw):
    pydl.manual_seed(0)
    params = [nn.Parameter(np.ones((2, 3), np.float32)), nn.Parameter(np.ones(3, np.float32))]
    opt = cls(params, **kw)
    for _ in range(2):
        for p in params:
            p.grad = np.full(p.data.shape, 0.5, np.float32)
        opt.step()
    return opt


def refused(opt, mutate, error, match):
    sd = copy.deepcopy(opt.state_dict())
    mutate(sd)
    before = repr(opt.state_dict())
    with pytest.raises(error, match=match):
        opt.load_state_dict(sd)
    assert repr(opt.state_dict()) == before          # unchanged


def group(key, value):
    return lambda sd: sd["param_groups"][0].__setitem__(key, value)


def state(idx, key, value):
    return lambda sd: sd["state"][idx].__setitem__(key, value)


ADAM_BAD_GROUPS = [
    ("lr", float("nan"), ValueError, r"\['lr'\]: expected a finite number, got nan"),
    ("lr", float("inf"), ValueError, r"\['lr'\]: expected a finite number"),
    ("lr", -1e-3, ValueError, r"\['lr'\]: Invalid learning rate: -0.001"),
    ("lr", 1 + 2j, TypeError, r"\['lr'\]: expected a real number, got complex"),
    ("lr", "0.1", TypeError, r"\['lr'\]: expected a real number, got str"),
    ("betas", (1.0, 0.999), ValueError, r"\['betas'\]: Invalid beta parameter at index 0: 1.0"),
    ("betas", (0.9, -0.1), ValueError, r"\['betas'\]: Invalid beta parameter at index 1"),
    ("betas", (0.9,), ValueError, r"\['betas'\]: expected a sequence of 2 numbers"),
    ("betas", (0.9, float("nan")), ValueError, r"\['betas'\]\[1\]: expected a finite number"),
    ("eps", -1e-8, ValueError, r"\['eps'\]: Invalid epsilon value"),
    ("weight_decay", -1.0, ValueError, r"\['weight_decay'\]: Invalid weight_decay value"),
    ("amsgrad", "yes", TypeError, r"\['amsgrad'\]: expected a bool, got str"),
    ("maximize", 1, TypeError, r"\['maximize'\]: expected a bool, got int"),
    ("initial_lr", float("nan"), ValueError, r"\['initial_lr'\]: expected a finite number"),
    ("initial_lr", -1.0, ValueError, r"\['initial_lr'\]: Invalid initial learning rate"),
]


@pytest.mark.parametrize("key, value, error, match", ADAM_BAD_GROUPS, ids=[f"{k}={v!r}" for k, v, *_ in ADAM_BAD_GROUPS])
def test_adam_hyperparameters_validated(key, value, error, match):
    refused(stepped(optim.Adam), group(key, value), error, r"state_dict\['param_groups'\]\[0\]" + match)


ADAM_BAD_STATES = [
    ("exp_avg_sq", -np.ones((2, 3), np.float32), ValueError, "a second-moment accumulator must be >= 0"),
    ("exp_avg", np.ones((2, 3), np.complex64), TypeError, "expected a real floating array, got dtype complex64"),
    ("exp_avg", np.ones((2, 3), np.int64), TypeError, "expected a real floating array, got dtype int64"),
    ("exp_avg", np.full((2, 3), np.nan, np.float32), ValueError, "holds 6 NaN or infinite"),
    ("exp_avg", np.full((2, 3), 1e300), ValueError, r"holds 6 NaN or infinite value\(s\) \(as float32\)"),
    ("exp_avg", np.ones((3, 2), np.float32), ValueError, "expected shape"),
    ("exp_avg", [[0.0] * 3] * 2, TypeError, "expected an array, got list"),
    ("step", -1, ValueError, "expected a step count >= 0"),
    ("step", 1.5, ValueError, "expected a whole number of steps"),
    ("step", True, TypeError, "expected an int, got bool"),
    ("step", "2", TypeError, "expected an int, got str"),
]


@pytest.mark.parametrize("key, value, error, match", ADAM_BAD_STATES, ids=[k + "-" + m[:20] for k, _, _, m in ADAM_BAD_STATES])
def test_adam_state_validated(key, value, error, match):
    refused(stepped(optim.Adam), state(0, key, value), error, rf"state\[0\]\['{key}'\]: {match}")


@pytest.mark.parametrize("cls, kw, key", [
    (optim.Adam, dict(amsgrad=True), "max_exp_avg_sq"),
    (optim.RMSprop, dict(), "square_avg"),
    (optim.Adagrad, dict(), "sum"),
    (optim.Adadelta, dict(), "square_avg"),
    (optim.Adadelta, dict(), "acc_delta"),
])
def test_negative_second_moments_refused(cls, kw, key):
    opt = stepped(cls, **kw)
    bad = opt.state_dict()["state"][1][key].copy()
    bad[0] = -1e-3
    refused(opt, state(1, key, bad), ValueError, rf"state\[1\]\['{key}'\]: a second-moment")


@pytest.mark.parametrize("cls, kw, key, value, match", [
    (optim.SGD, dict(momentum=0.9), "lr", float("nan"), r"\['lr'\]: expected a finite number"),
    (optim.SGD, dict(momentum=0.9), "momentum", -0.5, r"\['momentum'\]: Invalid momentum value"),
    (optim.SGD, dict(momentum=0.9, nesterov=True), "momentum", 0.0, r"\['momentum'\]: Nesterov momentum"),
    (optim.RMSprop, dict(), "alpha", -0.1, r"\['alpha'\]"),
    (optim.Adagrad, dict(), "lr_decay", -1.0, r"\['lr_decay'\]"),
    (optim.Adadelta, dict(), "rho", 1.5, r"\['rho'\]"),
    (optim.AdamW, dict(), "betas", (0.9, 1.0), r"\['betas'\]: Invalid beta parameter at index 1"),
])
def test_other_optimizers_validate_as_their_constructor(cls, kw, key, value, match):
    refused(stepped(cls, **kw), group(key, value), ValueError, r"state_dict\['param_groups'\]\[0\]" + match)
    with pytest.raises(ValueError):                 # the constructor refuses the same value
        cls([nn.Parameter(np.ones(2))], **dict(kw, **{key: value}))


def test_sgd_momentum_buffer_validated():
    opt = stepped(optim.SGD, momentum=0.9)
    refused(opt, state(0, "momentum_buffer", np.full((2, 3), np.inf, np.float32)), ValueError, "infinite")
    refused(opt, state(0, "momentum_buffer", np.ones((2, 3), np.complex128)), TypeError, "real floating")


def test_structure_errors_name_the_place():
    opt = stepped(optim.Adam)
    refused(opt, lambda sd: sd.__setitem__("param_groups", {"a": 1}), TypeError, r"\['param_groups'\]")
    refused(opt, lambda sd: sd.__setitem__("state", [1]), TypeError, r"state_dict\['state'\]")
    refused(opt, lambda sd: sd["param_groups"][0].__setitem__("params", [0, 0]), ValueError,
            "index 0 appears more than once")
    refused(opt, lambda sd: sd["param_groups"][0].__setitem__("params", ["a", "b"]), TypeError, "int indices")
    refused(opt, lambda sd: sd["state"].__setitem__(7, {}), ValueError, r"state\[7\] belongs to no parameter group")
    refused(opt, lambda sd: sd["state"].__setitem__(0, [1]), TypeError, r"state\[0\]: expected a dict")
    refused(opt, lambda sd: sd["state"][0].pop("step"), ValueError, r"state\[0\]: has .* but no 'step'")


def test_valid_states_still_load_and_resume_bitwise(tmp_path):
    """Through a file, every optimizer's own state loads (float64 moments cast to float32 too);
    None entries (PyTorch's momentum_buffer=None) count as absent; missing hyperparameters keep
    the current values."""
    for cls, kw in ((optim.Adam, dict(amsgrad=True)), (optim.SGD, dict(momentum=0.9, nesterov=True)),
                    (optim.RMSprop, dict(centered=True, momentum=0.5)), (optim.Adagrad, {}), (optim.Adadelta, {})):
        opt = stepped(cls, **kw)
        pydl.save(opt.state_dict(), tmp_path / "o.npz")
        fresh = stepped(cls, **kw)
        fresh.load_state_dict(pydl.load(tmp_path / "o.npz"))
        assert repr(fresh.state_dict()) == repr(opt.state_dict())
    opt = stepped(optim.Adam)
    sd = opt.state_dict()
    sd["state"][0] = {k: (v.astype(np.float64) if isinstance(v, np.ndarray) else v) for k, v in sd["state"][0].items()}
    sd["state"][0]["unused"] = None
    del sd["param_groups"][0]["eps"]
    opt.param_groups[0]["eps"] = 1e-6
    opt.load_state_dict(sd)
    assert opt.state_dict()["state"][0]["exp_avg"].dtype == np.float32
    assert "unused" not in opt.state_dict()["state"][0] and opt.param_groups[0]["eps"] == 1e-6
    sd = stepped(optim.SGD, momentum=0.9).state_dict()
    sd["state"][0]["momentum_buffer"] = None
    sd["state"][0]["step"] = np.int64(3)
    o = stepped(optim.SGD, momentum=0.9)
    o.load_state_dict(sd)
    assert "momentum_buffer" not in o.state_dict()["state"][0]


@pytest.mark.parametrize("name,kw", [("Adam", {}), ("SGD", {"lr": 0.1, "momentum": 0.9}), ("RMSprop", {})])
def test_state_made_before_a_cast_is_named(name, kw):
    m = nn.Sequential(nn.Linear(4, 3))
    opt = getattr(optim, name)(m.parameters(), **kw)
    x, y = np.ones((2, 4), np.float32), np.array([0, 1])
    loss = nn.CrossEntropyLoss()
    opt.zero_grad(); loss(m(x), y); m.backward(loss.backward()); opt.step()  # noqa: E702
    m.double()
    before = [p.data.copy() for p in m.parameters()]
    opt.zero_grad(); loss(m(x.astype(np.float64)), y); m.backward(loss.backward())  # noqa: E702
    with pytest.raises(TypeError, match=r"optimizer state '\w+' is float32 but its parameter is now float64"):
        opt.step()
    for p, b in zip(m.parameters(), before):
        assert np.array_equal(p.data, b)
