"""cross_validate: k-fold evaluation of freshly built Trainers."""
from __future__ import annotations

import numbers
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import _random
from .._typing import Array
from .._validate import check_int
from ._split import KFold, StratifiedKFold, check_consistent_length


def check_n_jobs(n_jobs):
    """n_jobs as joblib takes it: None, or an int other than 0 (-1: every CPU or worker)."""
    n_jobs = check_int(n_jobs, "n_jobs", low=None, allow_none=True)
    if n_jobs == 0:
        raise ValueError("n_jobs: expected None, an int >= 1 or a negative int (joblib: -1 means all "
                         "CPUs, or all workers of a Dask / Ray backend), got 0")
    return n_jobs


def run_jobs(fn, jobs, n_jobs, who):
    """[fn(*job) for job in jobs]: in this process when n_jobs == 1, else through joblib.Parallel,
    which runs them in worker processes or on the backend of an enclosing
    ``joblib.parallel_backend("dask")`` / ``("ray")`` block (arguments and results pickled)."""
    if n_jobs == 1:
        return [fn(*job) for job in jobs]
    try:
        import joblib
    except ImportError:
        raise ImportError(f"{who}(n_jobs != 1) needs joblib: pip install joblib "
                          "(or pydl[parallel]); n_jobs=1 runs without it") from None
    return joblib.Parallel(n_jobs=n_jobs)(joblib.delayed(fn)(*job) for job in jobs)


def _is_class_labels(y):
    y = np.asarray(y)
    return y.dtype.kind in "iub" and (y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1))


def check_cv(cv: Any, y: Array | None) -> Any:
    """An int -> StratifiedKFold(cv) for integer class labels y (1-D), else KFold(cv), as
    scikit-learn does for classifiers; an object with ``split`` is returned as it is."""
    if isinstance(cv, numbers.Integral) and not isinstance(cv, (bool, np.bool_)):
        cv = check_int(cv, "cv", low=2)
        return StratifiedKFold(cv) if _is_class_labels(y) else KFold(cv)
    if isinstance(cv, (str, bytes)) or not hasattr(cv, "split"):
        raise TypeError(f"cv: expected an int >= 2 or a splitter with .split(X, y), got {type(cv).__name__}")
    return cv


def _score(scoring, trainer, metrics, X, y):
    """The fold's score: see cross_validate."""
    if callable(scoring):
        return float(scoring(trainer, X, y))
    if scoring is None:
        for key, value in metrics.items():
            if key != "loss":
                return float(value)
        return -float(metrics["loss"])
    if scoring == "neg_loss":
        return -float(metrics["loss"])
    if scoring not in metrics:
        raise ValueError(f"scoring: {scoring!r} is not among evaluate()'s metrics {sorted(metrics)}")
    return float(metrics[scoring])


def _fit_and_score(build, X, y, train, test, fit_kwargs, scoring, seed):
    """Fit a fresh trainer on the train fold, evaluate it on both folds (runs in a worker for n_jobs > 1)."""
    _random.manual_seed(seed)
    trainer = build()
    t0 = time.perf_counter()
    trainer.fit(X[train], y[train], **fit_kwargs)
    fit_time = time.perf_counter() - t0
    train_metrics = dict(trainer.evaluate(X[train], y[train]))
    t0 = time.perf_counter()
    test_metrics = dict(trainer.evaluate(X[test], y[test]))
    test_score = _score(scoring, trainer, test_metrics, X[test], y[test])
    score_time = time.perf_counter() - t0
    train_score = _score(scoring, trainer, train_metrics, X[train], y[train])
    return {"fit_time": fit_time, "score_time": score_time, "test_score": test_score,
            "train_score": train_score, "test_metrics": test_metrics, "train_metrics": train_metrics}


def cross_validate(build: Callable[[], Any], X: Array, y: Array, cv: Any = 5, fit_kwargs: dict[str, Any] | None = None,
                   n_jobs: int | None = 1, scoring: Any = None) -> dict[str, Any]:
    """Evaluate a model by cross-validation: per fold, fit a fresh Trainer on the other folds.

    Parameters
    ----------
    build : callable () -> Trainer
        Returns a fresh, untrained ``pydl.train.Trainer`` (anything with ``fit(X, y, **kw)`` and
        ``evaluate(X, y) -> dict`` with a "loss" key). With n_jobs > 1 it must be picklable
        by joblib (cloudpickle handles lambdas and closures).
    X : ndarray of shape (n_samples, ...)
    y : ndarray of shape (n_samples, ...)
    cv : int or splitter, default 5
        An int k: StratifiedKFold(k) when y holds integer class labels, else KFold(k); or any
        object with ``split(X, y)`` yielding (train_idx, test_idx) (scikit-learn's splitters work).
    fit_kwargs : dict, optional
        Passed to ``trainer.fit`` (e.g. ``{"epochs": 20, "verbose": 0}``).
    n_jobs : int or None, default 1
        1: the folds run one after the other in this process. Otherwise they run through
        joblib (optional dependency) with ``joblib.Parallel(n_jobs=n_jobs)``: in n_jobs worker
        processes (-1: one per CPU), or on a cluster inside ``with
        joblib.parallel_backend("dask"):`` (a ``distributed.Client``) or ``("ray")`` (after
        ``ray.util.joblib.register_ray()``), where -1 or None means every worker. Results do not
        depend on n_jobs or the backend: fold f runs after ``pydl.manual_seed(s_f)``, with the
        seeds s_f drawn from pydl's global generator before the first fold (so
        ``pydl.manual_seed`` before cross_validate makes the whole run reproducible); the
        global generator is left as the last fold left it when n_jobs is 1, and after the
        seeds' draw otherwise.
    scoring : None, str or callable, default None
        The score of a fold from ``trainer.evaluate``'s dict: None takes the first metric other
        than "loss" (e.g. accuracy), or -loss when evaluate returns only the loss (higher is
        better either way); "neg_loss" is -loss; another str names a key of that dict; a
        callable ``scoring(trainer, X_fold, y_fold) -> float``.

    Returns
    -------
    dict with, per fold (ndarray of shape (n_splits,)): "test_score", "train_score",
    "fit_time" (seconds in fit), "score_time" (seconds evaluating and scoring the test fold),
    "test_<metric>" and "train_<metric>" for every key of evaluate's dict; and
    "test_metrics", "train_metrics": lists of the full evaluate() dicts.
    """
    if not callable(build):
        raise TypeError(f"build: expected a callable returning a fresh Trainer, got {type(build).__name__}")
    X, y = np.asarray(X), np.asarray(y)
    check_consistent_length([X, y], ["X", "y"])
    if X.shape[0] == 0:
        raise ValueError("X: expected at least one sample, got an empty array")
    fit_kwargs = {} if fit_kwargs is None else dict(fit_kwargs)
    n_jobs = check_n_jobs(n_jobs)
    if scoring is not None and not callable(scoring) and not isinstance(scoring, str):
        raise TypeError(f"scoring: expected None, a str or a callable, got {type(scoring).__name__}")
    splits = [(np.asarray(tr), np.asarray(te)) for tr, te in check_cv(cv, y).split(X, y)]
    if not splits:
        raise ValueError("cv: the splitter yielded no folds")
    seeds = [_random.next_seed() for _ in splits]
    jobs = [(build, X, y, tr, te, fit_kwargs, scoring, s) for (tr, te), s in zip(splits, seeds)]
    results = run_jobs(_fit_and_score, jobs, n_jobs, "cross_validate")
    out: dict[str, Any] = {key: np.array([r[key] for r in results], dtype=np.float64)
           for key in ("test_score", "train_score", "fit_time", "score_time")}
    for part in ("test", "train"):
        dicts = [r[f"{part}_metrics"] for r in results]
        for key in dicts[0]:
            if f"{part}_{key}" in out:   # a metric named "score": its array stays in the dicts
                continue
            out[f"{part}_{key}"] = np.array([d.get(key, np.nan) for d in dicts], dtype=np.float64)
        out[f"{part}_metrics"] = dicts
    return out
