"""Optimizer base class: parameter groups, per-parameter state, state_dict round trips, and
the step every optimizer shares.

``Optimizer.step`` takes, in each parameter group, the parameters that have a gradient, splits
them by dtype, creates or completes their state (``"step"`` and the arrays a subclass names in
``_state_arrays``, zeros at first; or the subclass's own ``_init_group``), and hands flat lists
(params, grads, states) to the subclass's ``_step_group``, which makes one multi-tensor C++ call
(pydl._C.<name>_step). Subclasses also name the hyperparameters that must be numbers >= 0
(``_nonnegative``; override ``_validate`` for other checks).
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable
from typing import Any, Union

import numpy as np

from ..nn.parameter import Parameter

#: what an optimizer takes: Parameters, or parameter groups (dicts with "params" and hyperparameters)
ParamsT = Union[Iterable[Parameter], Iterable[dict[str, Any]]]


class Optimizer:
    """Base class of the optimizers (PyTorch's ``torch.optim.Optimizer`` semantics).

    Parameters
    ----------
    params : iterable of Parameter, or iterable of dict
        The parameters to optimize, or parameter groups: dicts with a ``"params"`` entry (a list
        of Parameters) and optional per-group hyperparameters (e.g. ``"lr"``), the others taken
        from ``defaults``.
    defaults : dict
        Default hyperparameters of every group.

    Attributes
    ----------
    param_groups : list of dict
        One mutable dict per group: ``"params"`` and every hyperparameter (edit ``"lr"`` to
        change the learning rate, as the schedulers of pydl.optim.lr_scheduler do).
    state : dict
        Parameter -> dict of its state (``"step"``, moment arrays, ...), filled at its first step.
    """

    defaults: dict[str, Any]
    param_groups: list[dict[str, Any]]
    state: dict[Parameter, dict[str, Any]]

    def __init__(self, params: ParamsT, defaults: dict[str, Any]) -> None:
        self.defaults = dict(defaults)
        self._validate(self.defaults)
        self.state = {}
        self.param_groups = []
        if isinstance(params, (Parameter, np.ndarray)):
            raise TypeError("params: expected an iterable of Parameters or of dicts, got "
                            f"{type(params).__name__}")
        try:
            items: list[Any] = list(params)
        except TypeError:
            raise TypeError("params: expected an iterable of Parameters or of dicts, got "
                            f"{type(params).__name__}") from None
        if not items:
            raise ValueError("params: optimizer got an empty parameter list")
        if not isinstance(items[0], dict):
            items = [{"params": items}]
        for group in items:
            self.add_param_group(group)

    # -- subclass interface ---------------------------------------------------------------------
    #: hyperparameters the default ``_validate`` checks, in this order: numbers >= 0 (rho <= 1 too)
    _nonnegative: tuple[str, ...] = ()
    #: whether the state holds a ``"step"`` count, which ``step()`` raises once the kernel has run
    _counts_steps = True

    def _validate(self, hyper):
        """Raise ValueError naming the first invalid hyperparameter of ``hyper``."""
        for name in self._nonnegative:
            check_range(hyper[name], _LABELS.get(name, f"{name} value"), high=_UPPER.get(name))

    def _state_arrays(self, group):
        """Names of the state arrays, zeros at first, that the options of ``group`` use."""
        return ()

    def _init_group(self, group, params, states):
        """Create (a state is empty at its first step) or complete the states before a step.

        ``states`` are the state dicts of the arrays ``params`` of ``group``. A new state gets
        ``"step"`` 0 (if ``_counts_steps``); every state gets zeros for each array of
        ``_state_arrays(group)`` it lacks (so an option turned on later adds its array).
        """
        names = self._state_arrays(group)
        for param, state in zip(params, states):
            if not state and self._counts_steps:
                state["step"] = 0
            for name in names:
                if name not in state:
                    state[name] = np.zeros(param.shape, dtype=param.dtype)

    def _step_group(self, group, params, grads, states):
        """Update ``params`` (arrays of one dtype) from ``grads`` and ``states`` (their state
        dicts) with one multi-tensor kernel call, using the hyperparameters of ``group``."""
        raise NotImplementedError

    # -- public API ---------------------------------------------------------------------------
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group (a dict with ``"params"``); missing hyperparameters take the defaults."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group: expected a dict, got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError("param_group: missing the key 'params'")
        params = param_group["params"]
        if isinstance(params, Parameter):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError("params: expected an ordered collection of Parameters, got a set "
                            "(its order changes between runs)")
        else:
            params = list(params)
        for i, p in enumerate(params):
            if not isinstance(p, Parameter):
                raise TypeError(f"params[{i}]: expected a pydl.nn.Parameter, got {type(p).__name__}")
        if len({id(p) for p in params}) != len(params):
            raise ValueError("params: a parameter appears more than once in the group")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError("params: some parameters appear in more than one parameter group")
        group = dict(param_group)
        group["params"] = params
        for name, default in self.defaults.items():
            group.setdefault(name, default)
        self._validate(group)
        # keep the caller's dict object (as PyTorch) so edits through either name are seen
        param_group.clear()
        param_group.update(group)
        self.param_groups.append(param_group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients: to None (default), or to zeros in place."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p._grad = None
                elif p._grad is not None:
                    p._grad.fill(0)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One update of every parameter that has a gradient (parameters whose ``grad`` is None
        are skipped). ``closure``, if given, is called first and its result returned."""
        loss = closure() if closure is not None else None
        state = self.state
        for group in self.param_groups:
            by_dtype: dict[Any, tuple[list[Any], list[Any], list[Any]]] = {}  # dtype -> (params, grads, states)
            for p in group["params"]:
                grad = p._grad
                if grad is None:
                    continue
                st = state.get(p)
                if st is None:
                    st = state[p] = {}
                data = p.data
                lists = by_dtype.get(data.dtype)
                if lists is None:
                    lists = by_dtype[data.dtype] = ([], [], [])
                lists[0].append(data)
                lists[1].append(grad)
                lists[2].append(st)
            for params, grads, states in by_dtype.values():
                self._init_group(group, params, states)
                try:
                    self._step_group(group, params, grads, states)
                except TypeError as exc:
                    _explain_state_dtype(exc, params, states)
                    raise
                if self._counts_steps:
                    for st in states:  # counted once the kernel has run: a step it refuses is not counted
                        st["step"] += 1
        return loss

    def state_dict(self) -> dict[str, Any]:
        """Copy of the optimizer's state: ``{"state": {index: {key: value}}, "param_groups":
        [{hyperparameters..., "params": [index, ...]}]}``, parameters numbered in group order."""
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = [index.setdefault(id(p), len(index)) for p in group["params"]]
            groups.append(packed)
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if p in self.state:
                    state[index[id(p)]] = {k: (v.copy() if isinstance(v, np.ndarray) else v)
                                           for k, v in self.state[p].items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a ``state_dict()``: hyperparameters and state (copied, cast to each parameter's
        dtype). The groups must hold as many parameters as when it was saved.

        Everything is validated before anything changes, as the constructor validates its
        arguments: each saved hyperparameter goes through the same checks as in the constructor
        (``lr=nan``, ``betas=(1.0, 0.999)``, a negative ``eps`` are refused), numbers must be
        real and finite and flags bools; ``"initial_lr"`` (set by the schedulers) must be a
        finite number >= 0. State arrays must be real floating arrays of their parameter's shape,
        finite once cast to its dtype, and second-moment accumulators (``exp_avg_sq``,
        ``max_exp_avg_sq``, ``square_avg``, ``sum``, ``acc_delta``) non-negative; ``"step"`` an
        int >= 0. Hyperparameters missing from a saved group keep their current values; state
        entries that are None are treated as absent (as PyTorch's ``momentum_buffer=None``).

        Raises
        ------
        ValueError, TypeError
            Naming the offending entry, e.g. ``state_dict['param_groups'][0]['lr']``; the
            optimizer is then left unchanged.
        """
        if not isinstance(state_dict, dict) or "state" not in state_dict or "param_groups" not in state_dict:
            raise ValueError("state_dict: expected a dict with keys 'state' and 'param_groups'")
        saved_groups = state_dict["param_groups"]
        saved_state = state_dict["state"]
        if not isinstance(saved_groups, (list, tuple)):
            raise TypeError("state_dict['param_groups']: expected a list of dicts, got "
                            f"{type(saved_groups).__name__}")
        if not isinstance(saved_state, dict):
            raise TypeError(f"state_dict['state']: expected a dict, got {type(saved_state).__name__}")
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"state_dict: has {len(saved_groups)} parameter groups, "
                             f"the optimizer has {len(self.param_groups)}")
        by_index = {}
        new_groups = []
        for gi, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            where = f"state_dict['param_groups'][{gi}]"
            if not isinstance(saved, dict) or "params" not in saved:
                raise ValueError(f"{where}: expected a dict with the key 'params'")
            indices = saved["params"]
            if not isinstance(indices, (list, tuple)):
                raise TypeError(f"{where}['params']: expected a list of ints, got {type(indices).__name__}")
            if len(indices) != len(group["params"]):
                raise ValueError(f"state_dict: param_groups[{gi}] has {len(indices)} parameters, "
                                 f"the optimizer's group has {len(group['params'])}")
            for idx, p in zip(indices, group["params"]):
                if isinstance(idx, (bool, np.bool_)) or not isinstance(idx, (int, np.integer)):
                    raise TypeError(f"{where}['params']: expected int indices, got {idx!r}")
                if int(idx) in by_index:
                    raise ValueError(f"{where}['params']: index {int(idx)} appears more than once")
                by_index[int(idx)] = p
            new_groups.append(self._checked_group(group, saved, where))
        new_state = {}
        for idx, st in saved_state.items():
            where = f"state_dict: state[{idx!r}]"
            if isinstance(idx, (bool, np.bool_)) or not isinstance(idx, (int, np.integer)) or int(idx) not in by_index:
                raise ValueError(f"{where} belongs to no parameter group")
            if not isinstance(st, dict):
                raise TypeError(f"{where}: expected a dict, got {type(st).__name__}")
            p = by_index[int(idx)]
            restored = {}
            for key, value in st.items():
                if value is None:
                    continue
                if key == "step":
                    restored[key] = _checked_step(value, f"{where}['step']")
                else:
                    restored[key] = _checked_state_array(key, value, p, f"{where}[{key!r}]")
            if self._counts_steps and restored and "step" not in restored:
                raise ValueError(f"{where}: has {sorted(restored)} but no 'step'")
            new_state[p] = restored
        # everything is valid: commit
        for group, hyper in zip(self.param_groups, new_groups):
            params = group["params"]
            group.clear()
            group.update(hyper)
            group["params"] = params
        self.state = new_state

    def _checked_group(self, group, saved, where):
        """The hyperparameters of ``saved`` (a saved group) completed with those of ``group``,
        after the constructor's checks; errors name ``where[key]``."""
        current = {k: v for k, v in group.items() if k != "params"}
        hyper = dict(current)
        for key, value in saved.items():
            if key == "params":
                continue
            here = f"{where}[{key!r}]"
            if key in self.defaults:
                _check_hyper_type(value, self.defaults[key], here)
            elif key == "initial_lr":
                _check_real(value, here)
                try:
                    check_range(value, "initial learning rate")
                except ValueError as e:
                    raise ValueError(f"{here}: {e}") from None
            hyper[key] = value
        try:
            self._validate(hyper)          # the constructor's checks
        except (ValueError, TypeError) as e:
            raise type(e)(f"{self._culprit(current, hyper, saved, where)}: {e}") from None
        return hyper

    def _culprit(self, current, hyper, saved, where):
        """Name the saved key that makes ``hyper`` invalid: the only one that fails the checks
        when set alone on the (valid) current hyperparameters; else the whole group."""
        culprits = []
        for key in saved:
            if key in self.defaults and saved[key] is not current.get(key):
                trial = dict(current)
                trial[key] = hyper[key]
                try:
                    self._validate(trial)
                except (ValueError, TypeError):
                    culprits.append(key)
        return f"{where}[{culprits[0]!r}]" if len(culprits) == 1 else where

    def __repr__(self) -> str:
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join(lines + [")"])


# -- shared helpers for the subclasses ---------------------------------------------------------
# how "Invalid <label>: <value>" names a hyperparameter (the others: "<name> value"), and the upper
# bounds of those that have one
_LABELS = {"lr": "learning rate", "eps": "epsilon value"}
_UPPER = {"rho": 1.0}


def check_range(value, text, low=0.0, high=None, high_open=False):
    """Raise ValueError("Invalid <text>: <value>") unless low <= value (<= or <) high."""
    try:
        ok = low <= value and (high is None or (value < high if high_open else value <= high))
    except TypeError:
        raise TypeError(f"Invalid {text}: expected a number, got {type(value).__name__}") from None
    if not ok:
        raise ValueError(f"Invalid {text}: {value}")


#: state arrays that accumulate squares (second moments): never negative
_NONNEGATIVE_STATE = frozenset({"exp_avg_sq", "max_exp_avg_sq", "square_avg", "sum", "acc_delta"})


def _check_real(value, where):
    """Raise unless ``value`` is a finite real number (not a bool, not complex)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{where}: expected a real number, got {type(value).__name__} {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{where}: expected a finite number, got {value!r}")


def _check_hyper_type(value, default, where):
    """A saved hyperparameter must have the kind of its default: a bool for a flag, a finite
    real number for a number, a sequence of finite reals for a tuple such as ``betas``."""
    if isinstance(default, (bool, np.bool_)):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{where}: expected a bool, got {type(value).__name__} {value!r}")
    elif isinstance(default, numbers.Real):
        _check_real(value, where)
    elif isinstance(default, (tuple, list)):
        if not isinstance(value, (tuple, list)) or len(value) != len(default):
            raise ValueError(f"{where}: expected a sequence of {len(default)} numbers, got {value!r}")
        for i, v in enumerate(value):
            _check_real(v, f"{where}[{i}]")


def _checked_step(value, where):
    """A saved step count as an int >= 0 (an int, or an integral float / 0-d array)."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{where}: expected an int, got {type(value).__name__} {value!r}")
    if not isinstance(value, numbers.Integral):
        if not math.isfinite(value) or value != int(value):
            raise ValueError(f"{where}: expected a whole number of steps, got {value!r}")
    if value < 0:
        raise ValueError(f"{where}: expected a step count >= 0, got {value!r}")
    return int(value)


def _checked_state_array(key, value, param, where):
    """A copy of the state array ``value`` cast to ``param``'s dtype, after checking it is a real
    floating array of the parameter's shape, finite, and non-negative for a second moment."""
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{where}: expected an array, got {type(value).__name__}")
    if value.dtype.kind != "f":
        raise TypeError(f"{where}: expected a real floating array, got dtype {value.dtype}")
    if value.shape != param.data.shape:
        raise ValueError(f"{where}: expected shape {param.data.shape} (as its parameter), got {value.shape}")
    with np.errstate(over="ignore"):
        arr = np.array(value, dtype=param.data.dtype, order="C", copy=True)
    if not np.isfinite(arr).all():
        bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{where}: holds {bad} NaN or infinite value(s) (as {arr.dtype})")
    if key in _NONNEGATIVE_STATE and (arr < 0).any():
        raise ValueError(f"{where}: a second-moment accumulator must be >= 0, got "
                         f"{int(np.count_nonzero(arr < 0))} negative value(s) (min {float(arr.min())!r})")
    return arr


def _explain_state_dtype(exc: TypeError, params: list[Any], states: list[Any]) -> None:
    """Raise a TypeError that names the cause when the optimizer state was made for parameters
    of another dtype (the model was cast with ``.double()``/``.float()``/``.to()`` after steps)."""
    for p, st in zip(params, states):
        for key, value in st.items():
            if isinstance(value, np.ndarray) and value.dtype != p.dtype:
                raise TypeError(
                    f"optimizer state {key!r} is {value.dtype} but its parameter is now {p.dtype}: the "
                    "state was made before the model was cast. Cast the model before creating the "
                    "optimizer, or create a new optimizer after the cast.") from exc

