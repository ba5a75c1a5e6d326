"""pydl.optim.lr_scheduler against torch.optim.lr_scheduler."""
import copy
import math

import numpy as np
import pytest

from pydl import nn, optim
from pydl.optim import lr_scheduler


def pair(torch, lrs=(0.1, 0.02)):
    """A pydl SGD and a torch SGD with one param group per lr."""
    groups = [{"params": [nn.Parameter(np.zeros(2))], "lr": lr} for lr in lrs]
    tgroups = [{"params": [torch.zeros(2, requires_grad=True)], "lr": lr} for lr in lrs]
    return optim.SGD(groups), torch.optim.SGD(tgroups)


SCHEDULERS = [
    ("StepLR", dict(step_size=3)), ("StepLR", dict(step_size=2, gamma=0.5)),
    ("ExponentialLR", dict(gamma=0.9)),
    ("CosineAnnealingLR", dict(T_max=7)), ("CosineAnnealingLR", dict(T_max=5, eta_min=0.001)),
]


@pytest.mark.parametrize("name,kwargs", SCHEDULERS)
def test_epoch_schedulers_match_torch(name, kwargs):
    torch = pytest.importorskip("torch")
    opt, topt = pair(torch)
    sched = getattr(lr_scheduler, name)(opt, **kwargs)
    tsched = getattr(torch.optim.lr_scheduler, name)(topt, **kwargs)
    assert sched.get_last_lr() == tsched.get_last_lr()
    for epoch in range(25):  # past T_max: the cosine comes back up
        topt.step()
        sched.step()
        tsched.step()
        assert sched.last_epoch == tsched.last_epoch == epoch + 1
        np.testing.assert_allclose(sched.get_last_lr(), tsched.get_last_lr(), rtol=1e-13, atol=1e-16)
        assert [g["lr"] for g in opt.param_groups] == sched.get_last_lr()
    assert [g["initial_lr"] for g in opt.param_groups] == [0.1, 0.02]


def test_cosine_follows_closed_form_and_step_epoch():
    opt = optim.SGD([nn.Parameter(np.zeros(1))], lr=0.5)
    sched = lr_scheduler.CosineAnnealingLR(opt, T_max=10, eta_min=0.05)
    for e in range(1, 11):
        sched.step()
        expected = 0.05 + (0.5 - 0.05) * (1 + math.cos(math.pi * e / 10)) / 2
        assert sched.get_last_lr()[0] == pytest.approx(expected, rel=1e-12, abs=1e-15)
    sched.step(epoch=5)
    assert sched.get_last_lr()[0] == pytest.approx(0.05 + 0.45 * (1 + math.cos(math.pi / 2)) / 2, rel=1e-12)


def test_step_lr_closed_form_and_state_dict_resume():
    opt = optim.SGD([nn.Parameter(np.zeros(1))], lr=1.0)
    sched = lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    for _ in range(3):
        sched.step()
    saved = copy.deepcopy(sched.state_dict())
    assert "optimizer" not in saved and saved["last_epoch"] == 3
    lrs = []
    for _ in range(4):
        sched.step()
        lrs.append(sched.get_last_lr()[0])
    opt2 = optim.SGD([nn.Parameter(np.zeros(1))], lr=1.0)
    opt2.load_state_dict(opt.state_dict())
    opt2.param_groups[0]["lr"] = 0.5  # the lr at epoch 3
    sched2 = lr_scheduler.StepLR(opt2, step_size=2, gamma=0.5)
    sched2.load_state_dict(saved)
    lrs2 = []
    for _ in range(4):
        sched2.step()
        lrs2.append(sched2.get_last_lr()[0])
    assert lrs == lrs2 == [0.25, 0.25, 0.125, 0.125]
    sched2.step(epoch=9)
    assert sched2.get_last_lr() == [1.0 * 0.5 ** 4]


PLATEAU = [dict(), dict(mode="max", factor=0.5, patience=1), dict(patience=0, cooldown=2, min_lr=0.015),
           dict(threshold_mode="abs", threshold=0.05, patience=1), dict(mode="max", threshold_mode="abs", patience=2,
                                                                         min_lr=[0.001, 0.019], eps=1e-3)]


@pytest.mark.parametrize("kwargs", PLATEAU)
def test_reduce_on_plateau_matches_torch(kwargs):
    torch = pytest.importorskip("torch")
    opt, topt = pair(torch)
    sched = lr_scheduler.ReduceLROnPlateau(opt, **kwargs)
    tsched = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kwargs)
    rng = np.random.default_rng(0)
    metrics = np.concatenate([np.linspace(1.0, 0.5, 6), 0.5 + 0.02 * rng.standard_normal(30), np.linspace(0.5, 2, 6)])
    for m in metrics:
        sched.step(m)
        tsched.step(m)
        assert sched.get_last_lr() == tsched.get_last_lr()
        assert sched.num_bad_epochs == tsched.num_bad_epochs and sched.best == tsched.best
        assert [g["lr"] for g in opt.param_groups] == [g["lr"] for g in topt.param_groups]
    assert sched.get_last_lr() != [0.1, 0.02]  # the schedule did reduce


def test_reduce_on_plateau_state_dict_round_trip():
    opt = optim.SGD([nn.Parameter(np.zeros(1))], lr=1.0)
    sched = lr_scheduler.ReduceLROnPlateau(opt, patience=1)
    for m in (1.0, 1.0, 1.0):
        sched.step(m)
    sd = copy.deepcopy(sched.state_dict())
    sched2 = lr_scheduler.ReduceLROnPlateau(optim.SGD([nn.Parameter(np.zeros(1))], lr=1.0), mode="max")
    sched2.load_state_dict(sd)
    assert sched2.mode == "min" and sched2.best == 1.0 and sched2.num_bad_epochs == sched.num_bad_epochs


@pytest.mark.parametrize("make,message", [
    (lambda o: lr_scheduler.StepLR(o, step_size=0), "step_size: expected a positive integer, got 0"),
    (lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=-2), "T_max: expected a positive integer, got -2"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, factor=1.0), "factor: expected < 1.0, got 1.0"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, mode="up"), "mode: expected 'min' or 'max', got 'up'"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, threshold_mode="x"), "threshold_mode: expected 'rel' or 'abs'"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, min_lr=[0.1, 0.2]), "min_lr: expected 1 values"),
])
def test_bad_scheduler_arguments(make, message):
    opt = optim.SGD([nn.Parameter(np.zeros(1))], lr=1.0)
    with pytest.raises(ValueError, match=message):
        make(opt)


def test_scheduler_needs_an_optimizer_and_initial_lr_to_resume():
    with pytest.raises(TypeError, match="optimizer: expected a pydl.optim.Optimizer, got list"):
        lr_scheduler.ExponentialLR([], gamma=0.9)
    opt = optim.SGD([nn.Parameter(np.zeros(1))], lr=1.0)
    with pytest.raises(KeyError, match="initial_lr"):
        lr_scheduler.ExponentialLR(opt, gamma=0.9, last_epoch=3)


# ----------------------------------------------------------------- per-batch schedules
def opt_pair(torch, kind, lrs=(0.1, 0.02)):
    """pydl and torch optimizers of one kind ("sgd" with momentum, "adam", "adagrad"), one param
    group per lr."""
    make = {"sgd": lambda mod, g: mod.SGD(g, momentum=0.9), "adam": lambda mod, g: mod.Adam(g),
            "adagrad": lambda mod, g: mod.Adagrad(g)}[kind]
    groups = [{"params": [nn.Parameter(np.zeros(2))], "lr": lr} for lr in lrs]
    tgroups = [{"params": [torch.zeros(2, requires_grad=True)], "lr": lr} for lr in lrs]
    return make(optim, groups), make(torch.optim, tgroups)


def momenta(opt):
    return [g["betas"][0] if "betas" in g else g.get("momentum") for g in opt.param_groups]


def assert_same_schedule(opt, topt, sched, tsched, steps):
    """Step both ``steps`` times; the lr and the momentum / beta1 of every group agree at each
    step (the recursive forms are the same floating-point expressions: equal to rounding)."""
    seen = []
    for step in range(steps + 1):
        np.testing.assert_allclose(sched.get_last_lr(), tsched.get_last_lr(), rtol=1e-12, atol=1e-18)
        np.testing.assert_allclose([g["lr"] for g in opt.param_groups], [g["lr"] for g in topt.param_groups],
                                   rtol=1e-12, atol=1e-18)
        assert [g["lr"] for g in opt.param_groups] == sched.get_last_lr()
        ms, tms = momenta(opt), momenta(topt)
        if ms[0] is not None:
            np.testing.assert_allclose(ms, tms, rtol=1e-12)
        seen.append((sched.get_last_lr()[0], ms[0]))
        if step < steps:
            topt.step()
            sched.step()
            tsched.step()
    return seen


ONECYCLE = [
    ("sgd", dict(max_lr=0.5, total_steps=40)),
    ("adam", dict(max_lr=[0.01, 0.003], epochs=4, steps_per_epoch=7, pct_start=0.25)),
    ("sgd", dict(max_lr=0.2, total_steps=33, anneal_strategy="linear", three_phase=True)),
    ("adam", dict(max_lr=0.1, total_steps=25, three_phase=True, base_momentum=0.8, max_momentum=[0.9, 0.99],
                  div_factor=10.0, final_div_factor=100.0)),
    ("adagrad", dict(max_lr=0.3, total_steps=12, cycle_momentum=False)),
]


@pytest.mark.parametrize("kind,kwargs", ONECYCLE)
def test_one_cycle_matches_torch_step_by_step(kind, kwargs):
    torch = pytest.importorskip("torch")
    opt, topt = opt_pair(torch, kind)
    sched = lr_scheduler.OneCycleLR(opt, **kwargs)
    tsched = torch.optim.lr_scheduler.OneCycleLR(topt, **kwargs)
    seen = assert_same_schedule(opt, topt, sched, tsched, sched.total_steps - 1)
    lrs = [lr for lr, _ in seen]
    top = kwargs["max_lr"] if isinstance(kwargs["max_lr"], float) else kwargs["max_lr"][0]
    div = kwargs.get("div_factor", 25.0)
    assert lrs[0] == pytest.approx(top / div, rel=1e-12)                  # starts at max_lr / div_factor
    assert max(lrs) == pytest.approx(top, rel=5e-2)                       # peaks near max_lr (a step of it)
    assert lrs[-1] == pytest.approx(top / div / kwargs.get("final_div_factor", 1e4), rel=1e-9)
    with pytest.raises(ValueError, match="Tried to step"):               # as torch: one step too many
        sched.step()
        sched.step()


def test_one_cycle_state_dict_resumes_the_schedule():
    opt = optim.Adam([nn.Parameter(np.zeros(2))])
    sched = lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=20)
    for _ in range(7):
        sched.step()
    saved = copy.deepcopy(sched.state_dict())
    groups = copy.deepcopy([{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups])
    rest = []
    for _ in range(10):
        sched.step()
        rest.append((sched.get_last_lr()[0], opt.param_groups[0]["betas"][0]))
    opt2 = optim.Adam([nn.Parameter(np.zeros(2))])
    opt2.param_groups[0].update(groups[0])
    sched2 = lr_scheduler.OneCycleLR(opt2, max_lr=0.1, total_steps=20, last_epoch=6)
    sched2.load_state_dict(saved)
    rest2 = []
    for _ in range(10):
        sched2.step()
        rest2.append((sched2.get_last_lr()[0], opt2.param_groups[0]["betas"][0]))
    assert rest == rest2


LINEAR = [dict(), dict(start_factor=0.1, total_iters=4), dict(start_factor=1.0, end_factor=0.25, total_iters=6),
          dict(start_factor=0.5, end_factor=0.0, total_iters=3)]


@pytest.mark.parametrize("kwargs", LINEAR)
def test_linear_lr_matches_torch(kwargs):
    torch = pytest.importorskip("torch")
    opt, topt = opt_pair(torch, "sgd")
    sched = lr_scheduler.LinearLR(opt, **kwargs)
    tsched = torch.optim.lr_scheduler.LinearLR(topt, **kwargs)
    seen = assert_same_schedule(opt, topt, sched, tsched, 12)
    s, f, T = kwargs.get("start_factor", 1 / 3), kwargs.get("end_factor", 1.0), kwargs.get("total_iters", 5)
    for e, (lr, _) in enumerate(seen):                          # the closed form, independently of torch
        assert lr == pytest.approx(0.1 * (s + (f - s) * min(e, T) / T), rel=1e-12, abs=1e-15)
    sched.step(epoch=2)
    assert sched.get_last_lr()[0] == pytest.approx(0.1 * (s + (f - s) * min(2, T) / T), rel=1e-12)


def sequential_cases(mod, opt):
    S = mod.lr_scheduler
    return [
        ([S.LinearLR(opt, start_factor=0.1, total_iters=3), S.CosineAnnealingLR(opt, T_max=6)], [3]),
        ([S.LinearLR(opt, total_iters=4), S.ExponentialLR(opt, gamma=0.8)], [4]),
        ([S.StepLR(opt, step_size=2, gamma=0.5), S.LinearLR(opt, start_factor=0.2, total_iters=2),
          S.ExponentialLR(opt, gamma=0.9)], [3, 7]),
    ]


@pytest.mark.parametrize("case", range(3))
def test_sequential_lr_matches_torch(case):
    torch = pytest.importorskip("torch")
    opt, topt = opt_pair(torch, "sgd")
    scheds, milestones = sequential_cases(optim, opt)[case]
    tscheds, _ = sequential_cases(torch.optim, topt)[case]
    sched = lr_scheduler.SequentialLR(opt, scheds, milestones)
    tsched = torch.optim.lr_scheduler.SequentialLR(topt, tscheds, milestones)
    assert_same_schedule(opt, topt, sched, tsched, 15)


def test_sequential_lr_state_dict_round_trip():
    def build():
        opt = optim.SGD([nn.Parameter(np.zeros(1))], lr=1.0)
        warm = lr_scheduler.LinearLR(opt, start_factor=0.25, total_iters=4)
        return opt, lr_scheduler.SequentialLR(opt, [warm, lr_scheduler.CosineAnnealingLR(opt, T_max=8)], [4])
    opt, sched = build()
    for _ in range(6):
        sched.step()
    saved = copy.deepcopy(sched.state_dict())
    lr_now = opt.param_groups[0]["lr"]
    cont = []
    for _ in range(5):
        sched.step()
        cont.append(sched.get_last_lr()[0])
    opt2, sched2 = build()
    sched2.load_state_dict(saved)
    opt2.param_groups[0]["lr"] = lr_now
    cont2 = []
    for _ in range(5):
        sched2.step()
        cont2.append(sched2.get_last_lr()[0])
    assert cont == cont2
    assert "_schedulers" in saved and len(saved["_schedulers"]) == 2


@pytest.mark.parametrize("make,exc,message", [
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1), ValueError, "total_steps or both epochs and steps_per_epoch"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=0), ValueError, "total_steps: expected a positive"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1, epochs=2, steps_per_epoch=1.5), ValueError, "steps_per_epoch"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=9, pct_start=1.5), ValueError, "pct_start"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=9, anneal_strategy="exp"), ValueError,
     "anneal_strategy"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=[0.1, 0.2], total_steps=9), ValueError, "max_lr: expected 1 values"),
    (lambda o: lr_scheduler.OneCycleLR(optim.Adagrad(o.param_groups[0]["params"]), max_lr=0.1, total_steps=9),
     ValueError, "cycle_momentum: Adagrad has no momentum"),
    (lambda o: lr_scheduler.LinearLR(o, start_factor=0.0), ValueError, r"start_factor: expected a float in \(0.0"),
    (lambda o: lr_scheduler.LinearLR(o, end_factor=1.5), ValueError, "end_factor"),
    (lambda o: lr_scheduler.LinearLR(o, total_iters=0), ValueError, "total_iters"),
    (lambda o: lr_scheduler.SequentialLR(o, [], []), ValueError, "at least one scheduler"),
    (lambda o: lr_scheduler.SequentialLR(o, [lr_scheduler.LinearLR(o)], [3]), ValueError, "milestones: expected 0"),
    (lambda o: lr_scheduler.SequentialLR(o, [lr_scheduler.ReduceLROnPlateau(o)], []), ValueError, "ReduceLROnPlateau"),
    (lambda o: lr_scheduler.SequentialLR(o, [lr_scheduler.LinearLR(optim.SGD([nn.Parameter(np.zeros(1))]))], []),
     ValueError, "another optimizer"),
])
def test_bad_batch_scheduler_arguments(make, exc, message):
    opt = optim.SGD([nn.Parameter(np.zeros(1))], lr=1.0, momentum=0.9)
    with pytest.raises(exc, match=message):
        make(opt)
