"""pydl.model_selection: k-fold splitters, train/test split, cross-validation of Trainers and
the bias-variance decomposition.

- :class:`KFold`, :class:`StratifiedKFold`: scikit-learn's folds (exactly, without shuffling).
- :func:`train_test_split`: scikit-learn's sizes and semantics.
- :func:`cross_validate`: per fold, fit a fresh Trainer and score it on the train and test folds.
- :func:`bias_variance_decomp`: bootstrap estimate of expected loss, bias and variance (mlxtend).
"""
from ._bias_variance import bias_variance_decomp
from ._split import KFold, StratifiedKFold, train_test_split
from ._validation import check_cv, cross_validate

__all__ = ["KFold", "StratifiedKFold", "train_test_split", "cross_validate", "check_cv",
           "bias_variance_decomp"]
