"""pydl.sklearn: scikit-learn estimators trained by pydl (needs scikit-learn, ``pip install ".[sklearn]"``).

``MLPClassifier`` and ``MLPRegressor`` are drop-in replacements for scikit-learn's classes of
the same names (``sklearn.neural_network``): the same constructor parameters, defaults, fitted
attributes and methods, so they work in ``Pipeline``, ``GridSearchCV``, ``cross_val_score``,
``clone`` and pickle; they add pydl's solvers and a few extras (dropout, batch_norm,
label_smoothing, class_weight, dtype).
"""
try:
    import sklearn  # noqa: F401
except ImportError as e:  # pragma: no cover
    raise ImportError("pydl.sklearn needs scikit-learn: pip install 'pydl[sklearn]' "
                      "(or pip install scikit-learn)") from e

from ._mlp import MLPClassifier, MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor"]
