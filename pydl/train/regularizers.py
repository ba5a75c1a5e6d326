"""Parameter norm penalties for the Trainer: ``L1(coef)``, ``L2(coef)``.

The penalty is added to the training objective and its gradient to ``Parameter.grad`` after the
backward pass and before ``optimizer.step()`` (Goodfellow et al., Deep Learning, 7.1):

    L2:  Omega(w) = coef * sum(w^2)      d Omega / d w = 2 * coef * w
    L1:  Omega(w) = coef * sum(|w|)      d Omega / d w = coef * sign(w)   (0 at w = 0)

(the Keras convention: no factor 1/2). By default a penalty applies to the weights only, that is
to the parameters with two or more dimensions (Linear weights), not to biases nor to BatchNorm's
scale and shift; pass ``params=`` (Parameters or their dotted names) to choose.

Note: ``L2(coef)`` with plain SGD equals ``optim.SGD(weight_decay=2*coef)``; with Adam it is
*not* AdamW's decoupled decay (Loshchilov & Hutter 2019).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Union

import numpy as np

from .._typing import Array
from ..nn.parameter import Parameter

#: parameters to penalise: Parameters or their dotted names, or None (the weights)
ParamSpec = Union[Sequence[Union[Parameter, str]], None]


def default_params(model: Any) -> list[Parameter]:
    """The parameters a penalty (or weight noise) applies to by default: weights with ndim >= 2."""
    return [p for _, p in model.named_parameters() if p.data.ndim >= 2]


def resolve_params(model: Any, params: ParamSpec, argname: str = "params") -> list[Parameter]:
    """Turn ``params`` (None, Parameters, or dotted names) into a list of the model's Parameters."""
    if params is None:
        return default_params(model)
    named = dict(model.named_parameters())
    by_id = {id(p) for p in named.values()}
    out = []
    for p in params:
        if isinstance(p, str):
            if p not in named:
                raise ValueError(f"{argname}: the model has no parameter named {p!r}; "
                                 f"its parameters are {sorted(named)}")
            out.append(named[p])
        elif id(p) in by_id:
            out.append(p)
        else:
            raise ValueError(f"{argname}: {p!r} is not a parameter of the model")
    return out


class Regularizer:
    """Base class: a penalty Omega(params) with coefficient ``coef``, bound to a model by the Trainer."""

    def __init__(self, coef: float, params: ParamSpec = None) -> None:
        if isinstance(coef, bool) or not isinstance(coef, (int, float, np.floating, np.integer)):
            raise TypeError(f"coef: expected a float, got {type(coef).__name__}")
        if not np.isfinite(coef) or coef < 0:
            raise ValueError(f"coef: expected a finite value >= 0, got {coef}")
        self.coef = float(coef)
        self.params = params
        self._bound: list[Parameter] | None = None

    def bind(self, model: Any) -> Regularizer:
        """Resolve the parameters to penalise (called by the Trainer at the start of fit)."""
        self._bound = resolve_params(model, self.params)
        return self

    def _targets(self) -> list[Parameter]:
        if self._bound is None:
            raise RuntimeError(f"{type(self).__name__}: call bind(model) first (the Trainer does)")
        return self._bound

    def penalty(self) -> float:
        """Omega at the current parameter values (a Python float)."""
        return self.coef * sum(self._norm(p.data) for p in self._targets())

    def add_grad(self) -> None:
        """Add d Omega / d p to every bound parameter's ``.grad`` (written when it is None)."""
        if self.coef == 0.0:
            return
        for p in self._targets():
            g = self._grad(p.data)
            if p.grad is None:
                p.grad = g
            else:
                p.grad += g

    @staticmethod
    def _norm(w: Array) -> float:
        """Omega of one array, without the coefficient."""
        raise NotImplementedError

    def _grad(self, w: Array) -> Array:
        """d Omega / d w, with the coefficient."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(coef={self.coef})"


class L2(Regularizer):
    """coef * sum(w^2) over the chosen parameters (default: the weights); gradient 2 * coef * w."""

    @staticmethod
    def _norm(w: Array) -> float:
        w = w.ravel()
        return float(np.dot(w, w))

    def _grad(self, w: Array) -> Array:
        return (2.0 * self.coef) * w


class L1(Regularizer):
    """coef * sum(|w|) over the chosen parameters (default: the weights); gradient coef * sign(w)."""

    @staticmethod
    def _norm(w: Array) -> float:
        return float(np.abs(w).sum())

    def _grad(self, w: Array) -> Array:
        return self.coef * np.sign(w)
