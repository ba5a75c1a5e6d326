"""pydl.sklearn's MLPs against scikit-learn's: parameters, attributes, training equivalence,
meta-estimators, pickling, labels, sample weights, warm start / partial_fit, early stopping."""
import inspect
import os
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
from sklearn import neural_network as sk_nn  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_diabetes, load_digits, make_classification, make_multilabel_classification  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import pydl  # noqa: E402
from pydl.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

PAIRS = [(MLPClassifier, sk_nn.MLPClassifier), (MLPRegressor, sk_nn.MLPRegressor)]


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def small_clf(n_classes=3, n=120, seed=0):
    return make_classification(n_samples=n, n_features=6, n_informative=4, n_classes=n_classes,
                               random_state=seed)


@pytest.mark.parametrize("ours, theirs", PAIRS)
def test_parameters_and_defaults_equal_sklearn(ours, theirs):
    mine = inspect.signature(ours).parameters
    ref = inspect.signature(theirs).parameters
    assert list(mine)[:len(ref)] == list(ref)
    for name, p in ref.items():
        assert mine[name].default == p.default, name
        assert mine[name].kind == p.kind, name
    extras = set(mine) - set(ref)
    assert extras <= {"dropout", "batch_norm", "label_smoothing", "class_weight", "dtype"}
    assert all(mine[name].kind is inspect.Parameter.KEYWORD_ONLY for name in extras)


def test_lbfgs_names_the_supported_solvers():
    X, y = small_clf()
    with pytest.raises(ValueError, match=r"solver.*lbfgs.*'sgd'.*'adam'.*'adadelta'"):
        MLPClassifier(solver="lbfgs").fit(X, y)


@pytest.mark.parametrize("solver", ["adamw", "rmsprop", "adagrad", "adadelta"])
def test_pydl_solvers_learn(solver):
    X, y = small_clf(n_classes=2, n=200)
    lr = 1.0 if solver == "adadelta" else 0.01
    clf = MLPClassifier(solver=solver, learning_rate_init=lr, max_iter=100, random_state=0).fit(X, y)
    assert clf.score(X, y) > 0.85


@pytest.mark.parametrize("case", ["multiclass", "binary", "regression", "regression2"])
def test_sgd_trajectory_equals_sklearn(case):
    """Full-batch SGD with momentum (float64): same init, same L2 scaling, same updates."""
    kw = dict(hidden_layer_sizes=(7, 5), solver="sgd", alpha=0.3, batch_size=1000, shuffle=False,
              learning_rate_init=0.05, momentum=0.9, max_iter=8, tol=0, random_state=3, activation="tanh")
    if case.startswith("regression"):
        X, y = make_classification(n_samples=90, n_features=5, random_state=1)[0], None
        y = X @ np.arange(1, 6) if case == "regression" else np.c_[X[:, 0], X[:, 1] - X[:, 2]]
        ours, ref = MLPRegressor(dtype="float64", **kw), sk_nn.MLPRegressor(**kw)
    else:
        X, y = small_clf(n_classes=3 if case == "multiclass" else 2, n=90)
        ours, ref = MLPClassifier(dtype="float64", **kw), sk_nn.MLPClassifier(**kw)
    ours.fit(X, y)
    ref.fit(X, y)
    for a, b in zip(ours.coefs_ + ours.intercepts_, ref.coefs_ + ref.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=1e-9)
    for attr in ("n_iter_", "t_", "n_layers_", "n_outputs_", "out_activation_"):
        assert getattr(ours, attr) == getattr(ref, attr), attr


@pytest.mark.parametrize("make", ["binary", "multiclass", "multilabel", "regression"])
def test_fitted_attributes_as_sklearn(make):
    if make == "multilabel":
        X, y = make_multilabel_classification(n_samples=80, n_classes=3, random_state=0)
    elif make == "regression":
        X, y = load_diabetes(return_X_y=True)
        X = StandardScaler().fit_transform(X)[:100]
        y = y[:100] / 100
    else:
        X, y = small_clf(n_classes=2 if make == "binary" else 4)
    cls = MLPRegressor if make == "regression" else MLPClassifier
    ref_cls = sk_nn.MLPRegressor if make == "regression" else sk_nn.MLPClassifier
    ours = cls(hidden_layer_sizes=(8,), max_iter=20, random_state=0).fit(X, y)
    ref = ref_cls(hidden_layer_sizes=(8,), max_iter=20, random_state=0).fit(X, y)
    assert [c.shape for c in ours.coefs_] == [c.shape for c in ref.coefs_]
    assert [b.shape for b in ours.intercepts_] == [b.shape for b in ref.intercepts_]
    for attr in ("n_features_in_", "n_layers_", "n_outputs_", "out_activation_", "n_iter_", "t_"):
        assert getattr(ours, attr) == getattr(ref, attr), attr
    if make != "regression":
        np.testing.assert_array_equal(ours.classes_, ref.classes_)
        assert ours.predict_proba(X).shape == ref.predict_proba(X).shape
    assert ours.predict(X).shape == ref.predict(X).shape
    assert len(ours.loss_curve_) == len(ref.loss_curve_) and np.isfinite(ours.loss_)
    assert ours.best_loss_ == min(ours.loss_curve_)
    assert ours.validation_scores_ is None and ours.best_validation_score_ is None


def test_digits_accuracy_within_one_point_of_sklearn():
    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X / 16, y, random_state=0, stratify=y)
    kw = dict(hidden_layer_sizes=(100,), solver="adam", max_iter=200, random_state=0)
    ours = MLPClassifier(**kw).fit(Xtr, ytr).score(Xte, yte)
    ref = sk_nn.MLPClassifier(**kw).fit(Xtr, ytr).score(Xte, yte)
    assert ours >= ref - 0.01, (ours, ref)


def test_diabetes_r2_within_005_of_sklearn():
    X, y = load_diabetes(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, random_state=0)
    kw = dict(hidden_layer_sizes=(100,), solver="adam", learning_rate_init=0.01, max_iter=500, random_state=0)
    ours = make_pipeline(StandardScaler(), MLPRegressor(**kw)).fit(Xtr, ytr).score(Xte, yte)
    ref = make_pipeline(StandardScaler(), sk_nn.MLPRegressor(**kw)).fit(Xtr, ytr).score(Xte, yte)
    assert ours >= ref - 0.05, (ours, ref)
    assert ours > 0.2


def test_grid_search_pipeline_cross_val():
    X, y = small_clf(n=150)
    pipe = make_pipeline(StandardScaler(), MLPClassifier(max_iter=60, random_state=0))
    grid = GridSearchCV(pipe, {"mlpclassifier__hidden_layer_sizes": [(5,), (20,)],
                               "mlpclassifier__alpha": [1e-4, 1e-1]}, cv=3).fit(X, y)
    assert grid.best_score_ > 0.5
    assert set(grid.best_params_) == {"mlpclassifier__hidden_layer_sizes", "mlpclassifier__alpha"}
    assert cross_val_score(MLPRegressor(max_iter=30, random_state=0), X, X[:, 0], cv=3).shape == (3,)


def test_clone_and_pickle_round_trip():
    X, y = small_clf()
    clf = MLPClassifier(hidden_layer_sizes=(9, 4), max_iter=30, random_state=0, dropout=0.1, batch_norm=True)
    c2 = clone(clf)
    assert c2.get_params() == clf.get_params() and not hasattr(c2, "coefs_")
    clf.fit(X, y)
    back = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
    back.partial_fit(X, y)                         # the optimizer state came along too
    assert back.t_ == clf.t_ + len(X)


def test_same_random_state_same_model():
    X, y = small_clf()
    a = MLPClassifier(max_iter=20, random_state=4, dropout=0.2).fit(X, y)
    b = MLPClassifier(max_iter=20, random_state=4, dropout=0.2).fit(X, y)
    np.testing.assert_array_equal(a.coefs_[0], b.coefs_[0])


def test_string_and_other_labels():
    X, y = small_clf()
    names = np.array(["cat", "dog", "eel"])[y]
    clf = MLPClassifier(max_iter=200, random_state=0).fit(X, names)
    np.testing.assert_array_equal(clf.classes_, ["cat", "dog", "eel"])
    pred = clf.predict(X)
    assert pred.dtype == names.dtype and (pred == names).mean() > 0.8
    binary = np.where(y == 0, "no", "yes")
    clf = MLPClassifier(max_iter=200, random_state=0).fit(X, binary)
    assert clf.n_outputs_ == 1 and set(clf.predict(X)) <= {"no", "yes"}
    floats = y * 2.0 - 1.0                         # integral floats, as scikit-learn takes them
    assert set(MLPClassifier(max_iter=5).fit(X, floats).predict(X)) <= set(floats)


def test_multilabel():
    X, Y = make_multilabel_classification(n_samples=150, n_classes=4, random_state=0)
    clf = MLPClassifier(max_iter=300, random_state=0).fit(X, Y)
    assert clf.predict(X).shape == Y.shape and clf.out_activation_ == "logistic"
    assert (clf.predict(X) == Y).mean() > 0.8


def test_zero_sample_weights_equal_dropping_samples():
    X, y = small_clf(n=100)
    w = np.ones(len(y))
    w[::3] = 0
    kw = dict(batch_size=1000, shuffle=False, max_iter=15, random_state=0, dtype="float64", tol=0)
    a = MLPClassifier(**kw).fit(X, y, sample_weight=w)
    b = MLPClassifier(**kw).fit(X[w > 0], y[w > 0])
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-10)
    for p, q in zip(a.coefs_, b.coefs_):
        np.testing.assert_allclose(p, q, rtol=1e-9, atol=1e-12)


def test_sample_weight_scales_like_sklearn():
    """Integer weights, full batch, SGD: the same weighted loss and L2 scaling as scikit-learn."""
    X, y = small_clf(n=60)
    w = np.random.default_rng(0).integers(1, 4, len(y)).astype(float)
    kw = dict(solver="sgd", batch_size=1000, shuffle=False, max_iter=5, random_state=0, alpha=0.5, tol=0)
    ours = MLPClassifier(dtype="float64", **kw).fit(X, y, sample_weight=w)
    ref = sk_nn.MLPClassifier(**kw).fit(X, y, sample_weight=w)
    np.testing.assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=1e-9)


def test_class_weight_balanced_is_sample_weight():
    X, y = small_clf(n=90)
    from sklearn.utils.class_weight import compute_sample_weight
    kw = dict(max_iter=5, random_state=0, dtype="float64")
    a = MLPClassifier(class_weight="balanced", **kw).fit(X, y)
    b = MLPClassifier(**kw).fit(X, y, sample_weight=compute_sample_weight("balanced", y))
    np.testing.assert_allclose(a.coefs_[0], b.coefs_[0])


def test_warm_start_continues_and_checks_classes():
    X, y = small_clf()
    clf = MLPClassifier(max_iter=5, warm_start=True, random_state=0).fit(X, y)
    first = [c.copy() for c in clf.coefs_]
    clf.fit(X, y)
    assert len(clf.loss_curve_) == 10 and clf.n_iter_ == 5 and clf.t_ == 10 * len(X)
    assert not np.allclose(first[0], clf.coefs_[0])
    with pytest.raises(ValueError, match="warm_start"):
        clf.fit(X[y < 2], y[y < 2])
    cold = MLPClassifier(max_iter=5, random_state=0).fit(X, y)
    cold.fit(X, y)
    assert len(cold.loss_curve_) == 5


def test_partial_fit():
    X, y = small_clf()
    clf = MLPClassifier(random_state=0)
    with pytest.raises(ValueError, match="classes"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[y < 2], y[y < 2], classes=[0, 1, 2])
    assert clf.n_iter_ == 1 and list(clf.classes_) == [0, 1, 2]
    for _ in range(30):
        clf.partial_fit(X, y)
    assert clf.t_ == (y < 2).sum() + 30 * len(X) and clf.score(X, y) > 0.7
    with pytest.raises(ValueError, match="classes"):
        clf.partial_fit(X, y + 5)
    with pytest.raises(ValueError, match="early_stopping"):
        MLPClassifier(early_stopping=True).partial_fit(X, y, classes=[0, 1, 2])
    reg = MLPRegressor(random_state=0)
    for _ in range(3):
        reg.partial_fit(X, X[:, 0])
    assert reg.n_iter_ == 1 and len(reg.loss_curve_) == 3


def test_early_stopping():
    X, y = load_digits(return_X_y=True)
    clf = MLPClassifier(early_stopping=True, random_state=0, max_iter=200).fit(X / 16, y)
    assert clf.best_loss_ is None and len(clf.validation_scores_) == clf.n_iter_ < 200
    assert clf.best_validation_score_ == max(clf.validation_scores_) > 0.9
    reg = MLPRegressor(early_stopping=True, random_state=0, max_iter=50).fit(X / 16, y.astype(float))
    assert len(reg.validation_scores_) == reg.n_iter_


def test_sgd_learning_rate_schedules():
    X, y = small_clf()
    for lr in ("constant", "invscaling", "adaptive"):
        clf = MLPClassifier(solver="sgd", learning_rate=lr, learning_rate_init=0.1, max_iter=50,
                            random_state=0).fit(X, y)
        assert np.isfinite(clf.loss_)


def test_errors_name_the_argument():
    X, y = small_clf()
    with pytest.raises(ValueError, match="sample_weight"):
        MLPClassifier().fit(X, y, sample_weight=np.ones(3))
    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        MLPClassifier(hidden_layer_sizes=(3, 0)).fit(X, y)
    with pytest.raises(ValueError, match="dropout"):
        MLPClassifier(dropout=1.0).fit(X, y)


def test_importing_pydl_does_not_import_sklearn():
    code = "import sys, pydl; assert 'sklearn' not in sys.modules; import pydl.sklearn; print(pydl.sklearn.MLPClassifier)"
    # cwd: "python -c" puts the working directory first on sys.path; run beside the pydl this test imported
    subprocess.run([sys.executable, "-c", code], check=True, cwd=os.path.dirname(os.path.dirname(pydl.__file__)))
