"""Folds and searches on a cluster: cross_validate, bias_variance_decomp and pydl.sklearn's
MLPClassifier in GridSearchCV under joblib's Dask backend (a distributed.LocalCluster of two
worker processes) and Ray's (ray.init(num_cpus=2)), against n_jobs=1 in this process.

One cluster per backend for the whole module (a module-scoped fixture, torn down even when a
test fails); everything talks over loopback. A backend whose package is missing is skipped. A
watchdog ends the test process (with every thread's traceback) if a backend hangs.

What the workers receive must unpickle there: Dask pickles a joblib task with plain pickle,
which refers to functions by module name, and this test module is not importable in a worker.
So ``build`` is ``functools.partial(copy.deepcopy, trainer)``: an untrained Trainer sent by
value (arrays and pydl's classes), copied afresh for every fold or round.
"""
import copy
import faulthandler
import functools
import shutil
import tempfile

import numpy as np
import pytest

import pydl
from pydl import nn, optim
from pydl.datasets import make_moons
from pydl.model_selection import bias_variance_decomp, cross_validate
from pydl.train import Trainer, build_mlp

joblib = pytest.importorskip("joblib")


def _dask_cluster(scratch):
    pytest.importorskip("distributed")
    import dask
    from distributed import Client, LocalCluster
    # the workers' files under pytest's temporary directory, not dask's default /tmp/dask-scratch-space
    with dask.config.set({"temporary-directory": str(scratch)}), \
            LocalCluster(host="127.0.0.1", n_workers=2, threads_per_worker=1, processes=True,
                         dashboard_address=None) as cluster, Client(cluster):
        yield "dask"


def _ray_cluster():
    ray = pytest.importorskip("ray")
    from ray.util.joblib import register_ray
    temp = tempfile.mkdtemp(prefix="pydl-ray-")   # short: Ray's socket paths must fit in 107 bytes
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_AUTH_MODE", "disabled")    # no token file under ~/.ray
        # Ray's workers put the driver's working directory first on sys.path: from a checkout's
        # root they would import its (unbuilt) ./pydl instead of the installed package
        mp.chdir(temp)
        try:
            ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp, log_to_driver=False)
        except Exception as e:  # pragma: no cover (Ray unusable on this machine)
            shutil.rmtree(temp, ignore_errors=True)
            pytest.skip(f"ray.init failed: {type(e).__name__}: {e}")
        try:
            register_ray()
            yield "ray"
        finally:
            ray.shutdown()
            shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module", params=["dask", "ray"])
def backend(request, tmp_path_factory):
    faulthandler.dump_traceback_later(300, exit=True)      # a hung backend fails the run, not CI's clock
    try:
        yield from (_dask_cluster(tmp_path_factory.mktemp("dask")) if request.param == "dask" else _ray_cluster())
    finally:
        faulthandler.cancel_dump_traceback_later()


def _moons():
    X, y = make_moons(90, noise=0.15, random_state=0)
    return X.astype(np.float32), y


def _builder():
    """build() for cross_validate / bias_variance_decomp: fresh copies of one untrained Trainer."""
    pydl.manual_seed(0)
    model = build_mlp(2, [12], 2, batchnorm=True)
    trainer = Trainer(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=0.02), metrics=("accuracy",))
    return functools.partial(copy.deepcopy, trainer)


def _both(run, backend):
    """(run(1) in this process, run(-1) on the cluster through joblib's ``backend``), each
    after pydl.manual_seed(0)."""
    pydl.manual_seed(0)
    here = run(1)
    pydl.manual_seed(0)
    with joblib.parallel_backend(backend):
        return here, run(-1)


def test_cross_validate_on_cluster_equals_n_jobs_1(backend):
    X, y = _moons()
    kw = {"epochs": 5, "batch_size": 16, "verbose": 0}
    build = _builder()
    here, there = _both(lambda n_jobs: cross_validate(build, X, y, cv=3, fit_kwargs=kw, n_jobs=n_jobs), backend)
    assert here["test_score"].mean() > 0.6                   # the folds trained
    for key in ("test_score", "train_score", "test_loss", "train_loss"):
        np.testing.assert_array_equal(there[key], here[key])


def test_bias_variance_on_cluster_equals_n_jobs_1(backend):
    X, y = _moons()
    kw = {"epochs": 3, "batch_size": 16, "verbose": 0}
    build = _builder()
    here, there = _both(lambda n_jobs: bias_variance_decomp(
        build, X[:60], y[:60], X[60:], y[60:], loss="0-1_loss", num_rounds=4, random_seed=1,
        fit_kwargs=kw, n_jobs=n_jobs), backend)
    assert there == here and 0 < here[0] < 1


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_grid_search_mlp_classifier_on_cluster_equals_n_jobs_1(backend):
    pytest.importorskip("sklearn")
    from sklearn.model_selection import GridSearchCV

    from pydl.sklearn import MLPClassifier
    X, y = _moons()
    grid = {"alpha": [1e-4, 1e-2], "batch_norm": [True]}
    est = MLPClassifier(hidden_layer_sizes=(12,), max_iter=15, random_state=0)
    here, there = _both(lambda n_jobs: GridSearchCV(est, grid, cv=3, n_jobs=n_jobs).fit(X, y), backend)
    np.testing.assert_array_equal(there.cv_results_["mean_test_score"], here.cv_results_["mean_test_score"])
    assert there.best_params_ == here.best_params_
    np.testing.assert_array_equal(there.predict_proba(X), here.predict_proba(X))
