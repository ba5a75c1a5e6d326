import warnings

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

import pydl
from pydl.model_selection import KFold, StratifiedKFold, train_test_split


def _folds(splitter, X, y=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return [(tr.tolist(), te.tolist()) for tr, te in splitter.split(X, y)]


def _labels(n, n_classes, skew, seed):
    """n labels of n_classes classes with geometric imbalance ``skew``, in a random order."""
    rng = np.random.default_rng(seed)
    p = skew ** np.arange(n_classes)
    return rng.choice(n_classes, size=n, p=p / p.sum()) * 3 - 1   # labels need not be 0..K-1


def _check_partition(folds, n):
    tests = np.concatenate([np.array(te, int) for _, te in folds])
    np.testing.assert_array_equal(np.sort(tests), np.arange(n))
    for tr, te in folds:
        assert sorted(tr + te) == list(range(n))


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 80), k=st.integers(2, 10))
def test_kfold_equals_scikit_learn(n, k):
    sk = pytest.importorskip("sklearn.model_selection")
    X = np.zeros((n, 2))
    if k > n:
        with pytest.raises(ValueError, match="n_splits"):
            list(KFold(k).split(X))
        return
    folds = _folds(KFold(k), X)
    assert folds == _folds(sk.KFold(k), X)
    assert [len(te) for _, te in folds] == [n // k + (i < n % k) for i in range(k)]


@settings(max_examples=80, deadline=None)
@given(n=st.integers(2, 120), k=st.integers(2, 8), n_classes=st.integers(1, 6),
       skew=st.sampled_from([1.0, 0.7, 0.4, 0.15]), seed=st.integers(0, 10**6))
def test_stratified_kfold_equals_scikit_learn(n, k, n_classes, skew, seed):
    sk = pytest.importorskip("sklearn.model_selection")
    y = _labels(n, n_classes, skew, seed)
    X = np.zeros((n, 1))
    try:
        expected = _folds(sk.StratifiedKFold(k), X, y)
    except ValueError:
        with pytest.raises(ValueError):
            _folds(StratifiedKFold(k), X, y)
        return
    assert _folds(StratifiedKFold(k), X, y) == expected


def test_stratified_kfold_string_and_float_labels():
    sk = pytest.importorskip("sklearn.model_selection")
    y = np.array(list("bbaccabcbbaacc"))
    X = np.zeros(len(y))
    assert _folds(StratifiedKFold(3), X, y) == _folds(sk.StratifiedKFold(3), X, y)
    yf = np.array([1.0, 0.0, 0.0, 1.0, 2.0, 2.0, 1.0, 0.0])
    assert _folds(StratifiedKFold(2), yf, yf) == _folds(sk.StratifiedKFold(2), yf, yf)
    with pytest.raises(ValueError, match="continuous"):
        list(StratifiedKFold(2).split(yf, yf + 0.5))


@settings(max_examples=40, deadline=None)
@given(n=st.integers(10, 100), k=st.integers(2, 6), n_classes=st.integers(2, 4), seed=st.integers(0, 1000))
def test_stratified_shuffle_is_a_valid_reproducible_stratified_partition(n, k, n_classes, seed):
    y = _labels(n, n_classes, 0.8, seed)
    assume(np.unique(y, return_counts=True)[1].max() >= k)
    X = np.zeros((n, 1))
    a = _folds(StratifiedKFold(k, shuffle=True, random_state=seed), X, y)
    assert a == _folds(StratifiedKFold(k, shuffle=True, random_state=seed), X, y)
    _check_partition(a, n)
    # same per-class fold counts as without shuffling (only which samples differ)
    plain = _folds(StratifiedKFold(k), X, y)
    for (_, te), (_, te0) in zip(a, plain):
        assert sorted(y[te].tolist()) == sorted(y[te0].tolist())


def test_kfold_shuffle_reproducible_and_global_seed():
    X = np.zeros((23, 1))
    a = _folds(KFold(4, shuffle=True, random_state=0), X)
    assert a == _folds(KFold(4, shuffle=True, random_state=0), X)
    assert a != _folds(KFold(4, shuffle=True, random_state=1), X)
    assert [len(te) for _, te in a] == [6, 6, 6, 5]
    _check_partition(a, 23)
    pydl.manual_seed(2)
    b = _folds(KFold(4, shuffle=True), X)
    pydl.manual_seed(2)
    assert b == _folds(KFold(4, shuffle=True), X)


def test_splitter_bad_args():
    with pytest.raises(ValueError, match="n_splits"):
        KFold(1)
    with pytest.raises(TypeError, match="n_splits"):
        KFold(2.5)
    with pytest.raises(ValueError, match="random_state"):
        KFold(3, random_state=0)
    with pytest.raises(ValueError, match="y"):
        list(StratifiedKFold(2).split(np.zeros(4)))
    with pytest.raises(ValueError, match="X has 4, y has 3"):
        list(StratifiedKFold(2).split(np.zeros(4), [0, 1, 0]))
    with pytest.raises(ValueError, match="each class"):
        list(StratifiedKFold(3).split(np.zeros(4), [0, 1, 1, 0]))
    with pytest.warns(UserWarning, match="least populated"):
        list(StratifiedKFold(3).split(np.zeros(7), [0, 1, 1, 1, 0, 1, 1]))
    assert KFold(4).get_n_splits() == 4


SIZES = [None, 0.1, 0.25, 0.33, 0.5, 0.9, 1, 3, 7, 30]


@settings(max_examples=80, deadline=None)
@given(n=st.integers(2, 40), test_size=st.sampled_from(SIZES), train_size=st.sampled_from(SIZES))
def test_train_test_split_equals_scikit_learn_without_shuffle(n, test_size, train_size):
    sk = pytest.importorskip("sklearn.model_selection")
    X, y = np.arange(2 * n).reshape(n, 2), np.arange(n) * 10
    kw = dict(test_size=test_size, train_size=train_size)
    try:
        expected = sk.train_test_split(X, y, shuffle=False, **kw)
    except ValueError:
        with pytest.raises(ValueError):
            train_test_split(X, y, shuffle=False, **kw)
        return
    got = train_test_split(X, y, shuffle=False, **kw)
    assert len(got) == 4
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)
    # with shuffling: the same sizes, disjoint, rows kept together, reproducible
    sh = train_test_split(X, y, random_state=5, **kw)
    assert [len(a) for a in sh] == [len(a) for a in expected]
    np.testing.assert_array_equal(sh[0][:, 0] * 5, sh[2])
    assert not set(sh[2].tolist()) & set(sh[3].tolist())
    for a, b in zip(sh, train_test_split(X, y, random_state=5, **kw)):
        np.testing.assert_array_equal(a, b)


def test_train_test_split_lists_and_defaults():
    a_tr, a_te = train_test_split(list(range(8)), shuffle=False)
    assert a_tr == [0, 1, 2, 3, 4, 5] and a_te == [6, 7]        # ceil(0.25 * 8) = 2
    tr, te = train_test_split(np.arange(10), test_size=0.25, random_state=0)
    assert len(te) == 3 and len(tr) == 7                        # ceil(2.5) = 3


def test_train_test_split_stratified():
    y = np.array([0] * 60 + [1] * 30 + [2] * 10)
    X = np.arange(100)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.2, stratify=y, random_state=0)
    assert len(y_te) == 20 and len(y_tr) == 80
    assert np.bincount(y_te).tolist() == [12, 6, 2]
    np.testing.assert_array_equal(y[X_te], y_te)
    assert sorted(X_tr.tolist() + X_te.tolist()) == list(range(100))
    # proportions rounded by largest remainders
    y = np.array([0] * 5 + [1] * 5 + [2] * 5)
    _, _, _, y_te = train_test_split(np.zeros(15), y, test_size=4, stratify=y, random_state=1)
    counts = np.bincount(y_te, minlength=3)
    assert counts.sum() == 4 and counts.min() >= 1 and counts.max() == 2


def test_train_test_split_bad_args():
    X = np.zeros(10)
    with pytest.raises(ValueError, match="inconsistent numbers of samples.*10.*9"):
        train_test_split(X, np.zeros(9))
    with pytest.raises(ValueError, match="at least one array"):
        train_test_split()
    with pytest.raises(ValueError, match="test_size"):
        train_test_split(X, test_size=float("nan"))
    with pytest.raises(ValueError, match="test_size"):
        train_test_split(X, test_size=1.5)
    with pytest.raises(ValueError, match="test_size"):
        train_test_split(X, test_size=10)
    with pytest.raises(TypeError, match="test_size"):
        train_test_split(X, test_size="half")
    with pytest.raises(ValueError, match="exceed"):
        train_test_split(X, test_size=6, train_size=5)
    with pytest.raises(ValueError, match="shuffle=True"):
        train_test_split(X, shuffle=False, stratify=np.zeros(10))
    with pytest.raises(ValueError, match="only 1 member"):
        train_test_split(X, stratify=np.array([0] * 9 + [1]))
