"""Digits, 5-fold cross-validation: pydl's MLP against scikit-learn's MLPClassifier, same run.

Protocol (issue 4, the bar): the bundled UCI digits (1797 x 64), inputs scaled to [0, 1] by /16;
5-fold StratifiedKFold (shuffled, random_state=0); MLP 64-128-64-10 with ReLU, softmax
cross-entropy, Adam lr 1e-3, batch 32, 60 epochs, no regularization; accuracy on each held-out
fold. pydl runs twice: default (PyTorch) init, and He init (nn.init.kaiming_uniform_ on the
weights, zero biases). scikit-learn: MLPClassifier(hidden_layer_sizes=(128, 64), solver="adam",
learning_rate_init=1e-3, batch_size=32, max_iter=60, alpha=0, tol=0, n_iter_no_change=10**9)
on the same folds, so it runs all 60 epochs. Both on one thread (pydl.set_num_threads(1),
threadpoolctl for scikit-learn's BLAS); the time is the fit time summed over the folds, by the
process's CPU time (on the shared 2-core machine it leaves out the time other processes hold the
core; each library runs one thread).

Bars: mean accuracy >= 0.965 (default init, issue 4) and >= 0.975 (He init); pydl >= 6x faster
than scikit-learn (issue 9; both inits train at the same speed).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/bench_digits_cv.py
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m pytest bench/bench_digits_cv.py --benchmark-enable
"""
import time
import warnings

import numpy as np

import pydl
from pydl import nn, optim
from pydl.datasets import load_digits
from pydl.model_selection import StratifiedKFold
from pydl.train import Trainer

EPOCHS, BATCH, LR, SEED = 60, 32, 1e-3, 0


def digits():
    d = load_digits()
    return np.asarray(d.data, dtype=np.float32) / 16.0, np.asarray(d.target, dtype=np.int64)


def folds(x, y):
    return list(StratifiedKFold(n_splits=5, shuffle=True, random_state=SEED).split(x, y))


def build_mlp(init):
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))
    if init == "he":
        for name, p in model.named_parameters():
            if name.endswith("weight"):
                nn.init.kaiming_uniform_(p, nonlinearity="relu")
            else:
                nn.init.zeros_(p)
    return model


def pydl_cv(x, y, splits, init):
    """(accuracies per fold, fit seconds summed over folds)."""
    accs, seconds = [], 0.0
    for k, (tr, te) in enumerate(splits):
        pydl.manual_seed(SEED + k)
        model = build_mlp(init)
        trainer = Trainer(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=LR))
        t0 = time.process_time()
        trainer.fit(x[tr], y[tr], epochs=EPOCHS, batch_size=BATCH, verbose=0)
        seconds += time.process_time() - t0
        accs.append(trainer.evaluate(x[te], y[te])["accuracy"])
    return np.array(accs), seconds


def sklearn_cv(x, y, splits):
    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits
    accs, seconds = [], 0.0
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")            # ConvergenceWarning: it runs all 60 epochs by design
        for k, (tr, te) in enumerate(splits):
            clf = MLPClassifier(hidden_layer_sizes=(128, 64), solver="adam", learning_rate_init=LR,
                                batch_size=BATCH, max_iter=EPOCHS, alpha=0.0, tol=0.0,
                                n_iter_no_change=10**9, random_state=SEED + k)
            t0 = time.process_time()
            clf.fit(x[tr], y[tr])
            seconds += time.process_time() - t0
            assert clf.n_iter_ == EPOCHS
            accs.append(clf.score(x[te], y[te]))
    return np.array(accs), seconds


def blas_info():
    try:
        from threadpoolctl import threadpool_info
        return ", ".join(sorted({f"{i.get('internal_api')} {i.get('architecture')}" for i in threadpool_info()
                                 if i.get("user_api") == "blas"}))
    except ImportError:
        return "unknown"


def run():
    pydl.set_num_threads(1)
    x, y = digits()
    splits = folds(x, y)
    rows = {"pydl, default init": pydl_cv(x, y, splits, "default"),
            "pydl, He init": pydl_cv(x, y, splits, "he")}
    try:
        rows["scikit-learn MLPClassifier"] = sklearn_cv(x, y, splits)
    except ImportError:
        pass
    return rows


def report(rows):
    print(f"digits 5-fold CV, MLP 64-128-64-10, Adam {LR:g}, batch {BATCH}, {EPOCHS} epochs, 1 thread "
          f"(pydl ISA {pydl.cpu_info()['isa']}; numpy BLAS {blas_info()})")
    print(f"{'model':<28} {'mean acc':>9} {'std':>7} {'fit s':>7} {'samples/s':>10}   (fit s: CPU time)")
    n_samples = 1797 * 4 / 5 * EPOCHS * 5
    for name, (accs, sec) in rows.items():
        print(f"{name:<28} {accs.mean():9.4f} {accs.std():7.4f} {sec:7.2f} {n_samples / sec:10.0f}")
    if "scikit-learn MLPClassifier" in rows:
        sk = rows["scikit-learn MLPClassifier"][1]
        for name in ("pydl, default init", "pydl, He init"):
            print(f"speed-up of {name} over scikit-learn: {sk / rows[name][1]:.1f}x")


def test_digits_cv_bar(benchmark):
    rows = benchmark.pedantic(run, rounds=1, iterations=1)
    report(rows)
    assert rows["pydl, default init"][0].mean() >= 0.965
    assert rows["pydl, He init"][0].mean() >= 0.975
    if "scikit-learn MLPClassifier" in rows:
        for name in ("pydl, default init", "pydl, He init"):
            assert rows["scikit-learn MLPClassifier"][1] >= 6.0 * rows[name][1], name


if __name__ == "__main__":
    report(run())
