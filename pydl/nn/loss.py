"""Losses: ``loss = loss_fn(pred, target)`` returns a Python float, ``loss_fn.backward()`` dL/dpred.

PyTorch semantics (reduction "mean" or "sum"). Cross-entropy runs in one fused C++ call that
also writes the gradient; the others are a few numpy expressions.

Every loss declares the targets it takes, for the Trainer and the metrics to read:

- ``target_kinds``: a tuple of "regression" (real values shaped like the input),
  "class_index" (int class indices (N,) against scores (N, C)), "probabilities" (class
  probabilities (N, C)), "binary" (targets in [0, 1] shaped like the input, which holds logits:
  the decision threshold is 0).
- ``classification``: True when the loss scores class predictions (accuracy is meaningful).
"""
import numpy as np

from .. import ops
from .._validate import shape_str

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _check_reduction(reduction):
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction: expected 'mean' or 'sum', got {reduction!r}")
    return reduction


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


def _class_target(target, N, C, check_range=True):
    """Class indices (N,) as int64, each in [0, C) (checked here unless ``check_range`` is False)."""
    if not np.issubdtype(target.dtype, np.integer):
        raise TypeError(f"target: expected integer class indices or float probabilities, got {target.dtype}")
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

    target_kinds = ("regression",)
    classification = False

    def __init__(self, reduction="mean"):
        self.reduction = _check_reduction(reduction)
        self._grad = None

    def backward(self):
        """dL/dinput of the last call (an array shaped like the input)."""
        if self._grad is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before the loss was computed")
        return self._grad

    def __repr__(self):
        return f"{type(self).__name__}(reduction={self.reduction!r})"


class MSELoss(_Loss):
    """L = reduce((input - target)^2); dL/dinput = 2 (input - target) (/ n for mean)."""

    def __call__(self, input, target):
        _check_pred(input)
        t = _numeric_target(target, input)
        d = input - t
        loss = float(np.dot(d.ravel(), d.ravel()))
        scale = 2.0 / d.size if self.reduction == "mean" and d.size else 2.0
        d *= d.dtype.type(scale)
        self._grad = d
        if self.reduction == "mean":
            return loss / d.size if d.size else float("nan")
        return loss


class L1Loss(_Loss):
    """L = reduce(|input - target|); dL/dinput = sign(input - target) (/ n for mean; sign(0) = 0)."""

    def __call__(self, input, target):
        _check_pred(input)
        t = _numeric_target(target, input)
        d = input - t
        loss = float(np.abs(d).sum(dtype=np.float64))
        g = np.sign(d)
        if self.reduction == "mean":
            if d.size:
                g /= g.dtype.type(d.size)
            self._grad = g
            return loss / d.size if d.size else float("nan")
        self._grad = g
        return loss


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy on logits (N, C), one fused C++ call (loss and gradient).

    target: class indices (N,) (int) or class probabilities (N, C) (float, e.g. mixup).
    With p = softmax(logits), w the class weights (default ones), eps = label_smoothing:
    indices: l_i = (1 - eps) w[t_i] (-log p_{i,t_i}) + eps/C sum_c w_c (-log p_ic), and "mean"
    divides the sum by sum_i w[t_i]; probabilities: l_i = -sum_c w_c q_ic log p_ic with
    q = (1 - eps) target + eps/C, and "mean" divides by N. (PyTorch semantics.)
    """

    target_kinds = ("class_index", "probabilities")
    classification = True

    def __init__(self, weight=None, reduction="mean", label_smoothing=0.0):
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
        self._wcache = None

    def __call__(self, input, target):
        N, C = _check_scores(input, target, "logits")
        x = input if input.flags.c_contiguous else np.ascontiguousarray(input)
        if target.dtype == np.int64 and target.shape == (N,) and target.flags.c_contiguous:
            t = target  # the kernel checks the range
        elif target.dtype.kind == "f":
            if target.shape != input.shape:
                raise ValueError(f"target: expected class probabilities of shape {shape_str(input.shape)}, "
                                 f"got {shape_str(target.shape)}")
            t = np.ascontiguousarray(target, dtype=x.dtype)
        else:
            t = _class_target(target, N, C, check_range=False)  # the C++ kernel checks the range
        w = None
        if self.weight is not None:
            if self._wcache is None or self._wcache.dtype != x.dtype or self._wcache.shape[0] != C:
                self._wcache = _class_weight(self.weight, C, x.dtype)
            w = self._wcache
        loss, self._grad = ops.softmax_cross_entropy(x, t, w, self.label_smoothing, self.reduction)
        return loss

    def __repr__(self):
        return f"CrossEntropyLoss(reduction={self.reduction!r}, label_smoothing={self.label_smoothing})"


class NLLLoss(_Loss):
    """Negative log-likelihood on log-probabilities (N, C) with class indices (N,):
    l_i = -w[t_i] input[i, t_i]; "mean" divides by sum_i w[t_i] (PyTorch)."""

    target_kinds = ("class_index",)
    classification = True

    def __init__(self, weight=None, reduction="mean"):
        super().__init__(reduction)
        _check_weight_arg(weight)
        self.weight = weight

    def __call__(self, input, target):
        N, C = _check_scores(input, target, "log-probabilities")
        t = _class_target(target, N, C)
        rows = np.arange(N)
        wt = np.ones(N, input.dtype) if self.weight is None else _class_weight(self.weight, C, input.dtype)[t]
        picked = input[rows, t]
        g = np.zeros_like(input)
        if self.reduction == "mean":
            denom = wt.sum(dtype=np.float64)
            loss = float(-(wt.astype(np.float64) * picked).sum() / denom) if N else float("nan")
            g[rows, t] = -wt / input.dtype.type(denom) if N else 0
        else:
            loss = float(-(wt.astype(np.float64) * picked).sum())
            g[rows, t] = -wt
        self._grad = g
        return loss


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy on logits x with targets y in [0, 1], numerically stable (PyTorch):

    l = (1 - y) x + (1 + (pos_weight - 1) y) (log(1 + exp(-|x|)) + max(-x, 0)), times ``weight``;
    dl/dx = ((1 - y) - (1 + (pos_weight - 1) y) sigmoid(-x)) weight. ``pos_weight`` broadcasts
    over the last axis (one per class), ``weight`` over the input.
    """

    target_kinds = ("binary",)
    classification = True

    def __init__(self, weight=None, reduction="mean", pos_weight=None):
        super().__init__(reduction)
        _check_weight_arg(weight)
        _check_weight_arg(pos_weight, "pos_weight")
        self.weight, self.pos_weight = weight, pos_weight

    def __call__(self, input, target):
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
        total = float(loss.sum(dtype=np.float64))
        if self.reduction == "mean":
            n = x.size
            g = g / dt.type(n) if n else g
            self._grad = np.ascontiguousarray(g, dtype=dt)
            return total / n if n else float("nan")
        self._grad = np.ascontiguousarray(g, dtype=dt)
        return total
