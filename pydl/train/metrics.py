"""Metrics the Trainer reports: accuracy, mse, mae, or any callable ``metric(y_true, y_pred) -> float``.

Every metric is a per-sample mean over the batch it is given, so the Trainer can average batches
weighted by their sizes and obtain the exact mean over the epoch (or the evaluated set).

Direction (used by EarlyStopping / ModelCheckpoint ``mode="auto"``): accuracy goes up, errors go
down. A user callable may carry ``direction = "up"`` or ``"down"`` as an attribute.
"""
from __future__ import annotations

from typing import Any, Callable, TypeVar

import numpy as np

from .._typing import Array

#: a metric: ``fn(y_true, y_pred) -> float`` (a per-sample mean)
Metric = Callable[..., float]
_F = TypeVar("_F", bound=Callable[..., Any])


def _direction(d: str) -> Callable[[_F], _F]:
    """Mark a metric's direction ("up": larger is better, "down"), read by :func:`direction`."""
    def mark(fn: _F) -> _F:
        setattr(fn, "direction", d)
        return fn
    return mark


def _class_targets(y_true, n):
    """Class indices from int labels (N,), one-output binary targets, or soft targets (N, C)."""
    y = np.asarray(y_true)
    if y.ndim == 2 and y.shape[1] > 1:
        return np.argmax(y, axis=1)          # probability / soft targets (mixup, label smoothing)
    if y.size != n:
        raise ValueError(f"y_true: expected {n} class labels (one per row of y_pred), got shape {y.shape}")
    return y.reshape(n)


@_direction("up")
def accuracy(y_true: Array, y_pred: Array, threshold: float = 0.5) -> float:
    """Fraction of samples whose predicted class equals the true class.

    Parameters
    ----------
    y_true : ndarray of shape (N,) int class indices, (N, C) soft targets (argmax taken),
        or (N,) / (N, 1) binary targets in {0, 1} (compared after ``y > 0.5``)
    y_pred : ndarray of shape (N, C), C > 1
        Scores (logits or probabilities): the predicted class is ``argmax`` over the last axis.
        With one output, shape (N,) or (N, 1), the prediction is ``y_pred > threshold``.
    threshold : float
        Decision threshold for one output: 0.5 for probabilities; the Trainer passes 0.0 when the
        loss takes "binary" targets on logits (``BCEWithLogitsLoss``: sigmoid(z) > 0.5 <=> z > 0).
    """
    y_pred = np.asarray(y_pred)
    n = y_pred.shape[0]
    if n == 0:
        return float("nan")
    if y_pred.ndim == 2 and y_pred.shape[1] > 1:
        pred = np.argmax(y_pred, axis=1)
        true = _class_targets(y_true, n)
    else:
        pred = y_pred.reshape(n) > threshold
        true = np.asarray(y_true)
        if true.size != n:
            raise ValueError(f"y_true: expected {n} targets (as y_pred of shape {y_pred.shape}), got shape {true.shape}")
        true = true.reshape(n) > 0.5
    return float(np.count_nonzero(pred == true)) / n


def _aligned(y_true, y_pred):
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.shape != y_pred.shape and y_true.size == y_pred.size:
        y_true = y_true.reshape(y_pred.shape)   # (N,) targets against (N, 1) outputs
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true: expected shape {y_pred.shape} (as the predictions), got {y_true.shape}")
    return y_true, y_pred


@_direction("down")
def mse(y_true: Array, y_pred: Array) -> float:
    """Mean squared error over all elements: mean((y_pred - y_true)^2)."""
    y_true, y_pred = _aligned(y_true, y_pred)
    d = y_pred.astype(np.float64) - y_true
    return float(np.mean(d * d))


@_direction("down")
def mae(y_true: Array, y_pred: Array) -> float:
    """Mean absolute error over all elements: mean(|y_pred - y_true|)."""
    y_true, y_pred = _aligned(y_true, y_pred)
    return float(np.mean(np.abs(y_pred.astype(np.float64) - y_true)))

_BY_NAME = {"accuracy": accuracy, "acc": accuracy, "mse": mse, "mean_squared_error": mse,
            "mae": mae, "mean_absolute_error": mae}


def get(metric: str | Metric) -> tuple[str, Metric]:
    """Resolve a metric given by name or callable; returns ``(name, fn)``."""
    if isinstance(metric, str):
        key = metric.lower()
        if key not in _BY_NAME:
            raise ValueError(f"metrics: unknown metric {metric!r}; expected one of "
                             f"{sorted(_BY_NAME)} or a callable metric(y_true, y_pred) -> float")
        fn = _BY_NAME[key]
        return fn.__name__, fn          # canonical log key: "accuracy", "mse" or "mae"
    if callable(metric):
        name = getattr(metric, "__name__", None) or type(metric).__name__
        return name, metric
    raise TypeError(f"metrics: expected a metric name or a callable, got {type(metric).__name__}")


def direction(name: str, fn: Metric | None = None) -> str | None:
    """'up' when larger is better, 'down' when smaller is better, None when unknown."""
    base = name[4:] if name.startswith("val_") else name
    if base in ("loss", "gap"):
        return "down"
    if fn is None and base in _BY_NAME:
        fn = _BY_NAME[base]
    return getattr(fn, "direction", None) if fn is not None else None
