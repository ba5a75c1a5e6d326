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
