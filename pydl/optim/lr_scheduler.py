"""Learning-rate schedulers with PyTorch's semantics (``torch.optim.lr_scheduler``).

A scheduler edits ``optimizer.param_groups[i]["lr"]`` (OneCycleLR also the momentum). Construct
it after the optimizer; call ``step()`` after ``optimizer.step()``: once per epoch, or once per
batch for a schedule counted in iterations (``OneCycleLR``, a ``LinearLR`` warmup over the first
batches); ``step(metric)`` for ReduceLROnPlateau. ``pydl.train.Trainer(lr_scheduler=...,
scheduler_interval="epoch"|"batch")`` does the stepping. The schedulers update the learning rate
recursively from its current value (so they compose with other changes to it), as PyTorch does;
``step(epoch)`` uses the closed form. ``SequentialLR`` hands over from one scheduler to the next
at milestones (a warmup, then a decay).
"""
from __future__ import annotations

import bisect
import math
import numbers
from collections.abc import Sequence
from typing import Any, Union

from .optimizer import Optimizer

#: one value for every param group, or one per group
PerGroup = Union[float, list[float], tuple[float, ...]]


def _check_optimizer(optimizer: object) -> None:
    # an Optimizer, or a wrapper of one that forwards param_groups (pydl.distributed.DistributedOptimizer)
    if not isinstance(optimizer, Optimizer) and not isinstance(getattr(optimizer, "optimizer", None), Optimizer):
        raise TypeError(f"optimizer: expected a pydl.optim.Optimizer, got {type(optimizer).__name__}")


class LRScheduler:
    """Base class: sets ``initial_lr`` in each group, keeps ``base_lrs``, ``last_epoch``.

    Parameters
    ----------
    optimizer : Optimizer
    last_epoch : int, default -1
        Index of the last epoch; -1 starts afresh. Resuming (>= 0) needs ``"initial_lr"`` in every
        param group.
    """

    optimizer: Optimizer
    last_epoch: int
    _last_lr: list[float]

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        _check_optimizer(optimizer)
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(f"param 'initial_lr' is not specified in param_groups[{i}] when "
                                   "resuming a scheduler with last_epoch >= 0")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self) -> None:
        """Reset the step count and take the constructor's step (which sets the first lr)."""
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self) -> list[float]:
        """Learning rates for the epoch ``last_epoch`` (recursive form)."""
        raise NotImplementedError

    def _closed_form_lr(self) -> list[float]:
        return self.get_lr()

    def _group_lrs(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def step(self, epoch: int | None = None) -> None:
        """Advance one epoch (or jump to ``epoch``, closed form) and set the groups' lr."""
        self._step_count += 1
        self._update_lr(epoch)

    def _update_lr(self, epoch: int | None = None) -> None:
        if epoch is None:
            self.last_epoch += 1
            values = self.get_lr()
        else:
            self.last_epoch = epoch
            values = self._closed_form_lr()
        for group, lr in zip(self.optimizer.param_groups, values):
            group["lr"] = lr
        self._last_lr = self._group_lrs()

    def get_last_lr(self) -> list[float]:
        """The learning rates set by the last ``step()``, one per param group."""
        return self._last_lr

    def state_dict(self) -> dict[str, Any]:
        """Every attribute but the optimizer."""
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.__dict__.update(state_dict)


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


def _real_in(value: Any, name: str, low: float, high: float, low_open: bool = False) -> float:
    """A real number in [low, high] ((low, high] with ``low_open``), as a float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a float, got {type(value).__name__}")
    value = float(value)
    if not (low < value <= high if low_open else low <= value <= high):
        raise ValueError(f"{name}: expected a float in {'(' if low_open else '['}{low}, {high}], got {value}")
    return value


def _per_group(value: PerGroup, name: str, optimizer: Optimizer) -> list[float]:
    """One value per param group: ``value`` repeated, or a list / tuple of that many."""
    n = len(optimizer.param_groups)
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"{name}: expected {n} values (one per param group), got {len(value)}")
        return list(value)
    return [value] * n


class StepLR(LRScheduler):
    r"""Multiply the learning rate by ``gamma`` every ``step_size`` epochs:
    :math:`\eta_e = \eta_0 \gamma^{\lfloor e / \text{step\_size} \rfloor}`.

    Parameters
    ----------
    optimizer : Optimizer
    step_size : int
        Period of the decay, in epochs.
    gamma : float, default 0.1
    last_epoch : int, default -1
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1) -> None:
        self.step_size = _positive_int(step_size, "step_size")
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._group_lrs()
        return [lr * self.gamma for lr in self._group_lrs()]

    def _closed_form_lr(self) -> list[float]:
        return [base * self.gamma ** (self.last_epoch // self.step_size) for base in self.base_lrs]


class ExponentialLR(LRScheduler):
    r"""Multiply the learning rate by ``gamma`` every epoch: :math:`\eta_e = \eta_0 \gamma^e`.

    Parameters
    ----------
    optimizer : Optimizer
    gamma : float
    last_epoch : int, default -1
    """

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self._is_initial:
            return self._group_lrs()
        return [lr * self.gamma for lr in self._group_lrs()]

    def _closed_form_lr(self) -> list[float]:
        return [base * self.gamma ** self.last_epoch for base in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    r"""Cosine annealing (Loshchilov and Hutter 2017, SGDR, without restarts):

    .. math::
        \eta_e = \eta_{\min} + \tfrac{1}{2} (\eta_0 - \eta_{\min}) (1 + \cos(\pi e / T_{\max}))

    applied recursively as PyTorch does,
    :math:`\eta_{e} = \eta_{\min} + (\eta_{e-1} - \eta_{\min})
    \frac{1 + \cos(\pi e / T_{\max})}{1 + \cos(\pi (e - 1) / T_{\max})}`, and past
    :math:`T_{\max}` it follows the cosine back up (period :math:`2 T_{\max}`).

    Parameters
    ----------
    optimizer : Optimizer
    T_max : int
        Half period, in epochs.
    eta_min : float, default 0
        Lowest learning rate, reached at epoch ``T_max``.
    last_epoch : int, default -1
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1) -> None:
        self.T_max = _positive_int(T_max, "T_max")
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        e, T, lo = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return self._group_lrs()
        if self._step_count == 1 and e > 0:
            return self._closed_form_lr()
        if (e - 1 - T) % (2 * T) == 0:
            return [lr + (base - lo) * (1 - math.cos(math.pi / T)) / 2
                    for base, lr in zip(self.base_lrs, self._group_lrs())]
        return [(1 + math.cos(math.pi * e / T)) / (1 + math.cos(math.pi * (e - 1) / T)) * (lr - lo) + lo
                for lr in self._group_lrs()]

    def _closed_form_lr(self) -> list[float]:
        e, T, lo = self.last_epoch, self.T_max, self.eta_min
        return [lo + (base - lo) * (1 + math.cos(math.pi * e / T)) / 2 for base in self.base_lrs]


class LinearLR(LRScheduler):
    r"""Scale the learning rate by a factor that moves linearly from ``start_factor`` to
    ``end_factor`` over ``total_iters`` steps, then stays (a warmup with the defaults):

    .. math::
        \eta_e = \eta_0 \left(s + (f - s) \frac{\min(e, T)}{T}\right)

    applied recursively as PyTorch does: :math:`\eta_0 s` at step 0, then
    :math:`\eta_e = \eta_{e-1} (1 + \frac{f - s}{T s + (e - 1)(f - s)})` for
    :math:`1 \le e \le T`.

    Parameters
    ----------
    optimizer : Optimizer
    start_factor : float in (0, 1], default 1/3
    end_factor : float in [0, 1], default 1.0
    total_iters : int, default 5
        Steps (epochs, or batches when stepped per batch) to reach ``end_factor``.
    last_epoch : int, default -1
    """

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5, last_epoch: int = -1) -> None:
        self.start_factor = _real_in(start_factor, "start_factor", 0.0, 1.0, low_open=True)
        self.end_factor = _real_in(end_factor, "end_factor", 0.0, 1.0)
        self.total_iters = _positive_int(total_iters, "total_iters")
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        e, s, f, T = self.last_epoch, self.start_factor, self.end_factor, self.total_iters
        if e == 0:
            return [lr * s for lr in self._group_lrs()]
        if self._is_initial or e > T:
            return self._group_lrs()
        return [lr * (1.0 + (f - s) / (T * s + (e - 1) * (f - s))) for lr in self._group_lrs()]

    def _closed_form_lr(self) -> list[float]:
        e, s, f, T = self.last_epoch, self.start_factor, self.end_factor, self.total_iters
        return [base * (s + (f - s) * min(T, e) / T) for base in self.base_lrs]


class OneCycleLR(LRScheduler):
    r"""The 1cycle policy (Smith and Topin 2017, "Super-Convergence"), stepped after every batch.

    The learning rate rises from ``max_lr / div_factor`` to ``max_lr`` over the first
    ``pct_start`` of ``total_steps``, then anneals to ``max_lr / (div_factor * final_div_factor)``
    (``three_phase``: back down to the initial lr symmetrically, then to the minimum). With
    ``cycle_momentum`` the momentum (SGD / RMSprop ``momentum``, Adam's beta1) moves inversely,
    ``max_momentum`` -> ``base_momentum`` -> ``max_momentum``. Within a phase from step
    :math:`a` to :math:`b`, with :math:`t = (e - a) / (b - a)`, a value goes from :math:`u` to
    :math:`v` by :math:`v + (u - v)(1 + \cos \pi t) / 2` ("cos") or :math:`u + (v - u) t`
    ("linear"). Phase ends: step ``pct_start * total_steps - 1`` (and ``2 pct_start total_steps -
    2`` with three phases), then ``total_steps - 1``. PyTorch's semantics, names and defaults;
    stepping it more than ``total_steps`` times raises a ValueError.

    Parameters
    ----------
    optimizer : Optimizer
    max_lr : float or list of float (one per group)
    total_steps : int, optional
        Otherwise ``epochs * steps_per_epoch``.
    epochs, steps_per_epoch : int, optional
    pct_start : float in [0, 1], default 0.3
    anneal_strategy : {"cos", "linear"}, default "cos"
    cycle_momentum : bool, default True
        Needs an optimizer with ``momentum`` or ``betas`` (not Adagrad / Adadelta).
    base_momentum, max_momentum : float or list of float, default 0.85, 0.95
    div_factor : float, default 25
    final_div_factor : float, default 1e4
    three_phase : bool, default False
    last_epoch : int, default -1
        The number of batches already run, to resume.
    """

    def __init__(self, optimizer: Optimizer, max_lr: PerGroup, total_steps: int | None = None,
                 epochs: int | None = None, steps_per_epoch: int | None = None, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", cycle_momentum: bool = True, base_momentum: PerGroup = 0.85,
                 max_momentum: PerGroup = 0.95, div_factor: float = 25.0, final_div_factor: float = 1e4,
                 three_phase: bool = False, last_epoch: int = -1) -> None:
        _check_optimizer(optimizer)
        self.optimizer = optimizer
        if total_steps is not None:
            self.total_steps = _positive_int(total_steps, "total_steps")
        elif epochs is not None and steps_per_epoch is not None:
            self.total_steps = (_positive_int(epochs, "epochs")
                                * _positive_int(steps_per_epoch, "steps_per_epoch"))
        else:
            raise ValueError("OneCycleLR: give either total_steps or both epochs and steps_per_epoch")
        pct_start = _real_in(pct_start, "pct_start", 0.0, 1.0)
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy: expected 'cos' or 'linear', got {anneal_strategy!r}")
        self._anneal_func_type = anneal_strategy
        up = float(pct_start * self.total_steps) - 1
        self._schedule_phases: list[dict[str, Any]]
        if three_phase:
            self._schedule_phases = [
                {"end_step": up, "start_lr": "initial_lr", "end_lr": "max_lr",
                 "start_momentum": "max_momentum", "end_momentum": "base_momentum"},
                {"end_step": float(2 * pct_start * self.total_steps) - 2, "start_lr": "max_lr",
                 "end_lr": "initial_lr", "start_momentum": "base_momentum", "end_momentum": "max_momentum"},
                {"end_step": self.total_steps - 1, "start_lr": "initial_lr", "end_lr": "min_lr",
                 "start_momentum": "max_momentum", "end_momentum": "max_momentum"},
            ]
        else:
            self._schedule_phases = [
                {"end_step": up, "start_lr": "initial_lr", "end_lr": "max_lr",
                 "start_momentum": "max_momentum", "end_momentum": "base_momentum"},
                {"end_step": self.total_steps - 1, "start_lr": "max_lr", "end_lr": "min_lr",
                 "start_momentum": "base_momentum", "end_momentum": "max_momentum"},
            ]
        max_lrs = _per_group(max_lr, "max_lr", optimizer)
        if last_epoch == -1:
            for group, top in zip(optimizer.param_groups, max_lrs):
                group["initial_lr"] = top / div_factor
                group["max_lr"] = top
                group["min_lr"] = group["initial_lr"] / final_div_factor
        self.cycle_momentum = bool(cycle_momentum)
        if self.cycle_momentum:
            defaults = getattr(optimizer, "defaults", {})
            if "momentum" not in defaults and "betas" not in defaults:
                raise ValueError(f"cycle_momentum: {type(optimizer).__name__} has no momentum or beta1 to cycle "
                                 "(use SGD, RMSprop, Adam or AdamW, or cycle_momentum=False)")
            self.use_beta1 = "betas" in defaults
            tops = _per_group(max_momentum, "max_momentum", optimizer)
            bases = _per_group(base_momentum, "base_momentum", optimizer)
            if last_epoch == -1:
                for group, top, base in zip(optimizer.param_groups, tops, bases):
                    self._set_momentum(group, top)
                    group["max_momentum"] = top
                    group["base_momentum"] = base
        super().__init__(optimizer, last_epoch)

    def _set_momentum(self, group: dict[str, Any], value: float) -> None:
        if self.use_beta1:
            group["betas"] = (value, *group["betas"][1:])
        else:
            group["momentum"] = value

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self._anneal_func_type == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self) -> list[float]:
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(f"Tried to step {step} times. The specified number of total steps is {self.total_steps}")
        lrs = []
        for group in self.optimizer.param_groups:
            start = 0.0
            for i, phase in enumerate(self._schedule_phases):
                end = phase["end_step"]
                if step <= end or i == len(self._schedule_phases) - 1:
                    pct = (step - start) / (end - start)
                    lrs.append(self._anneal(group[phase["start_lr"]], group[phase["end_lr"]], pct))
                    if self.cycle_momentum:
                        self._set_momentum(group, self._anneal(group[phase["start_momentum"]],
                                                               group[phase["end_momentum"]], pct))
                    break
                start = end
        return lrs


def _undo_first_steps(sched: LRScheduler) -> None:
    """Take back the constructor's step of every scheduler inside ``sched`` (nested ones too)."""
    if hasattr(sched, "_schedulers"):
        for inner in sched._schedulers:
            _undo_first_steps(inner)
    else:
        sched.last_epoch -= 1


class SequentialLR(LRScheduler):
    """Run ``schedulers`` one after the other, switching at the ``milestones`` (step counts), as
    PyTorch: e.g. ``SequentialLR(opt, [LinearLR(opt, 0.1, total_iters=5), CosineAnnealingLR(opt,
    T_max=45)], milestones=[5])`` warms up for 5 steps, then anneals. At a milestone the next
    scheduler starts from its step 0 (its closed form: its base learning rate).

    Parameters
    ----------
    optimizer : Optimizer
    schedulers : list of schedulers built on ``optimizer`` (not ReduceLROnPlateau)
    milestones : list of int, one fewer than ``schedulers``
    last_epoch : int, default -1
    """

    def __init__(self, optimizer: Optimizer, schedulers: Sequence[LRScheduler], milestones: Sequence[int],
                 last_epoch: int = -1) -> None:
        _check_optimizer(optimizer)
        schedulers, milestones = list(schedulers), list(milestones)
        if not schedulers:
            raise ValueError("schedulers: SequentialLR needs at least one scheduler")
        for i, sched in enumerate(schedulers):
            if isinstance(sched, ReduceLROnPlateau):
                raise ValueError(f"schedulers[{i}]: SequentialLR cannot run ReduceLROnPlateau (its step needs a "
                                 "metric)")
            if not isinstance(sched, LRScheduler):
                raise TypeError(f"schedulers[{i}]: expected a pydl.optim.lr_scheduler scheduler, "
                                f"got {type(sched).__name__}")
            if sched.optimizer is not optimizer:
                raise ValueError(f"schedulers[{i}]: {type(sched).__name__} was built on another optimizer")
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"milestones: expected {len(schedulers) - 1} (one fewer than the schedulers), "
                             f"got {len(milestones)}")
        for m in milestones:
            if isinstance(m, bool) or not isinstance(m, numbers.Integral) or m < 0:
                raise ValueError(f"milestones: expected ints >= 0, got {m!r}")
        self._schedulers = schedulers
        self._milestones = milestones
        self.last_epoch = last_epoch + 1
        self.optimizer = optimizer
        for group in optimizer.param_groups:      # undo the schedulers' own first steps
            group["lr"] = group["initial_lr"]
        _undo_first_steps(self)
        first = schedulers[bisect.bisect_right(milestones, 0)]
        first._initial_step()
        self._last_lr = first.get_last_lr()

    def step(self) -> None:  # type: ignore[override]  # (no epoch argument, as PyTorch)
        self.last_epoch += 1
        idx = bisect.bisect_right(self._milestones, self.last_epoch)
        sched = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            sched._update_lr(0)
        else:
            sched.step()
        self._last_lr = sched.get_last_lr()

    def state_dict(self) -> dict[str, Any]:
        """Its own attributes and, under ``"_schedulers"``, each scheduler's state_dict."""
        state = {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "_schedulers")}
        state["_schedulers"] = [sched.state_dict() for sched in self._schedulers]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = dict(state_dict)
        saved = state.pop("_schedulers")
        self.__dict__.update(state)
        for sched, sd in zip(self._schedulers, saved):
            sched.load_state_dict(sd)


class ReduceLROnPlateau(LRScheduler):
    """Reduce the learning rate when a metric has stopped improving.

    After more than ``patience`` epochs without improvement, lr <- max(lr * factor, min_lr) (the
    change is skipped when smaller than ``eps``), then ``cooldown`` epochs pass before bad epochs
    count again. A metric ``a`` improves on the best ``b`` when, for mode "min", ``a < b * (1 -
    threshold)`` (threshold_mode "rel") or ``a < b - threshold`` ("abs"); for mode "max", ``a > b
    * (1 + threshold)`` or ``a > b + threshold``.

    Parameters
    ----------
    optimizer : Optimizer
    mode : {"min", "max"}, default "min"
    factor : float, default 0.1
        Must be < 1.
    patience : int, default 10
    threshold : float, default 1e-4
    threshold_mode : {"rel", "abs"}, default "rel"
    cooldown : int, default 0
    min_lr : float or list of float, default 0
        Lower bound of the lr, for all groups or one per group.
    eps : float, default 1e-8
    """

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0, min_lr: PerGroup = 0,
                 eps: float = 1e-8) -> None:
        _check_optimizer(optimizer)
        if not factor < 1.0:
            raise ValueError(f"factor: expected < 1.0, got {factor!r}")
        self.optimizer = optimizer
        self.factor = factor
        if isinstance(min_lr, (list, tuple)):
            if len(min_lr) != len(optimizer.param_groups):
                raise ValueError(f"min_lr: expected {len(optimizer.param_groups)} values (one per param "
                                 f"group), got {len(min_lr)}")
            self.default_min_lr = None
            self.min_lrs = list(min_lr)
        else:
            self.default_min_lr = min_lr
            self.min_lrs = [min_lr] * len(optimizer.param_groups)
        self.patience = patience
        self.cooldown = cooldown
        self.eps = eps
        self.last_epoch = 0
        self._last_lr = self._group_lrs()
        self._init_is_better(mode, threshold, threshold_mode)
        self._reset()

    def _init_is_better(self, mode: str, threshold: float, threshold_mode: str) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"mode: expected 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold_mode: expected 'rel' or 'abs', got {threshold_mode!r}")
        self.mode, self.threshold, self.threshold_mode = mode, threshold, threshold_mode
        self.mode_worse = math.inf if mode == "min" else -math.inf

    def _reset(self) -> None:
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def is_better(self, a: float, best: float) -> bool:
        if self.mode == "min":
            return a < (best * (1.0 - self.threshold) if self.threshold_mode == "rel" else best - self.threshold)
        return a > (best * (self.threshold + 1.0) if self.threshold_mode == "rel" else best + self.threshold)

    def step(self, metrics: float, epoch: int | None = None) -> None:  # type: ignore[override]  # (as PyTorch)
        """Record the epoch's metric value and reduce the lr if it has plateaued."""
        current = float(metrics)
        self.last_epoch = self.last_epoch + 1 if epoch is None else epoch
        if self.is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = self._group_lrs()

    def _reduce_lr(self) -> None:
        groups = self.optimizer.param_groups
        if len(groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise RuntimeError(f"min_lr: the optimizer now has {len(groups)} param groups, "
                                   f"min_lr has {len(self.min_lrs)} values")
            self.min_lrs = [self.default_min_lr] * len(groups)
        for group, min_lr in zip(groups, self.min_lrs):
            old = float(group["lr"])
            new = max(old * self.factor, min_lr)
            if old - new > self.eps:
                group["lr"] = new

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.__dict__.update(state_dict)
        self._init_is_better(self.mode, self.threshold, self.threshold_mode)
