"""Containers: nn.Sequential (with explicit Linear/Conv+activation fusion), nn.Residual, nn.ModuleList, nn.ModuleDict."""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from .. import ops
from .._typing import Array
from .._validate import check_same_shape
from .activation import _Activation
from .conv import _ConvNd
from .linear import Linear
from .module import Module, _Hooks


def _index(container, idx):
    """``idx`` (an int, negative counting from the end) as a position in ``container``."""
    n = len(container._modules)
    if isinstance(idx, bool) or not isinstance(idx, (int, np.integer)):
        raise TypeError(f"index: expected an int or a slice, got {type(idx).__name__}")
    if not -n <= idx < n:
        raise IndexError(f"index {idx} is out of range for a {type(container).__name__} of length {n}")
    return int(idx) % n


def _renumber(container, modules):
    """Re-register ``modules`` under the names "0", "1", ... (PyTorch's numbering after edits)."""
    for k in list(container._modules):
        delattr(container, k)
    for i, m in enumerate(modules):
        container.add_module(str(i), m)


def _check_module(module, name="module"):
    if not isinstance(module, Module):
        raise TypeError(f"{name}: expected an nn.Module, got {type(module).__name__}")
    return module


def _runs_as_written(m, base, *methods):
    """``m`` uses ``base``'s passes (no override in a subclass or on the instance) and has no
    forward hooks."""
    t, d = type(m), m.__dict__
    return (all(getattr(t, name) is getattr(base, name) and name not in d for name in methods)
            and not m._forward_hooks)


_FUSED_PASSES = ("forward", "backward", "forward_fused", "backward_fused")


def _fuses(layer, act):
    """A Linear without its own activation then an activation module whose derivative follows
    from its output (decided in C++ by ops.derivative_from_output), or a Conv1d/Conv2d then a
    ReLU (the conv kernels store ReLU only); neither overrides its passes nor has hooks."""
    if not (isinstance(act, _Activation) and _runs_as_written(act, _Activation, "forward", "backward")):
        return False
    if isinstance(layer, Linear):
        return (layer.activation is None and _runs_as_written(layer, Linear, *_FUSED_PASSES)
                and ops.derivative_from_output(act.activation, act.negative_slope))
    return isinstance(layer, _ConvNd) and _runs_as_written(layer, _ConvNd, *_FUSED_PASSES) and act.activation == "relu"


def _skips_input_grad(m):
    """A layer whose backward takes ``input_grad=False`` (a leading Linear or conv skips dL/dx)."""
    for base in (Linear, _ConvNd):
        if isinstance(m, base):
            return _runs_as_written(m, base, "backward", "backward_fused")
    return False


class _Plan:
    """A Sequential's steps: forward (callable, extra args) pairs, backward callables (in reverse
    order), the child names of each step, whether the first step can skip dL/dx, the hooks version.

    ``dense``: the steps as a chain of dense layers, a tuple of (Linear, activation,
    negative_slope), when every step is a plain Linear (with its own activation, or fused with the
    activation module after it), each Linear appears once and no module has forward hooks; else
    None. Such a plan runs in one C++ call each way (``ops.linear_chain``), and
    pydl.train.TrainStep runs a whole training step of it in one call. ``lins``, ``acts``,
    ``slopes``: its columns.
    """

    __slots__ = ("forward", "backward", "names", "first_skips", "version", "dense", "lins", "acts", "slopes")


def _plain_linear(m):
    """A Linear that runs as Linear's own passes (none overridden, no hooks, called as written)."""
    return (isinstance(m, Linear) and _runs_as_written(m, Linear, *_FUSED_PASSES)
            and _runs_as_written(m, Module, "__call__"))


def _dense_chain(modules):
    """``modules`` (run in order) as a chain of dense layers: a tuple of (Linear, activation,
    negative_slope), each a plain Linear with its own activation or fused with the activation
    module after it (the steps of a Sequential's plan), each Linear once; else None (also for no
    modules)."""
    chain, i = [], 0
    while i < len(modules):
        m = modules[i]
        if not _plain_linear(m):
            return None
        if i + 1 < len(modules) and _fuses(m, modules[i + 1]):
            act = modules[i + 1]
            chain.append((m, act.activation, act.negative_slope))
            i += 2
        else:
            chain.append((m, m._act, m.negative_slope))
            i += 1
    if not chain or len({id(m) for m, _, _ in chain}) != len(chain):
        return None  # a Linear twice: its gradients accumulate over its calls, step by step
    return tuple(chain)


class Sequential(Module):
    """Runs its modules in order; backward runs their backward passes in reverse.

    ``Sequential(*modules)`` or ``Sequential(OrderedDict(name=module))``; indexable (ints and
    slices; a slice is a Sequential sharing the modules), ``len``, iteration, ``append``. A
    module instance may appear several times: each call keeps its own saved state.

    **Fusion.** A plain ``Linear`` (no activation of its own) directly followed by an activation
    module whose derivative follows from its output (ReLU, LeakyReLU with slope >= 0, Sigmoid,
    Tanh: ``pydl.ops.derivative_from_output``) runs as one step, ``Linear.forward_fused`` /
    ``Linear.backward_fused``: the activation inside the GEMM epilogue and one backward call
    (dz = dy act'(y), dX, dW, db), with the same results as running them one by one. A
    ``Conv1d`` / ``Conv2d`` directly followed by ``ReLU`` fuses the same way (the ReLU stored by
    the convolution kernel, dz = dy [y > 0] inside its backward). A module
    whose class overrides its passes, or that has forward hooks, runs alone. :meth:`plan` lists
    the steps.
    """

    def __init__(self, *modules: Any) -> None:
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, m in modules[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(modules):
                self.add_module(str(i), _check_module(m, f"modules[{i}]"))
        self._plan = None

    # ----------------------------------------------------------------- container protocol
    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name in self.__dict__.get("_modules", ()):
            self.__dict__["_plan"] = None

    def add_module(self, name: str, module: Module | None) -> None:
        super().add_module(name, module)
        self.__dict__["_plan"] = None

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter([m for m in self._modules.values() if m is not None])

    def __getitem__(self, idx: int | slice) -> Any:
        """The module at ``idx``, or a Sequential of a slice."""
        if isinstance(idx, slice):
            return Sequential(OrderedDict(list(self._modules.items())[idx]))
        return list(self._modules.values())[_index(self, idx)]

    def __setitem__(self, idx: int, module: Module) -> None:
        key = list(self._modules.keys())[_index(self, idx)]
        setattr(self, key, _check_module(module))

    def __delitem__(self, idx: int | slice) -> None:
        keys = list(self._modules.keys())
        doomed = keys[idx] if isinstance(idx, slice) else [keys[_index(self, idx)]]
        for k in doomed:
            delattr(self, k)
        _renumber(self, list(self._modules.values()))

    def append(self, module: Module) -> Sequential:
        self.add_module(str(len(self._modules)), _check_module(module))
        return self

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_plan"] = None  # bound methods of this instance's modules: a copy builds its own
        return state

    # ----------------------------------------------------------------- plan
    def plan(self) -> list[tuple[str, ...]]:
        """The steps forward runs, as tuples of child names: ``("0", "1")`` is a Linear fused
        with the activation after it (one GEMM with an activation epilogue), ``("2",)`` a
        module run alone. Backward runs the same steps in reverse.

        >>> nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)).plan()
        [('0', '1'), ('2',)]
        """
        return list(self._current_plan().names)

    def _current_plan(self):
        """The plan, (re)built when a child was replaced or a forward hook added or removed since."""
        plan = self._plan
        if plan is None or plan.version != _Hooks.version:
            plan = self._build_plan()
        return plan

    def _build_plan(self):
        items = [(name, m) for name, m in self._modules.items() if m is not None]
        fwd, bwd, names, skips = [], [], [], []
        i = 0
        while i < len(items):
            name, m = items[i]
            if i + 1 < len(items) and _fuses(m, items[i + 1][1]):
                act = items[i + 1][1]
                fwd.append((m.forward_fused, (act.activation, act.negative_slope)))
                bwd.append(m.backward_fused)
                names.append((name, items[i + 1][0]))
                skips.append(True)
                i += 2
                continue
            # nested in this Sequential's call, a module's __call__ would only run forward
            fwd.append((m.forward if _runs_as_written(m, Module, "__call__") else m, ()))
            plain = _skips_input_grad(m)
            bwd.append(m.backward_fused if plain else m.backward)
            names.append((name,))
            skips.append(plain)
            i += 1
        plan = _Plan()
        plan.forward, plan.backward, plan.names = tuple(fwd), tuple(reversed(bwd)), tuple(names)
        plan.first_skips = bool(skips) and skips[0]  # the first step takes input_grad=False
        plan.version = _Hooks.version
        plan.dense = None if self._forward_hooks else _dense_chain([m for _, m in items])
        if plan.dense:
            plan.lins, plan.acts, plan.slopes = ([d[k] for d in plan.dense] for k in range(3))
        self.__dict__["_plan"] = plan
        return plan

    # ----------------------------------------------------------------- passes
    def forward(self, x: Array) -> Array:
        plan = self._plan
        if plan is None or plan.version != _Hooks.version:
            plan = self._build_plan()
        if plan.dense is not None:
            out = self._dense_forward(plan, x)
            if out is not None:
                return out
        for step, args in plan.forward:
            x = step(x, *args)
        return self._save_for_backward(x, plan)

    def _dense_forward(self, plan: Any, x: Array) -> Any:
        """A dense plan's forward in one call: the steps' kernels in order, bitwise as step by step,
        one record (the input and every layer's output) instead of one per layer. None when ``x``
        is not a 2-D array of the layers' width and dtype or the layers' parameters do not form a
        chain (dtype, shape, one shared by two layers): the steps then run one by one, and report
        any error as they do."""
        first = plan.lins[0]
        dt = first.weight.data.dtype
        if (type(x) is not np.ndarray or x.ndim != 2 or x.shape[1] != first.in_features or not x.shape[0]
                or (x.dtype is not dt and x.dtype != dt)):  # (equal dtypes may be two objects: unpickled)
            return None
        if not x.flags.c_contiguous:
            x = np.ascontiguousarray(x)  # once, for forward and backward (as a Linear does)
        weights, biases = [], []
        for m in plan.lins:  # (loops, not comprehensions: this runs every call)
            weights.append(m.weight.data)
            b = m.bias
            biases.append(None if b is None else b.data)
        try:
            ys = ops.linear_chain(x, weights, biases, plan.acts, plan.slopes)
        except (TypeError, ValueError):
            return None
        y = ys.pop()
        # the output is saved (and returned read-only) only when its activation's derivative reads it
        return self._save_for_backward(y, plan, x, ys, y if plan.acts[-1] != "none" else None)

    def backward(self, grad_out: Array, input_grad: bool = True) -> Array | None:
        """Backward through the steps of the latest pending call, in reverse; returns dL/dinput,
        or None when ``input_grad`` is False (then a leading Linear skips its dX GEMM, as torch
        does for an input that does not require grad)."""
        saved = self._saved_for_backward(grad_out)
        if len(saved) > 1:
            return _dense_backward(grad_out, input_grad, *saved)
        plan = saved[0]
        steps = plan.backward
        if input_grad or not plan.first_skips:
            for step in steps:
                grad_out = step(grad_out)
            return grad_out if input_grad else None
        for step in steps[:-1]:
            grad_out = step(grad_out)
        steps[-1](grad_out, False)
        return None


def _dense_backward(grad_out, input_grad, plan, x, hidden, y):
    """Backward of a dense record in one call (``ops.linear_chain_backward``): each Linear's
    gradients written, or added to its existing ``.grad``, as its own backward would."""
    weights, biases, datas, grads, bias_grads = [], [], [], [], []
    for m in plan.lins:  # (a loop, not comprehensions: this runs every call)
        w, b = m.weight, m.bias
        weights.append(w)
        biases.append(b)
        datas.append(w.data)
        grads.append(w._grad)
        bias_grads.append(False if b is None else b._grad)
    gx, gws, gbs = ops.linear_chain_backward(grad_out, x, hidden + [y], datas, plan.acts, plan.slopes, grads,
                                             bias_grads, input_grad)
    for w, b, gw, gb in zip(weights, biases, gws, gbs):
        w._grad = gw
        if b is not None:
            b._grad = gb
    return gx


class Residual(Module):
    """y = module(x) + (x if shortcut is None else shortcut(x)); dx = module.backward(dy) + dy
    (or + shortcut.backward(dy)). Children are registered as ``module`` then ``shortcut``."""

    def __init__(self, module: Module, shortcut: Module | None = None) -> None:
        super().__init__()
        self.module = _check_module(module)
        self.shortcut = None if shortcut is None else _check_module(shortcut, "shortcut")

    def forward(self, x: Array) -> Array:
        y = self.module(x)
        s = x if self.shortcut is None else self.shortcut(x)
        if type(y) is not np.ndarray or type(s) is not np.ndarray or y.shape != s.shape:
            check_same_shape(y, s, "its input" if self.shortcut is None else "the shortcut's output")
        return self._save_for_backward(s + y)

    def backward(self, grad_out: Array) -> Array:
        self._saved_for_backward(grad_out)
        # the shortcut ran last: when it is the same module, its call is the one on top
        gs = grad_out if self.shortcut is None else self.shortcut.backward(grad_out)
        return gs + self.module.backward(grad_out)


class ModuleList(Module):
    """A list of modules, registered under "0", "1", ... (PyTorch's ``nn.ModuleList``).

    Indexing (ints, slices give a ModuleList), ``len``, iteration, ``append``, ``extend``,
    ``insert``, ``+=`` and ``+``; ``del`` and ``insert`` renumber. It has no forward: a parent
    module's forward calls its items (and its backward walks them in reverse).
    """

    def __init__(self, modules: Iterable[Module] | None = None) -> None:
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self._modules.values()))

    def __getitem__(self, idx: int | slice) -> Any:
        """The module at ``idx``, or a ModuleList of a slice."""
        if isinstance(idx, slice):
            return ModuleList(m for m in list(self._modules.values())[idx] if m is not None)
        return list(self._modules.values())[_index(self, idx)]

    def __setitem__(self, idx: int, module: Module) -> None:
        setattr(self, str(_index(self, idx)), _check_module(module))

    def __delitem__(self, idx: int | slice) -> None:
        items = list(self._modules.values())
        del items[idx if isinstance(idx, slice) else _index(self, idx)]
        _renumber(self, items)

    def __iadd__(self, modules: Iterable[Module]) -> ModuleList:
        return self.extend(modules)

    def __add__(self, other: Iterable[Module]) -> ModuleList:
        return ModuleList(list(self) + list(ModuleList(other)))

    def append(self, module: Module) -> ModuleList:
        """Add ``module`` at the end; returns self."""
        self.add_module(str(len(self._modules)), _check_module(module))
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        """Append every module of the iterable ``modules``; returns self."""
        if isinstance(modules, Module) and not isinstance(modules, (ModuleList, Sequential)):
            raise TypeError(f"modules: expected an iterable of nn.Module, got {type(modules).__name__}")
        try:
            items = list(modules)
        except TypeError:
            raise TypeError(f"modules: expected an iterable of nn.Module, got {type(modules).__name__}") from None
        for i, m in enumerate(items):
            _check_module(m, f"modules[{i}]")
        for m in items:
            self.add_module(str(len(self._modules)), m)
        return self

    def insert(self, index: int, module: Module) -> None:
        """Insert ``module`` before position ``index`` (list semantics) and renumber."""
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index: expected an int, got {type(index).__name__}")
        items = list(self._modules.values())
        items.insert(int(index), _check_module(module))
        _renumber(self, items)


class ModuleDict(Module):
    """An ordered mapping name -> module, registered under those names (PyTorch's ``nn.ModuleDict``).

    ``d[name]``, ``d[name] = module``, ``del d[name]``, ``len``, iteration over the names, ``in``,
    ``keys()``, ``values()``, ``items()``, ``update(mapping or pairs)``, ``pop(name)``, ``clear()``.
    Names are strings without "." that are not attributes of the class (KeyError otherwise).
    """

    def __init__(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]] | None = None) -> None:
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Any:
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, _check_module(module))

    def __delitem__(self, key: str) -> None:
        if key not in self._modules:
            raise KeyError(key)
        delattr(self, key)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._modules))

    def __contains__(self, key: object) -> bool:
        return key in self._modules

    def keys(self) -> Any:
        return self._modules.keys()

    def values(self) -> Any:
        return self._modules.values()

    def items(self) -> Any:
        return self._modules.items()

    def pop(self, key: str) -> Any:
        """Remove ``key`` and return its module (KeyError if absent)."""
        module = self[key]
        del self[key]
        return module

    def clear(self) -> None:
        for key in list(self._modules):
            del self[key]

    def update(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]]) -> None:
        """Add or replace entries from a mapping or an iterable of (name, module) pairs."""
        pairs: list[Any]
        if hasattr(modules, "keys") and hasattr(modules, "__getitem__"):
            pairs = [(k, modules[k]) for k in modules.keys()]
        else:
            try:
                pairs = [tuple(p) for p in modules]
            except TypeError:
                raise TypeError("modules: expected a mapping or an iterable of (name, module) pairs, got "
                                f"{type(modules).__name__}") from None
            for i, p in enumerate(pairs):
                if len(p) != 2:
                    raise ValueError(f"modules[{i}]: expected a (name, module) pair, got {len(p)} elements")
        for k, m in pairs:
            self[k] = m
