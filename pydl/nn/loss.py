"""Losses: ``loss = loss_fn(pred, target)`` returns a Python float, ``loss_fn.backward()`` dL/dpred.

PyTorch semantics (reduction "mean", "sum" or "none"). Cross-entropy runs in one fused C++ call
that also writes the gradient; the others are a few numpy expressions.

``reduction="none"`` returns the unreduced losses as an ndarray (PyTorch): one per element of
the input for MSELoss, L1Loss and BCEWithLogitsLoss, one per sample (N,) for CrossEntropyLoss and
NLLLoss. ``loss_fn.backward(grad=None)`` then takes the upstream gradient dL/dloss, an array
shaped like those losses (None: ones, the gradient of their sum), and returns dL/dpred. With
"mean" or "sum", ``grad`` may be a number that scales the gradient (None: 1).

Every loss declares the targets it takes, for the Trainer and the metrics to read:

- ``target_kinds``: a tuple of "regression" (real values shaped like the input),
  "class_index" (int class indices (N,) against scores (N, C)), "probabilities" (class
  probabilities (N, C)), "binary" (targets in [0, 1] shaped like the input, which holds logits:
  the decision threshold is 0).
- ``classification``: True when the loss scores class predictions (accuracy is meaningful).

``loss_fn(input, target)`` returns (annotated ``Any``: the type follows ``reduction``, set at
construction) a :class:`LossValue` for "mean" / "sum", an ndarray for "none".

The value of a "mean" or "sum" loss is a :class:`LossValue`: a Python float (a subclass, equal
to the plain value in every use) whose ``.backward`` raises an AttributeError that names pydl's
explicit backward (``model.backward(loss_fn.backward())``), where a PyTorch habit would call
``loss.backward()``; ``.item()`` returns the plain float, as a tensor's would.
"""
from __future__ import annotations

from typing import Any, NoReturn

import numpy as np

from .. import ops
from .._typing import Array
from .._validate import shape_str

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


class LossValue(float):
    """The value of a loss ("mean" / "sum"): a float that tells a PyTorch user where backward is."""

    __slots__ = ()

    @property
    def backward(self) -> NoReturn:
        raise AttributeError(
            "the loss value is a float: pydl has no autograd tape, so it has no .backward(). Backpropagate "
            "through the loss object and the model: grad = loss_fn.backward(); model.backward(grad); "
            "then optimizer.step() (or let pydl.train.Trainer run the loop)")

    def item(self) -> float:
        """The plain Python float (as ``torch.Tensor.item``)."""
        return float(self)


def float_labels_error(target: Array, name: str, n_classes: int, loss_name: str) -> TypeError:
    """The TypeError for float labels (N,) given to a loss that takes int class indices: it names
    the cast, or the right loss when the values are not class indices."""
    t = np.asarray(target)
    integral = bool(np.all(np.isfinite(t)) and np.all(t == np.round(t)) and (t.size == 0 or (t.min() >= 0 and
                                                                                             t.max() < n_classes)))
    probs = f" or class probabilities of shape (N, {n_classes})" if loss_name == "CrossEntropyLoss" else ""
    if integral:
        fix = f"cast them to class indices with {name}.astype(np.int64)"
    else:
        fix = (f"these values are not class indices in [0, {n_classes}): for real-valued targets use MSELoss or "
               "L1Loss, for 0/1 targets on one output BCEWithLogitsLoss")
    return TypeError(f"{name}: float labels of shape {shape_str(t.shape)} (dtype {t.dtype}), but {loss_name} takes "
                     f"int class indices{probs}: {fix}")


def _check_reduction(reduction):
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction: expected 'mean', 'sum' or 'none', got {reduction!r}")
    return reduction


def _check_ignore_index(ignore_index):
    if isinstance(ignore_index, (bool, np.bool_)) or not isinstance(ignore_index, (int, np.integer)):
        raise TypeError(f"ignore_index: expected an int, got {type(ignore_index).__name__}")
    return int(ignore_index)


def _check_pred(pred, name="input"):
    if not isinstance(pred, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(pred).__name__}")
    if pred.dtype not in _FLOATS:
        raise TypeError(f"{name}: expected dtype float32 or float64, got {pred.dtype}")


def _numeric_target(target, pred):
    """A real-valued target shaped like pred, cast to pred's dtype."""
    if not isinstance(target, np.ndarray):
        raise TypeError(f"target: expected a numpy.ndarray, got {type(target).__name__}")
    if not (np.issubdtype(target.dtype, np.floating) or np.issubdtype(target.dtype, np.integer)
            or target.dtype == np.bool_):
        raise TypeError(f"target: expected a real-valued array, got {target.dtype}")
    if target.shape != pred.shape:
        raise ValueError(f"target: expected shape {shape_str(pred.shape)} (as input), got {shape_str(target.shape)}")
    return target.astype(pred.dtype, copy=False)


def _check_weight_arg(weight, name="weight"):
    if weight is not None and not isinstance(weight, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray or None, got {type(weight).__name__}")


def _check_scores(input, target, what):
    """Check 2-D float scores (N, C) and an ndarray target; returns (N, C)."""
    _check_pred(input)
    if input.ndim != 2:
        raise ValueError(f"input: expected {what} of shape (N, C), got {shape_str(input.shape)}")
    if not isinstance(target, np.ndarray):
        raise TypeError(f"target: expected a numpy.ndarray, got {type(target).__name__}")
    return input.shape


def _class_weight(weight, C, dtype):
    if weight is None:
        return None
    w = weight.data if hasattr(weight, "data") and not isinstance(weight, np.ndarray) else weight
    if not isinstance(w, np.ndarray):
        raise TypeError(f"weight: expected a numpy.ndarray, got {type(w).__name__}")
    if w.shape != (C,):
        raise ValueError(f"weight: expected shape ({C},) (one per class), got {shape_str(w.shape)}")
    return np.ascontiguousarray(w, dtype=dtype)


def _class_target(target, N, C, check_range=True, loss_name="NLLLoss"):
    """Class indices (N,) as int64, each in [0, C) (checked here unless ``check_range`` is False)."""
    if not np.issubdtype(target.dtype, np.integer):
        if target.dtype.kind == "f" and target.ndim == 1:
            raise float_labels_error(target, "target", C, loss_name)
        probs = " or float probabilities (N, C)" if loss_name == "CrossEntropyLoss" else ""
        raise TypeError(f"target: expected integer class indices{probs}, got {target.dtype}")
    if target.shape != (N,):
        raise ValueError(f"target: expected shape ({N},) class indices for input of shape ({N}, {C}), "
                         f"got {shape_str(target.shape)}")
    t = target if target.dtype == np.int64 else target.astype(np.int64)
    if N and check_range:
        lo, hi = t.min(), t.max()
        if lo < 0 or hi >= C:
            bad = lo if lo < 0 else hi
            raise ValueError(f"target: class index {bad} is out of range [0, {C})")
    return np.ascontiguousarray(t)


class _Loss:
    """Stores the gradient computed by __call__; backward() returns it."""

    target_kinds: tuple[str, ...] = ("regression",)
    classification = False
    _grad: Array | None               # dL/dinput of the last call
    _loss_shape: tuple[int, ...]      # the shape of the last call's value

    def __init__(self, reduction: str = "mean") -> None:
        self.reduction = _check_reduction(reduction)
        self._grad = None
        self._loss_shape = ()

    def _done(self, grad, losses, total, count):
        """Store the gradient and return the call's value: ``losses`` (reduction "none", where
        ``grad`` holds the gradient of their sum), else the sum ``total`` or ``total / count``
        (``grad`` is then already that reduction's gradient)."""
        self._grad = grad
        if self.reduction == "none":
            self._loss_shape = losses.shape
            return losses
        self._loss_shape = ()
        if self.reduction == "mean":
            return LossValue(total / count if count else float("nan"))
        return LossValue(total)

    def backward(self, grad: float | Array | None = None) -> Array:
        """dL/dinput of the last call (an array shaped like the input).

        Parameters
        ----------
        grad : None, float or ndarray
            The upstream gradient dL/dloss: with ``reduction="none"`` an array shaped like the
            returned losses (None: ones); with "mean" or "sum" a number (None: 1).
        """
        if self._grad is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before the loss was computed")
        if grad is None:
            return self._grad
        g = np.asarray(grad)
        if g.shape != self._loss_shape:
            what = "the losses returned (reduction='none')" if self.reduction == "none" else "a scalar"
            raise ValueError(f"grad: expected shape {shape_str(self._loss_shape)} ({what}), got {shape_str(g.shape)}")
        if not (np.issubdtype(g.dtype, np.floating) or np.issubdtype(g.dtype, np.integer)):
            raise TypeError(f"grad: expected real numbers, got dtype {g.dtype}")
        g = g.astype(self._grad.dtype, copy=False)
        if g.ndim < self._grad.ndim:
            g = g.reshape(g.shape + (1,) * (self._grad.ndim - g.ndim))
        return self._grad * g

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reduction={self.reduction!r})"


class MSELoss(_Loss):
    """L = reduce((input - target)^2); dL/dinput = 2 (input - target) (/ n for mean)."""

    def __call__(self, input: Array, target: Array) -> Any:
        _check_pred(input)
        t = _numeric_target(target, input)
        d = input - t
        if self.reduction == "none":
            return self._done(2 * d, d * d, None, None)
        loss = float(np.dot(d.ravel(), d.ravel()))
        scale = 2.0 / d.size if self.reduction == "mean" and d.size else 2.0
        d *= d.dtype.type(scale)
        return self._done(d, None, loss, d.size)


class L1Loss(_Loss):
    """L = reduce(|input - target|); dL/dinput = sign(input - target) (/ n for mean; sign(0) = 0)."""

    def __call__(self, input: Array, target: Array) -> Any:
        _check_pred(input)
        t = _numeric_target(target, input)
        d = input - t
        g = np.sign(d)
        if self.reduction == "none":
            return self._done(g, np.abs(d), None, None)
        loss = float(np.abs(d).sum(dtype=np.float64))
        if self.reduction == "mean" and d.size:
            g /= g.dtype.type(d.size)
        return self._done(g, None, loss, d.size)


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy on logits (N, C), one fused C++ call (loss and gradient).

    target: class indices (N,) (int) or class probabilities (N, C) (float, e.g. mixup).
    With p = softmax(logits), w the class weights (default ones), eps = label_smoothing:
    indices: l_i = (1 - eps) w[t_i] (-log p_{i,t_i}) + eps/C sum_c w_c (-log p_ic), and "mean"
    divides the sum by sum_i w[t_i]; probabilities: l_i = -sum_c w_c q_ic log p_ic with
    q = (1 - eps) target + eps/C, and "mean" divides by N. "none" returns the l_i, shape (N,).
    Samples whose class index equals ``ignore_index`` add nothing to the loss, to the gradient
    or to the "mean" denominator (their "none" loss is 0); when every sample is ignored "mean"
    is NaN. (PyTorch semantics.)
    """

    target_kinds = ("class_index", "probabilities")
    classification = True

    def __init__(self, weight: Array | None = None, reduction: str = "mean", label_smoothing: float = 0.0,
                 ignore_index: int = -100) -> None:
        super().__init__(reduction)
        if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float, np.floating)):
            raise TypeError(f"label_smoothing: expected a float, got {type(label_smoothing).__name__}")
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"label_smoothing: expected a float in [0, 1], got {label_smoothing}")
        _check_weight_arg(weight)
        if weight is not None and weight.ndim != 1:
            raise ValueError(f"weight: expected a 1-D array (one per class), got shape {shape_str(weight.shape)}")
        self.weight = weight
        self.label_smoothing = float(label_smoothing)
        self.ignore_index = _check_ignore_index(ignore_index)
        self._wcache = None

    def __call__(self, input: Array, target: Array) -> Any:
        N, C = _check_scores(input, target, "logits")
        x = input if input.flags.c_contiguous else np.ascontiguousarray(input)
        if target.dtype == np.int64 and target.shape == (N,) and target.flags.c_contiguous:
            t = target  # the kernel checks the range
        elif target.dtype.kind == "f":
            if target.ndim == 1:
                raise float_labels_error(target, "target", C, "CrossEntropyLoss")
            if target.shape != input.shape:
                raise ValueError(f"target: expected class probabilities of shape {shape_str(input.shape)}, "
                                 f"got {shape_str(target.shape)}")
            t = np.ascontiguousarray(target, dtype=x.dtype)
        else:
            t = _class_target(target, N, C, check_range=False, loss_name="CrossEntropyLoss")  # the C++ kernel checks the range
        w = None if self.weight is None else self._class_weights(C, x.dtype)
        keep = None
        if t.ndim == 1 and N:
            if 0 <= self.ignore_index < C or self.reduction == "none":
                ignored = t == self.ignore_index
                if ignored.any():
                    keep = ~ignored
            else:  # an ignored target is out of [0, C): the kernel refuses it, and only then is it looked for
                try:
                    return self._reduced(x, t, w)
                except ValueError:
                    ignored = t == self.ignore_index
                    if not ignored.any():
                        raise
                    keep = ~ignored
        if self.reduction != "none":
            if keep is None:
                return self._reduced(x, t, w)
            grad = np.zeros_like(x)
            if not keep.any():
                return self._done(grad, None, 0.0, 0)
            loss, grad[keep] = ops.softmax_cross_entropy(np.ascontiguousarray(x[keep]), t[keep], w,
                                                         self.label_smoothing, self.reduction)
            self._loss_shape = ()
            self._grad = grad
            return LossValue(loss)
        return self._unreduced(x, t, w, keep)

    def _class_weights(self, C, dtype):
        """``weight`` as a C-contiguous (C,) array of ``dtype`` (cast once, then cached), or None."""
        if self.weight is None:
            return None
        if self._wcache is None or self._wcache.dtype != dtype or self._wcache.shape[0] != C:
            self._wcache = _class_weight(self.weight, C, dtype)
        return self._wcache

    def _reduced(self, x, t, w):
        loss, grad = ops.softmax_cross_entropy(x, t, w, self.label_smoothing, self.reduction)
        self._loss_shape = ()
        self._grad = grad
        return LossValue(loss)

    def _unreduced(self, x, t, w, keep):
        """reduction="none": the per-sample losses (N,) and the gradient of their sum."""
        N, C = x.shape
        losses = np.zeros(N, x.dtype)
        grad = np.zeros_like(x)
        rows = slice(None) if keep is None else keep
        xk = x if keep is None else np.ascontiguousarray(x[keep])
        tk = t if keep is None else t[keep]
        if xk.shape[0]:
            _, grad[rows] = ops.softmax_cross_entropy(xk, tk, w, self.label_smoothing, "sum")
            logp = ops.log_softmax(xk)
            wc = np.ones(C, x.dtype) if w is None else w
            eps = self.label_smoothing
            if tk.ndim == 1:
                picked = logp[np.arange(xk.shape[0]), tk]
                lk = -(1 - eps) * wc[tk] * picked
                if eps:
                    lk -= (eps / C) * (logp @ wc)
            else:
                q = (1 - eps) * tk + eps / C if eps else tk
                lk = -((q * wc) * logp).sum(axis=1)
            losses[rows] = lk
        return self._done(grad, losses, None, None)

    def __repr__(self) -> str:
        return f"CrossEntropyLoss(reduction={self.reduction!r}, label_smoothing={self.label_smoothing})"


class NLLLoss(_Loss):
    """Negative log-likelihood on log-probabilities (N, C) with class indices (N,):
    l_i = -w[t_i] input[i, t_i]; "mean" divides by sum_i w[t_i], "none" returns the l_i;
    samples whose target equals ``ignore_index`` count for nothing (PyTorch)."""

    target_kinds = ("class_index",)
    classification = True

    def __init__(self, weight: Array | None = None, reduction: str = "mean", ignore_index: int = -100) -> None:
        super().__init__(reduction)
        _check_weight_arg(weight)
        self.weight = weight
        self.ignore_index = _check_ignore_index(ignore_index)

    def __call__(self, input: Array, target: Array) -> Any:
        N, C = _check_scores(input, target, "log-probabilities")
        t = _class_target(target, N, C, check_range=False)
        ignored = t == self.ignore_index
        t = np.where(ignored, 0, t)
        if N:
            lo, hi = t.min(), t.max()
            if lo < 0 or hi >= C:
                raise ValueError(f"target: class index {lo if lo < 0 else hi} is out of range [0, {C})")
        rows = np.arange(N)
        wt = np.ones(N, input.dtype) if self.weight is None else _class_weight(self.weight, C, input.dtype)[t]
        wt[ignored] = 0
        picked = input[rows, t]
        g = np.zeros_like(input)
        g[rows, t] = -wt
        if self.reduction == "none":
            return self._done(g, -wt * picked, None, None)
        total = float(-(wt.astype(np.float64) * picked).sum())
        if self.reduction == "mean":
            denom = wt.sum(dtype=np.float64)
            if N and denom:
                g /= input.dtype.type(denom)
            return self._done(g, None, total, denom if N else 0)
        return self._done(g, None, total, None)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy on logits x with targets y in [0, 1], numerically stable (PyTorch):

    l = (1 - y) x + (1 + (pos_weight - 1) y) (log(1 + exp(-|x|)) + max(-x, 0)), times ``weight``;
    dl/dx = ((1 - y) - (1 + (pos_weight - 1) y) sigmoid(-x)) weight. ``pos_weight`` broadcasts
    over the last axis (one per class), ``weight`` over the input.
    """

    target_kinds = ("binary",)
    classification = True

    def __init__(self, weight: Array | None = None, reduction: str = "mean", pos_weight: Array | None = None) -> None:
        super().__init__(reduction)
        _check_weight_arg(weight)
        _check_weight_arg(pos_weight, "pos_weight")
        self.weight, self.pos_weight = weight, pos_weight

    def __call__(self, input: Array, target: Array) -> Any:
        _check_pred(input)
        y = _numeric_target(target, input)
        x = input
        dt = x.dtype
        sp = np.logaddexp(dt.type(0), -x)  # softplus(-x) = log(1 + exp(-|x|)) + max(-x, 0)
        if self.pos_weight is not None:
            pw = self.pos_weight.astype(dt, copy=False)
            try:
                lw = np.broadcast_to((pw - 1) * y + 1, x.shape)
            except ValueError:
                raise ValueError(f"pos_weight: shape {shape_str(pw.shape)} does not broadcast to the input's "
                                 f"{shape_str(x.shape)}") from None
        else:
            lw = None
        loss = (1 - y) * x + (sp if lw is None else lw * sp)
        e = np.exp(-np.abs(x))
        sig_neg = np.where(x >= 0, e, dt.type(1)) / (1 + e)  # sigmoid(-x) without overflow
        g = (1 - y) - (sig_neg if lw is None else lw * sig_neg)
        if self.weight is not None:
            w = self.weight.astype(dt, copy=False)
            try:
                if np.broadcast_shapes(w.shape, x.shape) != x.shape:
                    raise ValueError
                loss = loss * w
                g = g * w
            except ValueError:
                raise ValueError(f"weight: shape {shape_str(w.shape)} does not broadcast to the input's "
                                 f"{shape_str(x.shape)}") from None
        if self.reduction == "none":
            return self._done(np.ascontiguousarray(g, dtype=dt), np.asarray(loss, dtype=dt), None, None)
        total = float(loss.sum(dtype=np.float64))
        n = x.size
        if self.reduction == "mean" and n:
            g = g / dt.type(n)
        return self._done(np.ascontiguousarray(g, dtype=dt), None, total, n)
