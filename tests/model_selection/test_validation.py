"""cross_validate and bias_variance_decomp with small deterministic stand-ins for the Trainer."""
import sys

import numpy as np
import pytest

import pydl
from pydl import _random
from pydl.model_selection import KFold, StratifiedKFold, bias_variance_decomp, cross_validate


class LeastSquares:
    """Affine least squares; evaluate -> {"loss": MSE}. ``jitter`` adds N(0, jitter^2) from
    pydl's global generator to the weights (a stand-in for random initialisation)."""

    def __init__(self, jitter=0.0):
        self.jitter = jitter
        self.seen = None

    def fit(self, X, y, epochs=1, verbose=0):
        A = np.c_[X, np.ones(len(X))]
        self.w = np.linalg.lstsq(A, y, rcond=None)[0]
        if self.jitter:
            self.w = self.w + self.jitter * _random.generator().standard_normal(self.w.shape)
        self.seen = X[:, 0].copy()
        return self

    def predict(self, X, batch_size=256):
        return np.c_[X, np.ones(len(X))] @ self.w

    def evaluate(self, X, y, batch_size=256):
        return {"loss": float(np.mean((self.predict(X) - y) ** 2))}


class NearestCentroid:
    """evaluate -> {"loss": mean distance to the true centroid, "accuracy": ...}; predict -> (n, C) scores."""

    def fit(self, X, y, **kw):
        self.classes = np.unique(y)
        self.centroids = np.stack([X[y == c].mean(axis=0) for c in self.classes])
        return self

    def predict(self, X, batch_size=256):
        return -np.linalg.norm(X[:, None, :] - self.centroids[None], axis=2)

    def evaluate(self, X, y, batch_size=256):
        scores = self.predict(X)
        pred = self.classes[np.argmax(scores, axis=1)]
        return {"loss": float(np.mean(-scores[np.arange(len(y)), np.searchsorted(self.classes, y)])),
                "accuracy": float(np.mean(pred == y))}


def _regression(n=60, seed=0):
    rng = np.random.default_rng(seed)
    X = np.c_[np.arange(n, dtype=float), rng.standard_normal((n, 2))]
    y = X @ np.array([0.1, 2.0, -1.0]) + 0.5 + 0.3 * rng.standard_normal(n)
    return X, y


def _blobs(n_per=30, seed=0):
    rng = np.random.default_rng(seed)
    X = np.concatenate([rng.standard_normal((n_per, 2)) + 3 * c for c in range(3)])
    y = np.repeat(np.arange(3), n_per)
    return X, y


def test_cross_validate_fold_bookkeeping_and_scores():
    X, y = _regression()
    built = []

    def build():
        built.append(LeastSquares())
        return built[-1]

    res = cross_validate(build, X, y, cv=4, fit_kwargs={"epochs": 3})
    folds = list(KFold(4).split(X))   # float y -> KFold
    assert len(built) == 4
    for k, (tr, te) in enumerate(folds):
        np.testing.assert_array_equal(built[k].seen, X[tr, 0])
        A = np.c_[X, np.ones(len(X))]
        w = np.linalg.lstsq(A[tr], y[tr], rcond=None)[0]
        test_mse, train_mse = np.mean((A[te] @ w - y[te]) ** 2), np.mean((A[tr] @ w - y[tr]) ** 2)
        # no metric besides "loss": the score is -loss
        assert res["test_score"][k] == pytest.approx(-test_mse, rel=1e-10)
        assert res["train_score"][k] == pytest.approx(-train_mse, rel=1e-10)
        assert res["test_loss"][k] == pytest.approx(test_mse, rel=1e-10)
        assert res["test_metrics"][k]["loss"] == pytest.approx(test_mse, rel=1e-10)
    for key in ("test_score", "train_score", "fit_time", "score_time", "test_loss", "train_loss"):
        assert isinstance(res[key], np.ndarray) and res[key].shape == (4,)
    assert np.all(res["fit_time"] >= 0) and np.all(res["score_time"] >= 0)
    assert np.all(res["train_score"] >= res["test_score"].min() - 1)


def test_cross_validate_classification_uses_stratified_folds_and_accuracy():
    X, y = _blobs()
    res = cross_validate(NearestCentroid, X, y, cv=3)
    for k, (tr, te) in enumerate(StratifiedKFold(3).split(X, y)):
        m = NearestCentroid().fit(X[tr], y[tr])
        assert res["test_score"][k] == m.evaluate(X[te], y[te])["accuracy"]
        assert res["train_score"][k] == m.evaluate(X[tr], y[tr])["accuracy"]
    assert np.all(res["test_score"] > 0.9)
    assert set(res) >= {"test_accuracy", "train_accuracy", "test_loss", "train_loss"}
    neg = cross_validate(NearestCentroid, X, y, cv=3, scoring="neg_loss")
    np.testing.assert_array_equal(neg["test_score"], -res["test_loss"])
    by_name = cross_validate(NearestCentroid, X, y, cv=3, scoring="loss")
    np.testing.assert_array_equal(by_name["test_score"], res["test_loss"])
    custom = cross_validate(NearestCentroid, X, y, cv=3, scoring=lambda t, Xf, yf: len(yf))
    np.testing.assert_array_equal(custom["test_score"], [30, 30, 30])


def test_cross_validate_accepts_scikit_learn_splitters():
    sk = pytest.importorskip("sklearn.model_selection")
    X, y = _blobs()
    cv = sk.ShuffleSplit(n_splits=3, test_size=0.3, random_state=0)
    res = cross_validate(NearestCentroid, X, y, cv=cv)
    for k, (tr, te) in enumerate(cv.split(X, y)):
        m = NearestCentroid().fit(X[tr], y[tr])
        assert res["test_score"][k] == m.evaluate(X[te], y[te])["accuracy"]


def test_cross_validate_reproducible_and_independent_of_n_jobs():
    pytest.importorskip("joblib")
    try:
        from joblib.externals import cloudpickle
    except ImportError:   # joblib >= 1.6 uses the cloudpickle package
        cloudpickle = pytest.importorskip("cloudpickle")
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # test module is not importable by name
    X, y = _regression()
    build = lambda: LeastSquares(jitter=0.1)  # noqa: E731  (uses pydl's global generator)
    pydl.manual_seed(0)
    a = cross_validate(build, X, y, cv=3)
    pydl.manual_seed(0)
    b = cross_validate(build, X, y, cv=3, n_jobs=2)
    pydl.manual_seed(1)
    c = cross_validate(build, X, y, cv=3)
    np.testing.assert_array_equal(a["test_score"], b["test_score"])
    np.testing.assert_array_equal(a["train_score"], b["train_score"])
    assert not np.array_equal(a["test_score"], c["test_score"])


def test_cross_validate_bad_args():
    X, y = _regression()
    with pytest.raises(ValueError, match="X has 60, y has 59"):
        cross_validate(LeastSquares, X, y[:-1])
    with pytest.raises(TypeError, match="build"):
        cross_validate(LeastSquares(), X, y)
    with pytest.raises(ValueError, match="cv"):
        cross_validate(LeastSquares, X, y, cv=1)
    with pytest.raises(TypeError, match="cv"):
        cross_validate(LeastSquares, X, y, cv="five")
    with pytest.raises(ValueError, match="n_jobs"):
        cross_validate(LeastSquares, X, y, n_jobs=0)
    with pytest.raises(ValueError, match="scoring"):
        cross_validate(LeastSquares, X, y, scoring="accuracy")


# ------------------------------------------------------------------ bias-variance

def test_bias_variance_mse_identity_and_reference():
    X, y = _regression(40, seed=1)
    Xt, yt = _regression(25, seed=2)
    exp, bias, var = bias_variance_decomp(LeastSquares, X, y, Xt, yt, num_rounds=30, random_seed=7)
    assert exp == pytest.approx(bias + var, rel=1e-12)
    # recompute the bootstrap rounds by hand
    rng = np.random.default_rng(7)
    preds = []
    for _ in range(30):
        idx = rng.integers(0, 40, size=40)
        preds.append(LeastSquares().fit(X[idx], y[idx]).predict(Xt))
    preds = np.array(preds)
    main = preds.mean(axis=0)
    assert exp == pytest.approx(np.mean([np.mean((p - yt) ** 2) for p in preds]), rel=1e-12)
    assert bias == pytest.approx(np.mean((main - yt) ** 2), rel=1e-12)
    assert var == pytest.approx(np.mean(np.var(preds, axis=0)), rel=1e-12)
    assert var > 0
    # same seed, same numbers; (n, 1) targets and predictions work too
    again = bias_variance_decomp(LeastSquares, X, y[:, None], Xt, yt[:, None], num_rounds=30, random_seed=7)
    np.testing.assert_allclose(again, (exp, bias, var), rtol=1e-12)


class Constant:
    def __init__(self, value):
        self.value = value

    def fit(self, X, y, **kw):
        return self

    def predict(self, X, batch_size=256):
        return np.full(len(X), self.value)


def test_bias_variance_data_independent_model_has_no_variance():
    X, y = _regression(20)
    yt = np.array([1.0, -2.0, 3.0])
    exp, bias, var = bias_variance_decomp(lambda: Constant(0.5), X, y, np.zeros((3, 3)), yt, num_rounds=5)
    assert var == 0.0 and exp == bias == pytest.approx(np.mean((0.5 - yt) ** 2))
    exp, bias, var = bias_variance_decomp(lambda: Constant(2), X, y, np.zeros((4, 1)),
                                          np.array([2, 1, 2, 0]), loss="0-1_loss", num_rounds=4)
    assert (exp, bias, var) == (0.5, 0.5, 0.0)


class Scripted:
    """Round r predicts ROWS[r] (one-hot scores), whatever the data."""
    ROWS = [[0, 1, 2], [0, 1, 1], [1, 2, 2], [1, 0, 2]]
    calls = 0

    def fit(self, X, y, **kw):
        self.row = Scripted.ROWS[Scripted.calls % 4]
        Scripted.calls += 1
        return self

    def predict(self, X, batch_size=256):
        return np.eye(3)[self.row]


def test_bias_variance_zero_one_by_hand():
    Scripted.calls = 0
    # main prediction per column: {0,0,1,1} -> 0 (tie: smallest), {1,1,2,0} -> 1, {2,1,2,2} -> 2
    exp, bias, var = bias_variance_decomp(Scripted, np.zeros((5, 1)), np.zeros(5, int),
                                          np.zeros((3, 1)), np.array([1, 1, 2]),
                                          loss="0-1_loss", num_rounds=4)
    assert bias == pytest.approx(1 / 3)                 # main = [0, 1, 2] vs y = [1, 1, 2]
    assert exp == pytest.approx(5 / 12)                 # 1 + 2 + 1 + 1 errors of 12
    assert var == pytest.approx(5 / 12)                 # 0 + 1 + 2 + 2 disagreements with main


def test_bias_variance_zero_one_nearest_centroid():
    X, y = _blobs(20, seed=3)
    Xt, yt = _blobs(10, seed=4)
    exp, bias, var = bias_variance_decomp(NearestCentroid, X, y, Xt, yt, loss="0-1_loss",
                                          num_rounds=20, random_seed=0)
    assert 0 <= bias <= exp < 0.2 and 0 <= var < 0.2


def test_bias_variance_bad_args():
    X, y = _regression(10)
    with pytest.raises(ValueError, match="loss"):
        bias_variance_decomp(LeastSquares, X, y, X, y, loss="mae")
    with pytest.raises(ValueError, match="num_rounds"):
        bias_variance_decomp(LeastSquares, X, y, X, y, num_rounds=0)
    with pytest.raises(ValueError, match="X_train has 10, y_train has 9"):
        bias_variance_decomp(LeastSquares, X, y[:-1], X, y)
    with pytest.raises(ValueError, match="NaN"):
        bias_variance_decomp(LeastSquares, X, y, X, np.full(10, np.nan))
    with pytest.raises(ValueError, match="predict"):
        bias_variance_decomp(LeastSquares, X, y, X, np.zeros((10, 2)), num_rounds=1)
    with pytest.raises(ValueError, match="non-integer"):
        bias_variance_decomp(lambda: Constant(0.5), X, y, X, np.zeros(10, int), loss="0-1_loss", num_rounds=1)
