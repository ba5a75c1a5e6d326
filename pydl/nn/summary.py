"""pydl.nn.summary: a Keras-style table of a model's layers, output shapes and parameter counts."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .._grad_mode import no_grad
from .._typing import DTypeLike
from .._validate import check_float_dtype, check_int
from .module import Module


def summary(model: Module, input_shape: int | Sequence[int], dtype: DTypeLike | None = None, *,
            print_fn: Callable[[str], object] = print) -> None:
    """Print a table of ``model``'s layers as Keras's ``model.summary()``.

    One row per call of a leaf module (or of a module owning parameters directly), in call
    order: its dotted name (the model itself: its lowercased type) and type, its output shape
    with the batch axis shown as None, and its parameter count (parameters and floating-point
    buffers, each counted at its first row only, so a reused module shows 0 after its first
    call). Then the totals: trainable parameters, non-trainable ones (floating-point buffers
    such as BatchNorm's running statistics) and both.

    The model runs once on a zero batch of 2 samples, in eval mode (restored afterwards, so
    running statistics are not updated) and inside ``pydl.no_grad()``; output shapes are
    collected with forward hooks (``Module.register_forward_hook``), removed afterwards.

    Parameters
    ----------
    model : Module
    input_shape : int or tuple of int
        The shape of one sample, without the batch axis, e.g. ``(64,)``.
    dtype : float32 or float64, optional
        The input's dtype; default the dtype of the model's first parameter (float32 if none).
    print_fn : callable, keyword-only
        Called with the table (one string); default ``print``.
    """
    if not isinstance(model, Module):
        raise TypeError(f"model: expected an nn.Module, got {type(model).__name__}")
    if isinstance(input_shape, (int, np.integer)) and not isinstance(input_shape, bool):
        input_shape = (input_shape,)
    if not isinstance(input_shape, (tuple, list)):
        raise TypeError(f"input_shape: expected a tuple of ints, got {type(input_shape).__name__}")
    input_shape = tuple(check_int(s, f"input_shape[{i}]") for i, s in enumerate(input_shape))
    if dtype is None:
        dtype = next((p.dtype for p in model.parameters()), np.float32)
    dtype = check_float_dtype(dtype)

    names = {id(m): name for name, m in model.named_modules()}
    calls = []
    def record(module, args, out):
        calls.append((module, out))

    handles = [m.register_forward_hook(record) for m in model.modules()]
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        with no_grad():
            model(np.zeros((2,) + input_shape, dtype))
    finally:
        for h in handles:
            h.remove()
        for m, mode in modes:
            m.__dict__["training"] = mode

    rows, counted = [], set()
    for m, out in calls:
        if next(m.children(), None) is not None and not m._parameters:
            continue  # a container: its children have their own rows
        own = 0
        if id(m) not in counted:
            counted.add(id(m))
            own = _count(m.parameters(recurse=False)) + _count(_float_buffers(m, recurse=False))
        name = names.get(id(m)) or type(m).__name__.lower()  # the model itself: Keras-style "linear (Linear)"
        rows.append((f"{name} ({type(m).__name__})", _shape(out), f"{own:,}"))
    trainable = _count(model.parameters())
    frozen = _count(_float_buffers(model))
    print_fn(_table(f'Model: "{type(model).__name__}"', rows, [
        f"Total params: {trainable + frozen:,}", f"Trainable params: {trainable:,}",
        f"Non-trainable params: {frozen:,}"]))


def _count(arrays):
    return sum(int(a.size) for a in arrays)


def _float_buffers(module, recurse=True):
    return [b for b in module.buffers(recurse=recurse) if b.dtype.kind == "f"]


def _shape(out):
    """(None, d1, ...) for a batch-first array of batch 2; a tuple's shapes listed."""
    if isinstance(out, (tuple, list)):
        return "[" + ", ".join(_shape(o) for o in out) + "]"
    shape = getattr(out, "shape", None)
    if shape is None:
        return type(out).__name__
    dims = ["None" if i == 0 and s == 2 else str(s) for i, s in enumerate(shape)]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def _table(title, rows, totals):
    header = ("Layer (type)", "Output Shape", "Param #")
    widths = [max(len(r[i]) for r in rows + [header]) + 4 for i in range(3)]
    widths[2] -= 4

    def line(r):
        return r[0].ljust(widths[0]) + r[1].ljust(widths[1]) + r[2].rjust(widths[2])

    rule = sum(widths)
    out = [title, "=" * rule, line(header), "=" * rule]
    out += [line(r) for r in rows]
    out += ["=" * rule] + totals + ["=" * rule]
    return "\n".join(out)
