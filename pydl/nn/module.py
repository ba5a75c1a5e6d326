"""nn.Module: the base class of layers, with explicit forward and backward passes.

Per-call saved state (design card §2b): every call of a module outside ``pydl.no_grad()`` pushes
one record (what its backward needs, and its output's shape and dtype) on the module's own
stack; every ``backward`` pops the latest one. Records of one *outermost* call (a model call and
every module call nested inside it) live while that call's returned output does: a new forward
drops, amortised, the records whose outermost output has been garbage-collected, so calls whose
results nobody kept (metrics, forward-only loops) do not accumulate.
"""
from __future__ import annotations

import itertools
import threading
import weakref
from collections import OrderedDict, namedtuple
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import numpy as np

from .._grad_mode import _local as _grad_local
from .._typing import Array, DTypeLike
from .._validate import check_float_dtype, check_grad, no_pending_call, shape_str
from .parameter import Parameter

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])

_M = TypeVar("_M", bound="Module")
#: ``hook(module, args, output)``; a result other than None replaces the output
ForwardHook = Callable[["Module", "tuple[Any, ...]", Any], Any]

_PRUNE_MIN = 8  # a stack is scanned for dead records once it holds this many (then twice the live ones)
_GUARD_SAMPLES = 64  # elements of each input array of an outermost call compared at backward
_GUARD_WHOLE = 16384  # bytes: an input this small is compared whole (one copy costs less than sampling)

# Grad mode is read as ``_grad_local.enabled``: one attribute read (the class-level default
# answers on a thread that never entered no_grad).


class StateDictError(RuntimeError, KeyError, ValueError):
    """load_state_dict found missing, unexpected or mis-shaped keys.

    A RuntimeError as in PyTorch, and also a KeyError / ValueError so that either catches it.
    """

    def __str__(self):
        return str(self.args[0]) if self.args else ""


# ----------------------------------------------------------------- call liveness
def _grad_enabled():
    """``pydl.is_grad_enabled()``, read from the per-thread dict (see above)."""
    return _grad_local.enabled


# An outermost call is a small list (cheaper to make than an object): [0] is None while it runs,
# then a callable that returns None once the call's output is gone (a weakref to it); [1] the
# caller's positional ndarray arguments as (position, array) that no record of the call saved yet
# (None once there are none), [2] those a record saved (or a view of): they get an in-place edit
# guard (_input_guard).
def _dead(call):
    r = call[0]
    return r is not None and r() is None


def _gone():
    return None


def _kept():
    return True


class _AnyAlive:
    """Liveness of a tuple/list output: alive while any of its arrays is."""

    __slots__ = ("refs",)

    def __init__(self, refs):
        self.refs = refs

    def __call__(self):
        return True if any(r() is not None for r in self.refs) else None


def _output_ref(out):
    if isinstance(out, (tuple, list)):
        refs = tuple(weakref.ref(o) for o in out if isinstance(o, np.ndarray))
        return _AnyAlive(refs) if refs else _kept
    try:
        return weakref.ref(out)
    except TypeError:  # a float, None, ...: kept until consumed or zero_grad()
        return _kept


def _note_saved_inputs(call, saved):
    """In an outermost call, move the caller's arrays that ``saved`` holds (or a view of: a
    reshape, a slice) from ``call[1]`` (not saved yet) to ``call[2]``; ``call[1]`` becomes None
    once all are saved, so later records of the call cost one test."""
    inputs = call[1]
    for a in saved:
        if type(a) is np.ndarray:
            base = a.base
            for k, (i, x) in enumerate(inputs):
                if a is x or (base is not None and (base is x or base is x.base)):
                    call[2].append(inputs.pop(k))
                    break
    if not inputs:
        call[1] = None


def _input_guard(marked):
    """Samples of the caller's arrays a record of the outermost call saved (``marked``: pairs
    (position, array)), to detect an in-place edit between forward and backward
    (:meth:`Module._saved_for_backward` compares them).

    An array of at most ``_GUARD_WHOLE`` bytes whole (step 0), a larger one by about
    ``_GUARD_SAMPLES`` elements, evenly spaced in C order with an odd step (so power-of-two row
    lengths do not hide whole columns). Returns a tuple of (position, array, step, bytes).
    """
    guard = ()
    for i, a in marked:
        if a.size:
            if a.nbytes <= _GUARD_WHOLE:
                guard += ((i, a, 0, a.tobytes()),)  # (marked arrays are contiguous)
            else:
                step = (-(-a.size // _GUARD_SAMPLES)) | 1
                guard += ((i, a, step, a.ravel()[::step].tobytes()),)  # (ravel: a view)
    return guard


def _check_input_guard(module, guard):
    for i, a, step, sample in guard:
        if (a.ravel()[::step].tobytes() if step else a.tobytes()) != sample:
            raise RuntimeError(
                f"{type(module).__name__}.backward: input {i} of the call being backpropagated was modified in "
                "place after forward; the saved input differs, so the gradients would be wrong. Keep the input "
                "unchanged until backward, or call the module on a copy (model(x.copy())).")


class _CallState(threading.local):
    #: the outermost call running on this thread: [output ref, caller's arrays, saved caller arrays]
    call: list[Any] | None = None


_state = _CallState()


class _Hooks:
    """Bumped whenever a forward hook is added or removed (a Sequential re-plans: a module with
    hooks is never fused, so its hooks see its own output)."""

    version = 0
    ids = itertools.count()


class RemovableHandle:
    """Returned by :meth:`Module.register_forward_hook`; ``remove()`` unregisters the hook
    (also usable as a context manager)."""

    def __init__(self, hooks: dict[int, ForwardHook], key: int) -> None:
        self._hooks, self._key = hooks, key

    def remove(self) -> None:
        if self._hooks.pop(self._key, None) is not None:
            _Hooks.version += 1

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


class Module:
    """Base class of pydl layers: ``y = m(x)`` saves what backward needs, ``m.backward(grad_out)``
    fills the parameters' ``.grad`` and returns dL/dx.

    Subclasses implement ``forward(x)`` and ``backward(grad_out)``. ``backward`` fills ``.grad``
    of the module's parameters: it writes the gradient when ``.grad is None`` and adds to it
    otherwise (PyTorch accumulation). Assigning a :class:`Parameter` or a :class:`Module` to an
    attribute registers it (``named_parameters`` yields PyTorch dotted names such as
    ``"0.weight"``); ``register_buffer`` registers non-trainable state (e.g. running statistics)
    that ``state_dict`` includes.

    **Saved state, one record per call.** A module may be called several times before backward
    (a shared layer, siamese branches, a cell unrolled over time):

    - every call outside ``pydl.no_grad()`` keeps its own saved state (inputs, outputs, masks);
    - every ``backward(grad_out)`` consumes the most recent unconsumed call (last in, first
      out), checks ``grad_out`` against that call's output (shape and dtype: ValueError /
      TypeError naming ``grad_out``) and accumulates into ``.grad``; a backward with no pending
      call raises RuntimeError. So a custom ``forward`` that reuses a module pairs with a
      ``backward`` that walks its calls in reverse, and gets exact gradients;
    - calls inside ``with pydl.no_grad():`` save nothing (inference, metrics);
    - ``zero_grad()`` also drops the saved state no backward consumed (in every submodule);
    - keep the output of a call alive (or pass it to a loss, which keeps its input) until its
      backward, as a PyTorch graph lives through its output: the records of an outermost call
      (``model(x)`` and every module call nested in it) are dropped once its output has been
      garbage-collected, at a later forward of the same module. Call modules (``m(x)``), not
      ``m.forward(x)``: records of direct ``forward`` calls wait for a backward or
      ``zero_grad()``.

    **Changes between forward and backward** (docs/RELIABILITY.md). Saved arrays are not
    copied, so an in-place edit between a call and its backward would change the gradients;
    pydl makes it an error instead (PyTorch raises too):

    - an output that the layer saves for its backward (Sigmoid, Tanh, ReLU and the other
      activations, Softmax, a Linear with a fused activation, a Sequential ending in one) is
      returned **read-only**: ``out *= 0.5`` raises numpy's ``ValueError: output array is
      read-only``. Copy it to edit it (``out = out.copy()``), or compute under
      ``pydl.no_grad()`` (nothing saved, outputs writeable). Outputs nothing saves (a plain
      Linear, BatchNorm1d, Dropout, a loss) stay writeable;
    - the ndarray arguments of an outermost call (``model(x)``: the arrays the caller holds)
      that a layer of the call saved, or a view of (a Linear, BatchNorm1d or activation
      saves its input), are sampled (64 elements each, spread over the array), and
      ``backward`` raises RuntimeError if a sample changed: ``x *= 0.5``, ``x[:] = batch``,
      ``x.fill(0)``, ``x[:, j] += 1`` between ``model(x)`` and ``model.backward(g)`` are
      caught; an edit of a few elements that misses the sample is not. An input nothing saved
      (Identity, Dropout, a non-contiguous ``x`` that a Linear copied) may be edited. Arrays
      created inside a custom ``forward`` and edited after a layer saved them are not checked.

    Cost: a read-only view per output-saving call (~0.3 us) and two samples per saved caller
    input (~0.4 us each), a few microseconds of Python per training step (docs/RELIABILITY.md
    "Changes between forward and backward" has the measured figures).

    A layer implements this with :meth:`_save_for_backward` at the end of ``forward`` and
    :meth:`_saved_for_backward` at the start of ``backward``. A module whose output is its input
    returns a fresh view of it from an outermost call with grad enabled (a distinct object to
    track), so ``m(x) is x`` holds only inside ``pydl.no_grad()``.
    """

    # set in __init__ through __dict__ (``__setattr__`` routes Parameters and Modules)
    _parameters: OrderedDict[str, Parameter | None]
    _buffers: OrderedDict[str, Array | None]
    _modules: OrderedDict[str, Module | None]
    _forward_hooks: dict[int, ForwardHook]
    _pending: list[Any]
    _prune_at: int
    training: bool

    def __init__(self) -> None:
        d = self.__dict__
        d["_parameters"] = OrderedDict()
        d["_buffers"] = OrderedDict()
        d["_modules"] = OrderedDict()
        d["_forward_hooks"] = {}
        d["_pending"] = []
        d["_prune_at"] = _PRUNE_MIN
        d["training"] = True

    # ----------------------------------------------------------------- registration
    def __setattr__(self, name: str, value: Any) -> None:
        d = self.__dict__
        if isinstance(value, (Parameter, Module)):
            if "_parameters" not in d:
                raise AttributeError(f"cannot assign {type(value).__name__} '{name}' before Module.__init__() call")
            target = d["_parameters"] if isinstance(value, Parameter) else d["_modules"]
            for reg in (d["_parameters"], d["_buffers"], d["_modules"]):
                if reg is not target:
                    reg.pop(name, None)
            target[name] = value  # a re-assigned name keeps its place (dict order)
        elif "_parameters" in d:
            if name in d["_parameters"]:
                if value is not None:
                    raise TypeError(f"cannot assign {type(value).__name__} as parameter '{name}' "
                                    "(nn.Parameter or None expected)")
                d["_parameters"][name] = None
            elif name in d["_buffers"]:
                if value is not None and not isinstance(value, np.ndarray):
                    raise TypeError(f"cannot assign {type(value).__name__} as buffer '{name}' "
                                    "(numpy.ndarray or None expected)")
                d["_buffers"][name] = value
            elif name in d["_modules"]:
                if value is not None:
                    raise TypeError(f"cannot assign {type(value).__name__} as child module '{name}' "
                                    "(nn.Module or None expected)")
                d["_modules"][name] = None
        d[name] = value

    def __delattr__(self, name: str) -> None:
        d = self.__dict__
        for reg in ("_parameters", "_buffers", "_modules"):
            if name in d.get(reg, ()):
                del d[reg][name]
        object.__delattr__(self, name)

    def _register(self, registry, name, value, cls, what, expected):
        if value is not None and not isinstance(value, cls):
            raise TypeError(f"{what}: expected {expected} or None, got {type(value).__name__}")
        _check_name(name, self, registry)
        self.__dict__[registry][name] = value
        self.__dict__[name] = value

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register ``param`` (a Parameter or None) under ``name``."""
        self._register("_parameters", name, param, Parameter, "param", "an nn.Parameter")

    def register_buffer(self, name: str, array: Array | None) -> None:
        """Register a non-trainable ndarray (or None) saved in ``state_dict`` under ``name``."""
        self._register("_buffers", name, array, np.ndarray, "array", "a numpy.ndarray")

    def add_module(self, name: str, module: Module | None) -> None:
        """Register ``module`` (a Module or None) as a child under ``name``."""
        self._register("_modules", name, module, Module, "module", "an nn.Module")

    # ----------------------------------------------------------------- passes
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run ``forward`` (and the forward hooks); see the class docstring for saved state."""
        st = _state
        if st.call is not None or not _grad_local.enabled:
            out = self.forward(*args, **kwargs)  # nested in an outermost call, or saving nothing
            return self._run_forward_hooks(args, out) if self._forward_hooks else out
        inputs: list[Any] | None = None
        for i, a in enumerate(args):
            if type(a) is np.ndarray:
                if inputs is None:
                    inputs = []
                inputs.append((i, a))
        call: list[Any] = [None, inputs, []]
        st.call = call
        try:
            out = self.forward(*args, **kwargs)
            if self._forward_hooks:
                out = self._run_forward_hooks(args, out)
        except BaseException:
            st.call = None
            self._drop_call(call)
            raise
        st.call = None
        if call[2]:  # a record saved a caller's array: guard it, in this call's record
            stack = self._pending
            if stack and stack[-1][0] is call:
                guard = _input_guard(call[2])
                if guard:
                    stack[-1] = stack[-1] + (guard,)
        call[1] = call[2] = None
        if isinstance(out, np.ndarray):
            for a in args:
                if a is out:  # the caller holds it already: track a distinct object
                    out = out.view()
                    break
            call[0] = weakref.ref(out)
        else:
            call[0] = _output_ref(out)
        return out

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__}.forward is not implemented")

    def backward(self, *args: Any, **kwargs: Any) -> Any:
        """dL/dinput from ``grad_out`` = dL/doutput; fills the parameters' ``.grad``."""
        raise NotImplementedError(f"{type(self).__name__}.backward is not implemented")

    def _save_for_backward(self, out, *saved):
        """Push this call's record (``saved`` arrays/values and ``out``'s shape and dtype) and
        return ``out``; inside ``pydl.no_grad()`` push nothing.

        When ``out`` itself is among ``saved``, returns a read-only view of it instead: the
        record does not keep alive the object the caller received (liveness is tracked on it),
        and an in-place edit of the output before backward raises instead of silently changing
        the gradients computed from the saved output.

        Parameters
        ----------
        out : ndarray
            The forward's output.
        *saved
            What backward needs, returned by :meth:`_saved_for_backward`.
        """
        if not _grad_local.enabled:
            return out
        for a in saved:
            if a is out:
                out = out.view()
                out.flags.writeable = False
                break
        call = _state.call
        if call is not None and call[1] is not None:
            _note_saved_inputs(call, saved)
        stack = self._pending
        if len(stack) >= self._prune_at:
            self._prune_pending()
        stack.append((call, out.shape, out.dtype, saved))
        return out

    def _saved_for_backward(self, grad_out):
        """Pop the latest pending call's record after checking ``grad_out`` against its output;
        returns the ``saved`` tuple given to :meth:`_save_for_backward`.

        Raises
        ------
        RuntimeError
            No pending call (backward before forward, after ``pydl.no_grad()`` calls only, after
            ``zero_grad()``, or more backwards than calls).
            Also: an input array of that (outermost) call was modified in place since forward
            (the record is kept).
        TypeError, ValueError
            ``grad_out`` is not an ndarray of that output's dtype / shape (the record is kept).
        """
        stack = self._pending
        if not stack:
            raise no_pending_call(self)
        rec = stack[-1]
        if type(grad_out) is not np.ndarray or grad_out.shape != rec[1] or grad_out.dtype is not rec[2]:
            check_grad(grad_out, rec[1], rec[2])
        if len(rec) > 4:
            _check_input_guard(self, rec[4])
        stack.pop()
        return rec[3]

    def _prune_pending(self):
        """Drop the records whose outermost call's output is gone; scan from the newest so that
        a freed record that held an older call's output frees that call's records too."""
        stack = self._pending
        for i in range(len(stack) - 1, -1, -1):
            call = stack[i][0]
            if call is not None and _dead(call):
                stack[i] = None
        stack[:] = [r for r in stack if r is not None]
        self.__dict__["_prune_at"] = max(_PRUNE_MIN, 2 * len(stack))

    def _drop_call(self, call):
        """A failed outermost call: its records (on top of the stacks of this module's subtree)
        are removed, and marked dead elsewhere."""
        call[0] = _gone
        for m in self.modules():
            stack = m._pending
            while stack and stack[-1][0] is call:
                stack.pop()

    # ----------------------------------------------------------------- hooks
    def register_forward_hook(self, hook: ForwardHook) -> RemovableHandle:
        """Call ``hook(module, args, output)`` after every forward of this module (PyTorch).

        A hook returning something other than None replaces the output. Returns a handle whose
        ``remove()`` unregisters the hook. A Linear or activation with hooks is not fused by a
        Sequential, so its hooks see its own output. ``pydl.nn.summary`` uses hooks to collect
        the output shapes.
        """
        if not callable(hook):
            raise TypeError(f"hook: expected a callable, got {type(hook).__name__}")
        key = next(_Hooks.ids)
        self._forward_hooks[key] = hook
        _Hooks.version += 1
        return RemovableHandle(self._forward_hooks, key)

    def _run_forward_hooks(self, args, out):
        for hook in list(self._forward_hooks.values()):
            res = hook(self, args, out)
            if res is not None:
                out = res
        return out

    # ----------------------------------------------------------------- traversal
    def children(self) -> Iterator[Module]:
        for m in self._modules.values():
            if m is not None:
                yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name, m in self._modules.items():
            if m is not None:
                yield name, m

    def named_modules(self, memo: set[int] | None = None, prefix: str = "",
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Module]]:
        """Yield (dotted name, module) for this module (name ``prefix``) and all descendants.

        A module reachable under several names is yielded once, under its first name, unless
        ``remove_duplicate`` is False (PyTorch).
        """
        if remove_duplicate:
            if memo is None:
                memo = set()
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is not None:
                yield from m.named_modules(memo, prefix + "." + name if prefix else name, remove_duplicate)

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        """Yield (dotted name, Parameter), each Parameter once, in registration order."""
        seen = set()
        mods = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for mp, m in mods:
            for name, p in m._parameters.items():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                yield (mp + "." + name if mp else name), p

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Array]]:
        mods = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for mp, m in mods:
            for name, b in m._buffers.items():
                if b is not None:
                    yield (mp + "." + name if mp else name), b

    def buffers(self, recurse: bool = True) -> Iterator[Array]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    # ----------------------------------------------------------------- modes and grads
    def train(self: _M, mode: bool = True) -> _M:
        """Set training mode (dropout, batch norm, noise active) on this module and its children."""
        if not isinstance(mode, bool):
            raise TypeError(f"mode: expected a bool, got {type(mode).__name__}")
        for m in self.modules():
            m.__dict__["training"] = mode
        return self

    def eval(self: _M) -> _M:
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of all parameters: to None (default, as PyTorch) or to zeros;
        also drop the saved state of calls no backward consumed (this module and submodules)."""
        for m in self.modules():
            m._pending.clear()
            m.__dict__["_prune_at"] = _PRUNE_MIN
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.fill(0)

    # ----------------------------------------------------------------- dtype
    def to(self: _M, dtype: DTypeLike) -> _M:
        """Cast every parameter and floating-point buffer to ``dtype`` (float32 or float64), in
        place, as PyTorch's ``Module.to(dtype)``; returns self.

        Parameter objects are kept (an optimizer built before still updates them); only their
        ``data`` (and ``grad``, cast along) change. A module's ``dtype`` attribute follows.
        Saved state of pending calls is dropped (it has the old dtype).
        """
        dtype = check_float_dtype(dtype)
        changed = False
        for m in self.modules():
            for p in m._parameters.values():
                if p is not None and p.data.dtype != dtype:
                    p.data = p.data.astype(dtype)
                    if p._grad is not None:
                        p._grad = p._grad.astype(dtype)
                    changed = True
            for name, b in m._buffers.items():
                if b is not None and b.dtype.kind == "f" and b.dtype != dtype:
                    m._buffers[name] = m.__dict__[name] = b.astype(dtype)
                    changed = True
            if isinstance(m.__dict__.get("dtype"), np.dtype) and m.__dict__["dtype"] != dtype:
                m.__dict__["dtype"] = dtype
                changed = True
        if changed:
            for m in self.modules():
                m._pending.clear()
        return self

    def float(self: _M) -> _M:
        """``to(np.float32)``."""
        return self.to(np.float32)

    def double(self: _M) -> _M:
        """``to(np.float64)``."""
        return self.to(np.float64)

    # ----------------------------------------------------------------- state
    def __getstate__(self) -> dict[str, Any]:
        # pending calls are not copied or pickled (they hold weak references), as a graph is not
        state = self.__dict__.copy()
        state["_pending"] = []
        state["_prune_at"] = _PRUNE_MIN
        return state

    def _state_entries(self):
        """(dotted name, array) of every parameter and buffer; shared ones under each name."""
        for mp, m in self.named_modules(remove_duplicate=False):
            pre = mp + "." if mp else ""
            for name, p in m._parameters.items():
                if p is not None:
                    yield pre + name, p.data
            for name, b in m._buffers.items():
                if b is not None:
                    yield pre + name, b

    def state_dict(self) -> OrderedDict[str, Array]:
        """OrderedDict name -> ndarray copy of every parameter and buffer (PyTorch dotted names)."""
        return OrderedDict((name, np.array(a, copy=True)) for name, a in self._state_entries())

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy arrays from ``state_dict`` into the parameters and buffers, in place.

        With ``strict`` (default) the keys must match ``state_dict()``'s exactly; any missing,
        unexpected or mis-shaped key raises StateDictError (a RuntimeError, also a KeyError and
        ValueError) naming them, and nothing is modified. Mis-shaped keys always raise. Returns
        ``IncompatibleKeys(missing_keys, unexpected_keys)``.
        """
        if not hasattr(state_dict, "keys") or not hasattr(state_dict, "__getitem__"):
            raise TypeError(f"state_dict: expected a mapping, got {type(state_dict).__name__}")
        entries = list(self._state_entries())
        own = {name for name, _ in entries}
        missing = [name for name, _ in entries if name not in state_dict]
        unexpected = [k for k in state_dict.keys() if k not in own]
        problems, values = [], []
        for name, dst in entries:
            if name not in state_dict:
                continue
            src = state_dict[name]
            if isinstance(src, Parameter):
                src = src.data
            src = np.asarray(src)
            if src.shape != dst.shape:
                problems.append(f"size mismatch for {name}: expected shape {shape_str(dst.shape)}, "
                                f"got {shape_str(src.shape)}")
            elif not (np.issubdtype(src.dtype, np.number) or src.dtype == np.bool_) or src.dtype.kind == "c":
                problems.append(f"dtype of {name}: expected a real numeric array, got {src.dtype}")
            else:
                values.append((dst, src))
        if strict:
            if missing:
                problems.insert(0, "missing keys: " + ", ".join(repr(k) for k in missing))
            if unexpected:
                problems.insert(len(missing) > 0, "unexpected keys: " + ", ".join(repr(k) for k in unexpected))
        if problems:
            raise StateDictError(f"error(s) in loading state_dict for {type(self).__name__}: " + "; ".join(problems))
        for dst, src in values:
            np.copyto(dst, src, casting="unsafe")
        return IncompatibleKeys(missing, unexpected)

    # ----------------------------------------------------------------- repr
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = []
        extra = self.extra_repr()
        if extra:
            lines.extend(extra.split("\n"))
        for name, m in self._modules.items():
            sub = repr(m).replace("\n", "\n  ")
            lines.append(f"({name}): {sub}")
        if not lines:
            return f"{type(self).__name__}()"
        if len(lines) == 1 and not self._modules:
            return f"{type(self).__name__}({lines[0]})"
        return type(self).__name__ + "(\n  " + "\n  ".join(lines) + "\n)"


def _check_name(name, module, registry):
    """A registrable name: a non-empty str without ".", not a class attribute, and not a plain
    (non-None) instance attribute; re-registering within the same registry is allowed."""
    if not isinstance(name, str):
        raise TypeError(f"name: expected a str, got {type(name).__name__}")
    if name == "" or "." in name:
        raise KeyError(f"name: must be non-empty and contain no '.', got {name!r}")
    d = module.__dict__
    if hasattr(type(module), name) or (d.get(name) is not None and name not in d[registry]):
        raise KeyError(f"name: attribute {name!r} already exists")

