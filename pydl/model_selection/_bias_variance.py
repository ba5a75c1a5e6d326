"""Bias-variance decomposition by bootstrap rounds (mlxtend's bias_variance_decomp semantics)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import _random
from .._random import make_rng, rng_or_global
from .._typing import Array
from .._validate import check_int
from ._split import check_consistent_length
from ._validation import check_n_jobs, run_jobs


def _labels(pred, name):
    """Class labels from predictions: argmax over the last axis of (n, C) scores with C > 1;
    otherwise the values themselves, which must be integers."""
    pred = np.asarray(pred)
    if pred.ndim == 2 and pred.shape[1] > 1:
        return np.argmax(pred, axis=1)
    pred = pred.reshape(pred.shape[0], -1)
    if pred.shape[1] != 1:
        raise ValueError(f"{name}: expected labels (n,) or scores (n, C), got shape {pred.shape}")
    pred = pred[:, 0]
    if pred.dtype.kind == "f" and (not np.all(np.isfinite(pred)) or np.any(pred != np.round(pred))):
        raise ValueError(f"{name}: 0-1 loss needs integer class labels or (n, C) scores, got "
                         f"non-integer values")
    return pred.astype(np.int64)


def _mode(preds):
    """Per column of (rounds, n) int labels, the most frequent one (the smallest on ties)."""
    out = np.empty(preds.shape[1], dtype=np.int64)
    for j in range(preds.shape[1]):
        values, counts = np.unique(preds[:, j], return_counts=True)
        out[j] = values[np.argmax(counts)]
    return out


def _fit_and_predict(build, X_train, y_train, idx, X_test, fit_kwargs, seed):
    """One bootstrap round: a fresh trainer fit on the resampled rows, its test predictions
    (runs in a worker for n_jobs != 1)."""
    _random.manual_seed(seed)
    trainer = build()
    trainer.fit(X_train[idx], y_train[idx], **fit_kwargs)
    return np.asarray(trainer.predict(X_test))


def bias_variance_decomp(build: Callable[[], Any], X_train: Array, y_train: Array, X_test: Array, y_test: Array,
                         loss: str = "mse", num_rounds: int = 200, random_seed: int | None = None,
                         fit_kwargs: dict[str, Any] | None = None, n_jobs: int | None = 1) -> tuple[float, float, float]:
    """Expected loss, bias and variance of a model over bootstrap resamples of its training set.

    Round r = 1..R: draw n_train indices with replacement from the training set, fit a fresh
    trainer ``build()`` on that sample, predict the test set: p_r = trainer.predict(X_test).
    Then, as mlxtend's ``bias_variance_decomp``, with means over the test samples:

    - ``loss="mse"``: main prediction m = mean_r p_r;
      expected_loss = mean_r mean((p_r - y)^2), bias = mean((m - y)^2) (the squared bias),
      variance = mean(mean_r (p_r - m)^2). Here expected_loss = bias + variance exactly.
      Predictions are reshaped to y_test's shape (an (n, 1) output against (n,) targets works);
      multi-output targets average over every element.
    - ``loss="0-1_loss"``: predictions (n, C) become labels by argmax; m = the most frequent
      label per test sample (the smallest on ties); expected_loss = mean_r mean(p_r != y),
      bias = mean(m != y), variance = mean(mean_r (p_r != m)). No additive identity holds.

    Parameters
    ----------
    build : callable () -> Trainer (anything with ``fit`` and ``predict``)
    X_train, y_train, X_test, y_test : ndarrays, samples along axis 0
    loss : "mse" or "0-1_loss"
    num_rounds : int >= 1
    random_seed : int, optional
        Seeds the bootstrap draws (``np.random.default_rng``); None uses pydl's global
        generator. Round r runs after ``pydl.manual_seed(s_r)``, the seeds s_r drawn from pydl's
        global generator after the bootstrap samples: call ``pydl.manual_seed`` first for a
        fully reproducible result.
    fit_kwargs : dict, optional
        Passed to ``trainer.fit`` (e.g. ``{"epochs": 50, "verbose": 0}``).
    n_jobs : int or None, default 1
        As in :func:`cross_validate`: 1 runs the rounds here one after the other; otherwise
        through joblib (worker processes, or a Dask / Ray backend). The result does not depend
        on it.

    Returns
    -------
    (expected_loss, bias, variance) : floats
    """
    if not callable(build):
        raise TypeError(f"build: expected a callable returning a fresh Trainer, got {type(build).__name__}")
    if loss not in ("mse", "0-1_loss"):
        raise ValueError(f"loss: expected 'mse' or '0-1_loss', got {loss!r}")
    num_rounds = check_int(num_rounds, "num_rounds", low=1)
    X_train, y_train = np.asarray(X_train), np.asarray(y_train)
    X_test, y_test = np.asarray(X_test), np.asarray(y_test)
    n = check_consistent_length([X_train, y_train], ["X_train", "y_train"])
    m = check_consistent_length([X_test, y_test], ["X_test", "y_test"])
    if n == 0 or m == 0:
        raise ValueError(f"X_train, X_test: expected non-empty sets, got {n} and {m} samples")
    if loss == "mse" and y_test.dtype.kind == "f" and not np.all(np.isfinite(y_test)):
        raise ValueError("y_test: contains NaN or inf")
    fit_kwargs = {} if fit_kwargs is None else dict(fit_kwargs)
    n_jobs = check_n_jobs(n_jobs)
    rng = rng_or_global(make_rng(random_seed, "random_seed"))
    samples = [rng.integers(0, n, size=n) for _ in range(num_rounds)]
    seeds = [_random.next_seed() for _ in range(num_rounds)]
    jobs = [(build, X_train, y_train, idx, X_test, fit_kwargs, s) for idx, s in zip(samples, seeds)]

    preds: Any = []
    for p in run_jobs(_fit_and_predict, jobs, n_jobs, "bias_variance_decomp"):
        if loss == "mse":
            if p.size != y_test.size:
                raise ValueError(f"predict: expected {y_test.size} values for y_test of shape "
                                 f"{y_test.shape}, got shape {p.shape}")
            preds.append(p.reshape(y_test.shape).astype(np.float64))
        else:
            preds.append(_labels(p, "predict"))
    preds = np.stack(preds)                    # (rounds, m, ...)

    if loss == "mse":
        y = y_test.astype(np.float64)
        main = preds.mean(axis=0)
        expected = float(np.mean((preds - y) ** 2))
        bias = float(np.mean((main - y) ** 2))
        variance = float(np.mean((preds - main) ** 2))
    else:
        y = _labels(y_test, "y_test")
        main = _mode(preds)
        expected = float(np.mean(preds != y))
        bias = float(np.mean(main != y))
        variance = float(np.mean(preds != main))
    return expected, bias, variance
