"""Gradient clipping of ``Trainer(clipnorm=, clipvalue=, global_clipnorm=)``, Keras 3 semantics
(``keras.optimizers.Optimizer``: at most one of the three; applied to the gradients of the
optimizer's parameters after the regularizers' terms are added, before the optimizer step, so
before an optimizer's own weight decay, as Keras and as PyTorch's clip-then-step):

- ``clipnorm=c``: each parameter's gradient separately, g <- g * c / max(||g||_2, c)
  (Keras clips per variable; this is not PyTorch's clip_grad_norm_);
- ``global_clipnorm=c``: all gradients together, g <- g * c * min(1 / N, 1 / c) with N the
  2-norm of all gradients as one vector (no 1e-6, unlike PyTorch; a NaN or infinite N gives NaN
  gradients, as Keras, which ``callbacks.TerminateOnNaN`` can catch);
- ``clipvalue=v``: every element clamped to [-v, v].

Norms are accumulated in float64, the scale applied in the gradient's dtype, in place. pydl
refuses values <= 0 (Keras ignores them silently): None turns clipping off.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np

from ..nn.parameter import Parameter
from ..nn.utils.clip_grad import _scale_grad, _vector_norm, clip_grad_value_


def _positive(value: object, name: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a float > 0 or None, got {type(value).__name__}")
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name}: expected a finite float > 0 or None (None: no clipping), got {value}")
    return value


class GradientClipper:
    """One of Keras's three clippings, applied by ``clipper(params)`` (see the module docstring)."""

    def __init__(self, clipnorm: float | None = None, clipvalue: float | None = None,
                 global_clipnorm: float | None = None) -> None:
        given = {k: v for k, v in (("clipnorm", clipnorm), ("clipvalue", clipvalue),
                                   ("global_clipnorm", global_clipnorm)) if v is not None}
        if len(given) > 1:
            raise ValueError("Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set (Keras), got "
                             + ", ".join(f"{k}={v}" for k, v in given.items()))
        ((self.kind, value),) = given.items()
        self.value = _positive(value, self.kind)

    def __call__(self, params: Sequence[Parameter]) -> None:
        c = self.value
        if self.kind == "clipvalue":
            clip_grad_value_(params, c)
            return
        grads = [p for p in params if p.grad is not None]
        if self.kind == "clipnorm":
            for p in grads:
                n = _vector_norm(p.grad, 2.0)
                if not n <= c:                         # (a NaN norm makes the gradient NaN, as Keras)
                    _scale_grad(p, c / n)
            return
        total = _vector_norm([_vector_norm(p.grad, 2.0) for p in grads], 2.0)
        if not total <= c:
            scale = c / total + (total - total)        # NaN for a non-finite total, as Keras
            for p in grads:
                _scale_grad(p, scale)

    @classmethod
    def create(cls, clipnorm: float | None = None, clipvalue: float | None = None,
               global_clipnorm: float | None = None) -> GradientClipper | None:
        """A clipper, or None when no clipping is asked for."""
        if clipnorm is None and clipvalue is None and global_clipnorm is None:
            return None
        return cls(clipnorm, clipvalue, global_clipnorm)
