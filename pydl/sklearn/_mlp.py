"""MLPClassifier and MLPRegressor: scikit-learn's estimators of the same names, trained by pydl.

Same constructor parameters, defaults and meanings as scikit-learn's (checked by the tests
against the installed version), the same fitted attributes, the same training procedure:
Glorot-uniform init drawn from ``random_state`` exactly as scikit-learn draws it, mini-batches
of ``batch_size`` (``"auto"``: min(200, n)) reshuffled every epoch, the loss of a batch
``sum_i w_i l_i / sum_i w_i + 0.5 alpha ||W||^2 / sum_i w_i`` (w = 1 without sample weights, so
the L2 term is divided by the batch size), the stopping rule on ``tol`` / ``n_iter_no_change``
(training loss, or the validation score with ``early_stopping``), ``learning_rate`` schedules for
"sgd". What differs: the solver "lbfgs" is not offered; computation runs in pydl's kernels in
``dtype`` (float32 by default, its speed); pydl adds solvers and a few extras (see the classes).
"""
from __future__ import annotations

import numbers
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from .._grad_mode import no_grad
from .._typing import Array, SeedLike
from . import _network as net

_HELP_SOLVERS = ", ".join(repr(s) for s in net.SOLVERS)


def _sample_weight(sample_weight, n):
    """Sample weights as a new float64 array of shape (n,) (None stays None)."""
    if sample_weight is None:
        return None
    if isinstance(sample_weight, numbers.Number):
        return np.full(n, float(sample_weight))
    w = np.array(sample_weight, dtype=np.float64)
    if w.ndim != 1 or w.shape[0] != n:
        raise ValueError(f"sample_weight: expected shape ({n},) (one weight per sample), got {w.shape}")
    if not np.isfinite(w).all():
        raise ValueError("sample_weight: contains NaN or infinite values")
    if (w < 0).any():
        raise ValueError("sample_weight: expected non-negative weights")
    if n and not w.any():
        raise ValueError("sample_weight: all sample weights are zero; at least one must be positive")
    return w


def _store_init_params(estimator, params):
    """Store every constructor argument untouched under its own name (scikit-learn's rule: no
    validation or conversion in __init__; fit does that)."""
    for name, value in params.items():
        if name not in ("self", "__class__"):
            setattr(estimator, name, value)


class _BaseMLP(BaseEstimator):
    """Shared parameters, validation and the stochastic training loop (see the module docstring)."""

    _parameter_constraints = {
        "hidden_layer_sizes": ["array-like", Interval(numbers.Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(net.HIDDEN))],
        "solver": [StrOptions(set(net.SOLVERS) | {"lbfgs"})],
        "alpha": [Interval(numbers.Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(numbers.Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(numbers.Real, 0, None, closed="neither")],
        "power_t": [Interval(numbers.Real, 0, None, closed="left")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(numbers.Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="left")],
        "beta_1": [Interval(numbers.Real, 0, 1, closed="left")],
        "beta_2": [Interval(numbers.Real, 0, 1, closed="left")],
        "epsilon": [Interval(numbers.Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(numbers.Integral, 1, None, closed="left"), Options(numbers.Real, {np.inf})],
        "max_fun": [Interval(numbers.Integral, 1, None, closed="left")],
        "dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        "batch_norm": ["boolean"],
        "dtype": [StrOptions({"float32", "float64"}), None],
    }

    # ------------------------------------------------------------------ validation
    def _check_params(self):
        if self.solver == "lbfgs":
            raise ValueError(f"solver: 'lbfgs' is not supported by pydl.sklearn; use one of {_HELP_SOLVERS} "
                             "(or sklearn.neural_network for L-BFGS)")
        self._validate_params()
        sizes = self.hidden_layer_sizes
        sizes = list(sizes) if hasattr(sizes, "__iter__") else [sizes]
        if any(isinstance(h, (bool, np.bool_)) or not isinstance(h, numbers.Integral) or h <= 0 for h in sizes):
            raise ValueError(f"hidden_layer_sizes: expected positive ints, got {self.hidden_layer_sizes!r}")
        return [int(h) for h in sizes]

    def _compute_dtype(self, X):
        return np.dtype(self.dtype) if self.dtype is not None else X.dtype

    # ------------------------------------------------------------------ fit
    def _fit(self, X, y, sample_weight, incremental, classes=None):
        hidden = self._check_params()
        if incremental and self.early_stopping:
            raise ValueError("early_stopping: partial_fit does not support early_stopping=True")
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, Y = self._validate_input(X, y, incremental, first_pass, classes)
        sw = _sample_weight(sample_weight, X.shape[0])
        sw = self._with_class_weight(sw, y=Y)
        dtype = self._compute_dtype(X)
        Xc = np.ascontiguousarray(X, dtype=dtype)
        n_outputs = self._n_outputs(Y)
        layer_units = [X.shape[1]] + hidden + [n_outputs]
        rs = check_random_state(self.random_state)
        if first_pass:
            self._initialize(rs, layer_units, dtype)
        elif [c.shape for c in self.coefs_] != list(zip(layer_units[:-1], layer_units[1:])):
            raise ValueError(f"hidden_layer_sizes: the fitted layers {[c.shape for c in self.coefs_]} do not "
                             f"match the layers asked for, {layer_units} (warm_start / partial_fit keep the "
                             "architecture)")
        with net.private_rng(rs.randint(np.iinfo(np.int32).max)):
            self._fit_stochastic(Xc, Y, sw, rs, incremental, dtype)
        if not all(np.isfinite(a).all() for a in self.coefs_ + self.intercepts_):
            raise ValueError("Solver produced non-finite parameter weights. The input data may contain large "
                             "values and need to be preprocessed.")
        return self

    def _initialize(self, rs, layer_units, dtype):
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = layer_units[-1]
        self.n_layers_ = len(layer_units)
        self.out_activation_ = self._output_activation()
        self.coefs_, self.intercepts_ = net.glorot_init(rs, layer_units, self.activation, dtype)
        self._bn_state = []
        self._optimizer_state = None
        self.loss_curve_ = []
        self._no_improvement_count = 0
        if self.early_stopping:
            self.validation_scores_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
            self.best_loss_ = np.inf

    def _fit_stochastic(self, X, Y, sw, rs, incremental, dtype):
        coefs = [np.asarray(c, dtype=dtype) for c in self.coefs_]
        intercepts = [np.asarray(b, dtype=dtype) for b in self.intercepts_]
        model, linears, bns = net.build(coefs, intercepts, self.activation, self.dropout, self.batch_norm,
                                        self._bn_state, dtype)
        weights = [lin.weight for lin in linears]
        others = [lin.bias for lin in linears] + [p for bn in bns for p in bn.parameters()]
        opt = net.make_optimizer(self, weights, others)
        if incremental and getattr(self, "_optimizer_state", None) is not None:
            opt.load_state_dict(self._optimizer_state)
        loss_fn = net.OutputLoss(self.out_activation_, getattr(self, "label_smoothing", 0.0))
        T = loss_fn.targets(Y.astype(dtype) if Y.dtype.kind == "f" else Y)

        if self.early_stopping:
            stratify = Y[:, 0] if (self._is_clf and self.n_outputs_ == 1) else None
            arrays = (X, T, Y) if sw is None else (X, T, Y, sw)
            parts = train_test_split(*arrays, random_state=rs, test_size=self.validation_fraction,
                                     stratify=stratify)
            X, X_val, T, _, Y, Y_val = parts[:6]
            sw, sw_val = (parts[6], parts[7]) if sw is not None else (None, None)
            if X_val.shape[0] < 2:
                raise ValueError("validation_fraction: the validation set is too small; increase "
                                 "'validation_fraction' or the size of your dataset")
            y_val = self._decode_targets(Y_val)
        n = X.shape[0]
        if self.batch_size == "auto":
            bs = min(200, n)
        else:
            if self.batch_size > n:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going to be clipped")
            bs = int(np.clip(self.batch_size, 1, n))
        bounds = list(range(0, n, bs)) + [n]
        if bns and len(bounds) > 2 and bounds[-1] - bounds[-2] == 1:
            del bounds[-2]                      # a training batch norm cannot take a single sample
        coupled_l2 = self.alpha > 0 and self.solver != "adamw"
        wgroup = opt.param_groups[0]
        wdata = [p.data for p in weights]
        alpha = float(self.alpha)
        best = None
        self.n_iter_ = 0                        # epochs of this call (scikit-learn's n_iter_)
        model.train()
        try:
            for _ in range(self.max_iter):
                order = rs.permutation(n) if self.shuffle else None
                total = 0.0
                for s, e in zip(bounds[:-1], bounds[1:]):
                    idx = slice(s, e) if order is None else order[s:e]
                    xb, tb = X[idx], T[idx]
                    wb = None if sw is None else sw[idx].astype(dtype)
                    w_sum = float(e - s) if wb is None else float(wb.sum())
                    if w_sum <= 0:
                        continue                # no weight in this batch: nothing to learn from it
                    for p in weights:
                        p.grad = None
                    for p in others:
                        p.grad = None
                    z = model(xb)
                    loss, dz = loss_fn(z, tb, wb, w_sum)
                    model.backward(dz, input_grad=False)
                    if alpha > 0:
                        loss += 0.5 * alpha * sum(float(np.dot(w.ravel(), w.ravel())) for w in wdata) / w_sum
                        if coupled_l2:
                            wgroup["weight_decay"] = alpha / w_sum
                    opt.step()
                    total += loss * (e - s)
                self.n_iter_ += 1
                self.loss_ = total / n
                self.t_ += n
                self.loss_curve_.append(self.loss_)
                if self.verbose:
                    print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))
                if self.early_stopping:
                    score = self._validation_score(model, X_val, y_val, sw_val)
                    improved = self._track_validation(score)
                    if improved:
                        best = [np.array(v, copy=True) for v in model.state_dict().values()]
                else:
                    self._track_loss()
                if self.solver == "sgd" and self.learning_rate == "invscaling":
                    for g in opt.param_groups:
                        g["lr"] = self.learning_rate_init / (self.t_ + 1) ** self.power_t
                if self._no_improvement_count > self.n_iter_no_change:
                    what = "Validation score" if self.early_stopping else "Training loss"
                    msg = (f"{what} did not improve more than tol={self.tol:f} for "
                           f"{self.n_iter_no_change} consecutive epochs.")
                    if self.solver == "sgd" and self.learning_rate == "adaptive" and opt.param_groups[0]["lr"] > 1e-6:
                        for g in opt.param_groups:
                            g["lr"] /= 5.0
                        self._no_improvement_count = 0
                        if self.verbose:
                            print(msg + " Setting learning rate to %f" % opt.param_groups[0]["lr"])
                    else:
                        if self.verbose:
                            print(msg + " Stopping.")
                        break
                if incremental:
                    break
                if self.n_iter_ == self.max_iter:
                    warnings.warn("Stochastic Optimizer: Maximum iterations (%d) reached and the optimization "
                                  "hasn't converged yet." % self.max_iter, ConvergenceWarning)
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.")
        if best is not None:                    # early stopping: the best weights seen
            model.load_state_dict(dict(zip(model.state_dict().keys(), best)))
        wgroup["weight_decay"] = self.alpha if self.solver == "adamw" else 0.0
        self._optimizer_state = opt.state_dict()
        self.coefs_, self.intercepts_, self._bn_state = net.read_back(linears, bns)

    def _track_loss(self):
        last = self.loss_curve_[-1]
        if last > self.best_loss_ - self.tol:
            self._no_improvement_count += 1
        else:
            self._no_improvement_count = 0
        if last < self.best_loss_:
            self.best_loss_ = last

    def _track_validation(self, score):
        """Record a validation score; True when it is the best so far."""
        self.validation_scores_.append(score)
        if self.verbose:
            print("Validation score: %f" % score)
        if score < self.best_validation_score_ + self.tol:
            self._no_improvement_count += 1
        else:
            self._no_improvement_count = 0
        if score > self.best_validation_score_:
            self.best_validation_score_ = score
            return True
        return False

    def _validation_score(self, model, X_val, y_val, sw_val):
        model.eval()
        with no_grad():
            z = np.array(model(X_val), dtype=np.float64)
        model.train()
        out = net._activate(z, self.out_activation_)
        if not np.isfinite(out).all():
            return np.nan
        pred = self._decode_output(out)
        return self._score_fn(y_val, pred, sample_weight=sw_val)

    # ------------------------------------------------------------------ predict
    def _forward(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, dtype=(np.float64, np.float32), reset=False)
        # float64 whatever the training dtype: a sample's prediction does not depend on the
        # other rows of X (the estimator checks ask for it to 1e-7)
        f64 = [[np.asarray(a, dtype=np.float64) for a in arrays] for arrays in (self.coefs_, self.intercepts_)]
        bn = [{k: np.asarray(v, dtype=np.float64) for k, v in st.items()} for st in self._bn_state]
        return net.forward(np.asarray(X, dtype=np.float64), *f64, self.activation, bn, self.out_activation_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier: scikit-learn's ``MLPClassifier``, trained by pydl.

    The parameters, defaults and meanings are scikit-learn's (``sklearn.neural_network.
    MLPClassifier``); see its documentation. What pydl changes or adds:

    Parameters
    ----------
    solver : {"adam", "sgd", "adamw", "rmsprop", "adagrad", "adadelta"}, default="adam"
        "adam" and "sgd" as scikit-learn (as PyTorch's Adam / SGD with ``momentum`` and Nesterov
        when ``nesterovs_momentum``); the others are pydl's optimizers with
        ``lr=learning_rate_init`` (Adadelta's usual lr is 1.0), ``eps=epsilon`` for adamw and
        rmsprop. With "adamw", ``alpha`` is AdamW's decoupled weight decay on the weights.
        "lbfgs" raises a ValueError.
    max_fun : int, default=15000
        Accepted for compatibility; used only by the "lbfgs" solver, which pydl does not offer.
    dropout : float in [0, 1), default=0.0
        Dropout after each hidden activation (pydl extra).
    batch_norm : bool, default=False
        BatchNorm1d after each hidden Linear, before the activation (pydl extra); its state is
        kept with the fitted weights.
    label_smoothing : float in [0, 1], default=0.0
        Label smoothing of the training targets (PyTorch's for softmax outputs; y (1 - eps) +
        eps / 2 for logistic outputs) (pydl extra).
    class_weight : dict, "balanced" or None, default=None
        Per-class weights multiplying the sample weights (scikit-learn's meaning elsewhere,
        ``compute_sample_weight``) (pydl extra).
    dtype : {"float32", "float64"} or None, default="float32"
        Computation dtype; None follows X (float64 unless X is float32, as scikit-learn).

    Attributes
    ----------
    classes_, n_features_in_, feature_names_in_, coefs_, intercepts_, loss_, loss_curve_,
    best_loss_, validation_scores_, best_validation_score_, n_iter_, t_, n_layers_, n_outputs_,
    out_activation_ : as scikit-learn.
    """

    _parameter_constraints = {
        **_BaseMLP._parameter_constraints,
        "label_smoothing": [Interval(numbers.Real, 0, 1, closed="both")],
        "class_weight": [dict, StrOptions({"balanced"}), None],
    }
    _is_clf = True

    def __init__(self, hidden_layer_sizes: int | Sequence[int] = (100,), activation: str = "relu", *,
                 solver: str = "adam", alpha: float = 0.0001, batch_size: int | str = "auto",
                 learning_rate: str = "constant", learning_rate_init: float = 0.001, power_t: float = 0.5,
                 max_iter: int = 200, shuffle: bool = True, random_state: SeedLike | np.random.RandomState = None,
                 tol: float = 1e-4, verbose: bool = False, warm_start: bool = False, momentum: float = 0.9,
                 nesterovs_momentum: bool = True, early_stopping: bool = False, validation_fraction: float = 0.1,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-8, n_iter_no_change: int = 10,
                 max_fun: int = 15000, dropout: float = 0.0, batch_norm: bool = False, label_smoothing: float = 0.0,
                 class_weight: dict[Any, float] | str | None = None, dtype: Any = "float32") -> None:
        _store_init_params(self, locals())

    _score_fn = staticmethod(accuracy_score)

    # ------------------------------------------------------------------ labels
    def _validate_input(self, X, y, incremental, first_pass, classes):
        X, y = validate_data(self, X, y, multi_output=True, dtype=(np.float64, np.float32), reset=first_pass)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        multilabel = type_of_target(y).startswith("multilabel")
        if classes is not None and (incremental and not hasattr(self, "classes_")):
            labels = np.arange(y.shape[1]) if multilabel else np.unique(np.asarray(classes))
            self._set_classes(labels, multilabel)
        elif first_pass:
            self._set_classes(np.arange(y.shape[1]) if multilabel else np.unique(y), multilabel)
        else:
            if multilabel != self._multilabel:
                raise ValueError("y: multilabel targets after single-label ones (or the reverse)")
            seen = np.arange(y.shape[1]) if multilabel else np.unique(y)
            if self.warm_start and not incremental and set(seen) != set(self.classes_):
                raise ValueError("warm_start can only be used where `y` has the same classes as in the "
                                 f"previous call to fit. Previously got {self.classes_}, `y` has {seen}")
        if not multilabel:
            seen = np.unique(y)
            if len(np.setdiff1d(seen, self.classes_)):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has {self.classes_}. "
                                 f"'y' has {seen}.")
        return X, self._encode(y)

    def _set_classes(self, classes, multilabel):
        self.classes_ = classes
        self._multilabel = multilabel

    def _encode(self, y):
        """Training targets: class indices (softmax), or a float (N, k) 0/1 matrix (logistic)."""
        if self._multilabel:
            return np.asarray(y, dtype=np.float64)
        idx = np.searchsorted(self.classes_, y)
        if len(self.classes_) > 2:
            return idx.astype(np.int64)
        return idx.astype(np.float64).reshape(-1, 1)

    def _n_outputs(self, Y):
        return Y.shape[1] if Y.ndim == 2 else len(self.classes_)

    def _output_activation(self):
        return "softmax" if (not self._multilabel and len(self.classes_) > 2) else "logistic"

    def _with_class_weight(self, sw, y):
        if self.class_weight is None:
            return sw
        if self._multilabel:
            raise ValueError("class_weight: not supported with multilabel targets")
        labels = y if y.ndim == 1 else y[:, 0].astype(np.int64)
        cw = self.class_weight
        if isinstance(cw, dict):
            cw = {int(np.searchsorted(self.classes_, k)): v for k, v in cw.items() if k in set(self.classes_)}
        w = compute_sample_weight(cw, labels)
        return w if sw is None else sw * w

    def _decode_targets(self, Y):
        if self._multilabel:
            return Y.astype(np.int64)
        return self.classes_[Y.astype(np.int64).reshape(-1)]

    def _decode_output(self, out):
        if self._multilabel:
            return (out > 0.5).astype(np.int64)
        if out.shape[1] == 1:
            hit = out[:, 0] > 0.5 if len(self.classes_) > 1 else np.zeros(out.shape[0], bool)
            return self.classes_[hit.astype(np.int64)]
        return self.classes_[out.argmax(axis=1)]

    # ------------------------------------------------------------------ API
    def fit(self, X: npt.ArrayLike, y: npt.ArrayLike, sample_weight: npt.ArrayLike | None = None) -> MLPClassifier:
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Class labels (any sortable labels: ints, strings, ...), or a 0/1 indicator matrix
            for multilabel classification.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : MLPClassifier
        """
        return self._fit(X, y, sample_weight, incremental=False)

    def partial_fit(self, X: npt.ArrayLike, y: npt.ArrayLike, sample_weight: npt.ArrayLike | None = None,
                    classes: npt.ArrayLike | None = None) -> MLPClassifier:
        """One epoch over (X, y), continuing from the current state (weights and optimizer).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None
        classes : array of shape (n_classes,), default=None
            Every class of the whole stream; required on the first call.

        Returns
        -------
        self : MLPClassifier
        """
        if not hasattr(self, "classes_"):
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit.")
        elif classes is not None and not np.array_equal(np.unique(np.asarray(classes)), self.classes_):
            raise ValueError(f"classes={classes!r} is not the same as on the first call to partial_fit, "
                             f"which was {self.classes_!r}")
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    def predict(self, X: npt.ArrayLike) -> Array:
        """Predicted class labels, shape (n_samples,) (or (n_samples, n_outputs) for multilabel)."""
        return self._decode_output(self._forward(X))

    def predict_proba(self, X: npt.ArrayLike) -> Array:
        """Class probabilities, shape (n_samples, n_classes), columns in the order of ``classes_``."""
        out = self._forward(X)
        if out.shape[1] == 1 and not self._multilabel:
            return out if len(self.classes_) == 1 else np.hstack([1 - out, out])
        return out

    def predict_log_proba(self, X: npt.ArrayLike) -> Array:
        """log(predict_proba(X))."""
        p = self.predict_proba(X)
        with np.errstate(divide="ignore"):
            return np.log(p, out=p)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor: scikit-learn's ``MLPRegressor``, trained by pydl.

    The parameters, defaults and meanings are scikit-learn's (``sklearn.neural_network.
    MLPRegressor``, ``loss`` "squared_error" or "poisson"); see its documentation and
    :class:`MLPClassifier` for the solvers and for the extras ``dropout``, ``batch_norm`` and
    ``dtype``.
    """

    _parameter_constraints = {
        **_BaseMLP._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson"})],
    }
    _is_clf = False

    def __init__(self, loss: str = "squared_error", hidden_layer_sizes: int | Sequence[int] = (100,),
                 activation: str = "relu", *, solver: str = "adam", alpha: float = 0.0001,
                 batch_size: int | str = "auto", learning_rate: str = "constant", learning_rate_init: float = 0.001,
                 power_t: float = 0.5, max_iter: int = 200, shuffle: bool = True,
                 random_state: SeedLike | np.random.RandomState = None, tol: float = 1e-4, verbose: bool = False,
                 warm_start: bool = False, momentum: float = 0.9, nesterovs_momentum: bool = True,
                 early_stopping: bool = False, validation_fraction: float = 0.1, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-8, n_iter_no_change: int = 10, max_fun: int = 15000,
                 dropout: float = 0.0, batch_norm: bool = False, dtype: Any = "float32") -> None:
        _store_init_params(self, locals())

    _score_fn = staticmethod(r2_score)

    def _validate_input(self, X, y, incremental, first_pass, classes):
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True, dtype=(np.float64, np.float32),
                             reset=first_pass)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if self.loss == "poisson" and (y < 0).any():
            raise ValueError("y: the 'poisson' loss needs non-negative targets")
        y = np.asarray(y, dtype=np.float64)
        return X, (y.reshape(-1, 1) if y.ndim == 1 else y)

    def _n_outputs(self, Y):
        return Y.shape[1]

    def _output_activation(self):
        return "exp" if self.loss == "poisson" else "identity"

    def _with_class_weight(self, sw, y):
        return sw

    def _decode_targets(self, Y):
        return Y[:, 0] if Y.shape[1] == 1 else Y

    def _decode_output(self, out):
        return out[:, 0] if out.shape[1] == 1 else out

    def fit(self, X: npt.ArrayLike, y: npt.ArrayLike, sample_weight: npt.ArrayLike | None = None) -> MLPRegressor:
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : MLPRegressor
        """
        return self._fit(X, y, sample_weight, incremental=False)

    def partial_fit(self, X: npt.ArrayLike, y: npt.ArrayLike,
                    sample_weight: npt.ArrayLike | None = None) -> MLPRegressor:
        """One epoch over (X, y), continuing from the current state (weights and optimizer).

        Returns
        -------
        self : MLPRegressor
        """
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X: npt.ArrayLike) -> Array:
        """Predictions, shape (n_samples,) or (n_samples, n_outputs)."""
        return self._decode_output(self._forward(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
