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
import numpy as np


def default_params(model):
    """The parameters a penalty (or weight noise) applies to by default: weights with ndim >= 2."""
    return [p for _, p in model.named_parameters() if p.data.ndim >= 2]


def resolve_params(model, params, argname="params"):
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

    def __init__(self, coef, params=None):
        if isinstance(coef, bool) or not isinstance(coef, (int, float, np.floating, np.integer)):
            raise TypeError(f"coef: expected a float, got {type(coef).__name__}")
        if not np.isfinite(coef) or coef < 0:
            raise ValueError(f"coef: expected a finite value >= 0, got {coef}")
        self.coef = float(coef)
        self.params = params
        self._bound = None

    def bind(self, model):
        """Resolve the parameters to penalise (called by the Trainer at the start of fit)."""
        self._bound = resolve_params(model, self.params)
        return self

    def _targets(self):
        if self._bound is None:
            raise RuntimeError(f"{type(self).__name__}: call bind(model) first (the Trainer does)")
        return self._bound

    def penalty(self):
        """Omega at the current parameter values (a Python float)."""
        return self.coef * sum(self._norm(p.data) for p in self._targets())

    def add_grad(self):
        """Add d Omega / d p to every bound parameter's ``.grad`` (written when it is None)."""
        if self.coef == 0.0:
            return
        for p in self._targets():
            g = self._grad(p.data)
            if p.grad is None:
                p.grad = g
            else:
                p.grad += g

    def __repr__(self):
        return f"{type(self).__name__}(coef={self.coef})"


class L2(Regularizer):
    """coef * sum(w^2) over the chosen parameters (default: the weights); gradient 2 * coef * w."""

    @staticmethod
    def _norm(w):
        w = w.ravel()
        return float(np.dot(w, w))

    def _grad(self, w):
        return (2.0 * self.coef) * w


class L1(Regularizer):
    """coef * sum(|w|) over the chosen parameters (default: the weights); gradient coef * sign(w)."""

    @staticmethod
    def _norm(w):
        return float(np.abs(w).sum())

    def _grad(self, w):
        return self.coef * np.sign(w)
