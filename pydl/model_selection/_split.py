"""K-fold splitters and train_test_split, with scikit-learn's fold arithmetic.

With ``shuffle=False`` the folds equal scikit-learn's exactly. With ``shuffle=True`` the
permutations come from ``np.random.default_rng(random_state)`` (or pydl's global generator
when random_state is None), so they are reproducible but differ from scikit-learn's, which uses
the legacy ``np.random.RandomState``.
"""
from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from .._random import make_rng, rng_or_global
from .._typing import Array, SeedLike
from .._validate import check_bool, check_int


def num_samples(a, name):
    if not hasattr(a, "__len__") and not hasattr(a, "shape"):
        raise TypeError(f"{name}: expected an array-like of samples, got {type(a).__name__}")
    shape = getattr(a, "shape", None)
    if shape is not None:
        if len(shape) == 0:
            raise TypeError(f"{name}: expected an array of samples, got a scalar")
        return int(shape[0])
    return len(a)


def check_consistent_length(arrays, names):
    lengths = [num_samples(a, nm) for a, nm in zip(arrays, names)]
    if len(set(lengths)) > 1:
        desc = ", ".join(f"{nm} has {n}" for nm, n in zip(names, lengths))
        raise ValueError(f"inconsistent numbers of samples: {desc}")
    return lengths[0] if lengths else 0


def _encode_classes(y):
    """Labels of ``y`` as 0..K-1 numbered by order of first appearance, and the class counts."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"y: expected 1-D class labels for stratification, got shape {y.shape}")
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            raise ValueError("y: stratification needs class labels; got continuous (non-integer, NaN "
                             "or inf) float values")
    _, first, inverse = np.unique(y, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))   # rank of each sorted class by first appearance
    codes = order[inverse.reshape(-1)]
    return codes, np.bincount(codes)


class _BaseKFold:
    def __init__(self, n_splits: int = 5, shuffle: bool = False, random_state: SeedLike = None) -> None:
        self.n_splits = check_int(n_splits, "n_splits", low=2)
        self.shuffle = check_bool(shuffle, "shuffle")
        if not self.shuffle and random_state is not None:
            raise ValueError("random_state: has no effect since shuffle is False; leave it None "
                             "or set shuffle=True")
        make_rng(random_state, "random_state")  # validate now
        self.random_state = random_state

    def _rng(self):
        # a fresh Generator per split() call: the same folds each time for an int seed
        return rng_or_global(make_rng(self.random_state, "random_state"))

    def _test_folds(self, X: Array, y: Array | None, n: int) -> Array:
        """The fold (0 .. n_splits - 1) of each of the n samples."""
        raise NotImplementedError

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """The number of folds."""
        return self.n_splits

    def _check_n(self, X):
        n = num_samples(X, "X")
        if self.n_splits > n:
            raise ValueError(f"n_splits: cannot be greater than the number of samples, got "
                             f"n_splits={self.n_splits} and {n} samples")
        return n

    def split(self, X: Array, y: Array | None = None, groups: Any = None) -> Iterator[tuple[Array, Array]]:
        """Yield (train_idx, test_idx) int arrays, one pair per fold."""
        n = self._check_n(X)
        fold_of = self._test_folds(X, y, n)
        indices = np.arange(n)
        for k in range(self.n_splits):
            test = fold_of == k
            yield indices[~test], indices[test]

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(n_splits={self.n_splits}, shuffle={self.shuffle}, "
                f"random_state={self.random_state!r})")


class KFold(_BaseKFold):
    """K-fold cross-validation: the samples (shuffled first if ``shuffle``) are cut into
    ``n_splits`` consecutive folds; the first n % n_splits folds have n // n_splits + 1
    samples, the others n // n_splits (scikit-learn's sizes). Each fold is the test set once.
    """

    def _test_folds(self, X, y, n):
        sizes = np.full(self.n_splits, n // self.n_splits)
        sizes[: n % self.n_splits] += 1
        order = self._rng().permutation(n) if self.shuffle else np.arange(n)
        fold_of = np.empty(n, dtype=np.intp)
        fold_of[order] = np.repeat(np.arange(self.n_splits), sizes)
        return fold_of


class StratifiedKFold(_BaseKFold):
    """K-fold keeping the class proportions of ``y`` in every fold, with scikit-learn's allocation.

    Allocation: number the classes 0..K-1 by first appearance in y and list the labels sorted
    by that number; deal that list round-robin to the folds (position p goes to fold
    p mod n_splits). Fold f then holds, of class k, as many samples as the dealt list gave it.
    Within class k, its samples in their original order go to fold 0 first (as many as fold 0
    gets), then fold 1, and so on; with ``shuffle`` the samples of each class are shuffled
    first. Raises ValueError when n_splits exceeds every class's size; warns when it exceeds
    the smallest one.
    """

    def _allocation(self, counts):
        """(n_splits, K) matrix: samples of class k in fold f, from the round-robin deal."""
        k_folds = self.n_splits
        ends = np.cumsum(counts)                 # class k occupies positions [ends-counts, ends)
        starts = ends - counts
        f = np.arange(k_folds)[:, None]
        # number of positions p < e with p mod K == f is ceil((e - f) / K) for e >= f, else 0
        below = lambda e: np.maximum(-((f - e) // k_folds), 0)  # noqa: E731
        return below(ends[None, :]) - below(starts[None, :])

    def _test_folds(self, X, y, n):
        if y is None:
            raise ValueError("y: StratifiedKFold.split needs the class labels y, got None")
        if num_samples(y, "y") != n:
            raise ValueError(f"X and y: inconsistent numbers of samples, X has {n}, y has {num_samples(y, 'y')}")
        codes, counts = _encode_classes(y)
        if np.all(counts < self.n_splits):
            raise ValueError(f"n_splits={self.n_splits}: cannot be greater than the number of "
                             f"members in each class (largest class has {counts.max()})")
        if counts.min() < self.n_splits:
            warnings.warn(f"The least populated class in y has only {counts.min()} members, which is "
                          f"less than n_splits={self.n_splits}.", UserWarning, stacklevel=3)
        alloc = self._allocation(counts)
        rng = self._rng() if self.shuffle else None
        fold_of = np.empty(n, dtype=np.intp)
        for k in range(len(counts)):
            members = np.flatnonzero(codes == k)
            if rng is not None:
                members = rng.permutation(members)
            fold_of[members] = np.repeat(np.arange(self.n_splits), alloc[:, k])
        return fold_of


def _split_sizes(n, test_size, train_size):
    """(n_train, n_test) as scikit-learn: n_test = ceil(test_size * n), n_train = floor(train_size * n)."""
    def check(size, name):
        if size is None:
            return None
        if isinstance(size, (bool, np.bool_)) or not isinstance(size, numbers.Real):
            raise TypeError(f"{name}: expected a float in (0, 1), an int or None, got {type(size).__name__}")
        if isinstance(size, numbers.Integral):
            if not 0 < size < n:
                raise ValueError(f"{name}: an int size must be in [1, {n - 1}] for {n} samples, got {size}")
            return int(size)
        size = float(size)
        if not 0.0 < size < 1.0:   # also rejects NaN
            raise ValueError(f"{name}: a float size must be in (0, 1), got {size}")
        return size

    test_size, train_size = check(test_size, "test_size"), check(train_size, "train_size")
    if test_size is None and train_size is None:
        test_size = 0.25
    if (isinstance(test_size, float) and isinstance(train_size, float)
            and test_size + train_size > 1.0):
        raise ValueError(f"test_size + train_size: must be at most 1, got {test_size + train_size}")
    n_test = None if test_size is None else (
        math.ceil(test_size * n) if isinstance(test_size, float) else test_size)
    n_train = None if train_size is None else (
        math.floor(train_size * n) if isinstance(train_size, float) else train_size)
    if n_train is None:
        n_train = n - n_test
    elif n_test is None:
        n_test = n - n_train
    if n_train + n_test > n:
        raise ValueError(f"train_size + test_size: {n_train} + {n_test} samples exceed the {n} available")
    if n_train == 0 or n_test == 0:
        raise ValueError(f"test_size={test_size}, train_size={train_size}: with {n} samples one "
                         f"of the sets would be empty")
    return n_train, n_test


def _stratified_counts(counts, n_draw, rng):
    """Per-class counts summing to n_draw, proportional to ``counts``: floors, then the leftover
    samples go to the classes with the largest remainders (ties broken at random)."""
    exact = counts * n_draw / counts.sum()
    out = np.floor(exact).astype(np.intp)
    left = n_draw - out.sum()
    if left:
        rem = exact - out
        order = np.lexsort((rng.random(len(counts)), -rem))
        out[order[:left]] += 1
    return out


def _index(a, idx):
    if isinstance(a, np.ndarray):
        return a[idx]
    if hasattr(a, "iloc"):           # pandas
        return a.iloc[idx]
    if isinstance(a, list):
        return [a[i] for i in idx]
    return np.asarray(a)[idx]


def train_test_split(*arrays: Array, test_size: float | int | None = None, train_size: float | int | None = None,
                     shuffle: bool = True, stratify: Array | None = None, random_state: SeedLike = None) -> list[Array]:
    """Split arrays into random train and test subsets (scikit-learn's semantics).

    Sizes: a float is a fraction (n_test = ceil(test_size * n), n_train = floor(train_size * n)),
    an int a count; if neither is given test_size = 0.25; the unset one takes the rest.
    Without shuffling the first n_train samples are the train set and the next n_test the test
    set (exactly scikit-learn's). With ``stratify`` (class labels), each class contributes to
    the test set in proportion to its size (largest remainders), drawn at random.

    Returns
    -------
    list: [a_train, a_test, b_train, b_test, ...], each indexed like its input (ndarray, list).
    """
    if not arrays:
        raise ValueError("arrays: at least one array is required")
    names = [f"arrays[{i}]" for i in range(len(arrays))]
    n = check_consistent_length(arrays, names)
    if n < 2:
        raise ValueError(f"arrays: need at least 2 samples to split, got {n}")
    shuffle = check_bool(shuffle, "shuffle")
    n_train, n_test = _split_sizes(n, test_size, train_size)
    if not shuffle:
        if stratify is not None:
            raise ValueError("stratify: a stratified split needs shuffle=True")
        if random_state is not None:
            make_rng(random_state, "random_state")
        train, test = np.arange(n_train), np.arange(n_train, n_train + n_test)
    else:
        rng = rng_or_global(make_rng(random_state, "random_state"))
        if stratify is None:
            perm = rng.permutation(n)
            test, train = perm[:n_test], perm[n_test:n_test + n_train]
        else:
            if num_samples(stratify, "stratify") != n:
                raise ValueError(f"stratify: expected {n} labels, got {num_samples(stratify, 'stratify')}")
            codes, counts = _encode_classes(stratify)
            if counts.min() < 2:
                raise ValueError("stratify: the least populated class has only 1 member; every class "
                                 "needs at least 2")
            k = len(counts)
            if n_test < k or n_train < k:
                raise ValueError(f"test_size, train_size: each set needs at least one sample per "
                                 f"class ({k} classes), got n_train={n_train}, n_test={n_test}")
            c_test = _stratified_counts(counts, n_test, rng)
            c_train = _stratified_counts(counts - c_test, n_train, rng)
            train_parts, test_parts = [], []
            for j in range(k):
                members = rng.permutation(np.flatnonzero(codes == j))
                test_parts.append(members[: c_test[j]])
                train_parts.append(members[c_test[j]: c_test[j] + c_train[j]])
            train = rng.permutation(np.concatenate(train_parts))
            test = rng.permutation(np.concatenate(test_parts))
    out = []
    for a in arrays:
        out += [_index(a, train), _index(a, test)]
    return out
