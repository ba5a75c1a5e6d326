"""pydl.sklearn.MLPClassifier against scikit-learn's MLPClassifier on digits, same run, same settings.

Protocol (issue 11, the bar): the bundled UCI digits (1797 x 64) scaled by /16, a stratified 75/25
split (random_state=0); both estimators with scikit-learn's defaults (hidden_layer_sizes=(100,),
relu, adam lr 1e-3, batch_size "auto" = 200, alpha 1e-4, max_iter 200, tol 1e-4,
n_iter_no_change 10), random_state = 0, 1, 2; fit time summed over the seeds, test accuracy
averaged. One thread for everyone (pydl.set_num_threads(1), threadpoolctl for numpy's BLAS).
pydl computes in float32 (its default ``dtype``), scikit-learn in float64 (its dtype for float64 X).

Bar: mean accuracy within 1 point of scikit-learn's, and fit >= 3x faster.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/bench_sklearn.py
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m pytest bench/bench_sklearn.py --benchmark-enable
"""
import time
import warnings

import numpy as np
import pytest

import pydl

SEEDS = (0, 1, 2)
IMPLS = ("scikit-learn", "pydl.sklearn")
_RESULTS = {}


def digits_split():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, test_size=0.25, random_state=0, stratify=y)


def estimator(impl, seed):
    if impl == "scikit-learn":
        from sklearn.neural_network import MLPClassifier
    else:
        from pydl.sklearn import MLPClassifier
    return MLPClassifier(hidden_layer_sizes=(100,), solver="adam", max_iter=200, random_state=seed)


def run(impl):
    """(mean test accuracy, fit seconds summed over the seeds, mean epochs)."""
    from threadpoolctl import threadpool_limits
    Xtr, Xte, ytr, yte = digits_split()
    before = pydl.get_num_threads()
    pydl.set_num_threads(1)
    accs, seconds, epochs = [], 0.0, []
    try:
        with threadpool_limits(1), warnings.catch_warnings():
            warnings.simplefilter("ignore")             # ConvergenceWarning at max_iter, both alike
            for seed in SEEDS:
                clf = estimator(impl, seed)
                t0 = time.perf_counter()
                clf.fit(Xtr, ytr)
                seconds += time.perf_counter() - t0
                accs.append(clf.score(Xte, yte))
                epochs.append(clf.n_iter_)
    finally:
        pydl.set_num_threads(before)
    return float(np.mean(accs)), seconds, float(np.mean(epochs))


def report(rows):
    print(f"digits, MLPClassifier defaults (100,), adam, max_iter 200, seeds {SEEDS}, 1 thread")
    print(f"{'estimator':<14} {'mean acc':>9} {'fit s':>7} {'epochs':>7}")
    for impl, (acc, sec, ep) in rows.items():
        print(f"{impl:<14} {acc:9.4f} {sec:7.2f} {ep:7.1f}")
    if len(rows) == 2:
        print(f"speed-up of pydl.sklearn over scikit-learn: {rows[IMPLS[0]][1] / rows[IMPLS[1]][1]:.1f}x, "
              f"accuracy difference {rows[IMPLS[1]][0] - rows[IMPLS[0]][0]:+.4f}")


@pytest.mark.parametrize("impl", IMPLS)
def test_mlp_classifier_digits(benchmark, throughput, bench_threads, impl):
    pytest.importorskip("sklearn")
    _RESULTS[impl] = benchmark.pedantic(run, args=(impl,), rounds=1, iterations=1)
    # rate = fits per second of the whole protocol: the ratio printed is the speed-up
    throughput.record(benchmark, "MLPClassifier digits fit (3 seeds)", impl, 1.0, unit="fits/s", scale=1.0,
                      baseline="scikit-learn")
    if len(_RESULTS) == 2:
        report(_RESULTS)
        (acc_sk, sec_sk, _), (acc_pd, sec_pd, _) = (_RESULTS[i] for i in IMPLS)
        assert acc_pd >= acc_sk - 0.01
        assert sec_sk >= 3.0 * sec_pd


if __name__ == "__main__":
    report({impl: run(impl) for impl in IMPLS})
