"""Gradient clipping with PyTorch's semantics (``torch.nn.utils.clip_grad``).

With g_1, ..., g_k the gradients of the parameters that have one and p the norm type:

    total = || (||g_1||_p, ..., ||g_k||_p) ||_p        (the p-norm of all gradients as one vector)
    coef  = min(max_norm / (total + 1e-6), 1)           (the 1e-6 keeps the division finite)
    g_i  <- coef * g_i                                   (always multiplied, as PyTorch)

p = inf takes max |g|; a non-finite total gives a NaN (or 0) coefficient unless
``error_if_nonfinite``. ``clip_grad_value_`` clamps every element to [-clip_value, clip_value].
The norms are accumulated in float64 (PyTorch's CPU accumulator type for float32 too); the
coefficient is applied in each gradient's own dtype, in place. ``foreach`` is accepted for
PyTorch compatibility and does not change the result (numpy has one implementation).
"""
from __future__ import annotations

import math
import numbers
import types
import warnings
from collections.abc import Iterable
from typing import Any, Union

import numpy as np

from ..._typing import Array
from ..parameter import Parameter

__all__ = ["clip_grad_norm_", "clip_grad_value_", "get_total_norm", "clip_grads_with_norm_"]

#: one Parameter or an iterable of them (a generator is consumed once)
Parameters = Union[Parameter, Iterable[Parameter]]


def _param_list(parameters: Any, name: str = "parameters") -> list[Parameter]:
    """``parameters`` (one Parameter or an iterable of them) as a list; a TypeError names the
    first item without a ``grad``."""
    if hasattr(parameters, "grad"):
        return [parameters]
    if isinstance(parameters, np.ndarray):
        raise TypeError(f"{name}: expected a Parameter or an iterable of Parameters, got a numpy.ndarray "
                        "(an array has no .grad: pass model.parameters())")
    try:
        items = list(parameters)
    except TypeError:
        raise TypeError(f"{name}: expected a Parameter or an iterable of Parameters, "
                        f"got {type(parameters).__name__}") from None
    for i, p in enumerate(items):
        if not hasattr(p, "grad"):
            hint = (" (named_parameters() yields (name, parameter) pairs: pass model.parameters())"
                    if isinstance(p, tuple) else "")
            raise TypeError(f"{name}[{i}]: expected a pydl.nn.Parameter, got {type(p).__name__}{hint}")
    return items


def _real(value: Any, name: str, low: float = 0.0) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")
    value = float(value)
    if math.isnan(value) or value < low:
        raise ValueError(f"{name}: expected a number >= {low}, got {value}")
    return value


def _norm_type(norm_type: Any) -> float:
    if isinstance(norm_type, (bool, np.bool_)) or not isinstance(norm_type, (numbers.Real, str)):
        raise TypeError(f"norm_type: expected a float or 'inf', got {type(norm_type).__name__}")
    try:
        p = float(norm_type)
    except ValueError:
        raise ValueError(f"norm_type: expected a float or 'inf', got {norm_type!r}") from None
    if math.isnan(p):
        raise ValueError("norm_type: expected a float or 'inf', got nan")
    return p


def _vector_norm(values: Any, p: float) -> float:
    """The p-norm of ``values`` (any shape) seen as one vector, accumulated in float64
    (p = 0 counts the non-zeros, p = +-inf is max / min |value|, as torch.linalg.vector_norm)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        return 0.0
    if p == 2.0:
        return math.sqrt(float(np.dot(v, v)))
    return float(np.linalg.norm(v, ord=p))


def get_total_norm(tensors: Array | Iterable[Array], norm_type: float | str = 2.0, error_if_nonfinite: bool = False,
                   foreach: bool | None = None) -> float:
    """The p-norm of the arrays ``tensors`` taken together, as if concatenated into one vector.

    Parameters
    ----------
    tensors : ndarray or iterable of ndarray
        Typically the gradients ``[p.grad for p in params if p.grad is not None]``.
    norm_type : float or "inf", default 2.0
    error_if_nonfinite : bool, default False
        Raise a RuntimeError when the total norm is NaN or infinite.
    foreach : bool or None
        Accepted for PyTorch compatibility; no effect.

    Returns
    -------
    float
        The total norm (0.0 for no arrays).
    """
    p = _norm_type(norm_type)
    arrays = [tensors] if isinstance(tensors, np.ndarray) else list(tensors)
    for i, a in enumerate(arrays):
        if not isinstance(a, np.ndarray):
            raise TypeError(f"tensors[{i}]: expected a numpy.ndarray, got {type(a).__name__}")
    if not arrays:
        return 0.0
    total = _vector_norm([_vector_norm(a, p) for a in arrays], p)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"The total norm of order {p} for gradients from `parameters` is non-finite, so it "
                           "cannot be clipped. To disable this error and scale the gradients by the non-finite "
                           "norm anyway, set `error_if_nonfinite=False`")
    return total


def _scale_grad(param: Parameter, factor: float) -> None:
    """param.grad *= factor in place (in the gradient's dtype; inf * 0 gives NaN quietly, as torch)."""
    g = param.grad
    if g is None:
        return
    with np.errstate(invalid="ignore"):
        if g.flags.writeable:
            np.multiply(g, g.dtype.type(factor), out=g)
        else:
            param.grad = g * g.dtype.type(factor)


def clip_grads_with_norm_(parameters: Parameters, max_norm: float, total_norm: float,
                          foreach: bool | None = None) -> None:
    """Scale the gradients of ``parameters`` in place by min(max_norm / (total_norm + 1e-6), 1).

    Parameters
    ----------
    parameters : Parameter or iterable of Parameter
    max_norm : float >= 0
    total_norm : float
        As returned by :func:`get_total_norm`.
    foreach : bool or None
        Accepted for PyTorch compatibility; no effect.
    """
    params = [p for p in _param_list(parameters) if p.grad is not None]
    max_norm = _real(max_norm, "max_norm")
    if isinstance(total_norm, (bool, np.bool_)) or not isinstance(total_norm, numbers.Real):
        raise TypeError(f"total_norm: expected a real number, got {type(total_norm).__name__}")
    coef = max_norm / (float(total_norm) + 1e-6)
    if coef > 1.0:         # (NaN stays NaN: clamp(max=1) as torch)
        coef = 1.0
    for p in params:
        _scale_grad(p, coef)


def clip_grad_norm_(parameters: Parameters, max_norm: float, norm_type: float | str = 2.0,
                    error_if_nonfinite: bool = False, foreach: bool | None = None) -> float:
    """Clip the gradient norm of ``parameters`` in place (``torch.nn.utils.clip_grad_norm_``).

    The norm is that of all gradients taken together (see the module docstring); when it exceeds
    ``max_norm`` every gradient is scaled by max_norm / (total + 1e-6).

    Parameters
    ----------
    parameters : Parameter or iterable of Parameter
        Parameters whose ``grad`` is None are skipped.
    max_norm : float >= 0
    norm_type : float or "inf", default 2.0
    error_if_nonfinite : bool, default False
        Raise a RuntimeError (and leave the gradients alone) when the total norm is NaN or infinite.
    foreach : bool or None
        Accepted for PyTorch compatibility; no effect.

    Returns
    -------
    float
        The total norm of the gradients before clipping.
    """
    is_generator = isinstance(parameters, types.GeneratorType)
    params = _param_list(parameters)
    if is_generator and not params:
        warnings.warn("`parameters` is an empty generator, no gradient clipping will occur.", stacklevel=2)
    max_norm = _real(max_norm, "max_norm")
    total = get_total_norm([p.grad for p in params if p.grad is not None], norm_type, error_if_nonfinite)
    clip_grads_with_norm_(params, max_norm, total)
    return total


def clip_grad_value_(parameters: Parameters, clip_value: float, foreach: bool | None = None) -> None:
    """Clamp every gradient element of ``parameters`` to [-clip_value, clip_value], in place
    (``torch.nn.utils.clip_grad_value_``; NaN stays NaN).

    Parameters
    ----------
    parameters : Parameter or iterable of Parameter
    clip_value : float >= 0
    foreach : bool or None
        Accepted for PyTorch compatibility; no effect.
    """
    v = _real(clip_value, "clip_value")
    for p in _param_list(parameters):
        g = p.grad
        if g is None:
            continue
        lo, hi = g.dtype.type(-v), g.dtype.type(v)
        if g.flags.writeable:
            np.clip(g, lo, hi, out=g)
        else:
            p.grad = np.clip(g, lo, hi)
