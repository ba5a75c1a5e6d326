"""Shared test configuration.

ISA coverage: the whole suite runs under PYDL_ISA=avx512, avx2 and generic in CI (.ci/run).
Tests that want every ISA in one process use the ``isa`` fixture, which switches
pydl._C.set_isa for the duration of the test.
"""
import sys

import numpy as np
import pytest

import pydl
from pydl import _C

ISAS = [i for i in ("avx512", "avx2", "generic")
        if ("avx512", "avx2", "generic").index(i) >= ("avx512", "avx2", "generic").index(_C.detected_isa())]


def pytest_report_header(config):
    return f"pydl {pydl.__version__} from {pydl.__file__}, kernels {pydl.cpu_info()}"


@pytest.fixture(params=ISAS)
def isa(request):
    before = _C.active_isa()
    _C.set_isa(request.param)
    yield request.param
    _C.set_isa(before)


@pytest.fixture(autouse=True, scope="module")
def _pickle_test_functions_by_value(request):
    """joblib's worker processes (cross_validate(n_jobs > 1)) unpickle functions defined in test
    modules; those are imported by path (--import-mode=importlib), so a worker cannot import them
    by name. Have cloudpickle send them by value, as it does for a script's __main__."""
    try:
        import cloudpickle
    except ImportError:  # joblib (and with it cloudpickle) is a test extra
        yield
        return
    name = request.module.__name__
    if name in sys.modules:
        cloudpickle.register_pickle_by_value(sys.modules[name])
    yield


@pytest.fixture(autouse=True)
def _restore_threads():
    n = pydl.get_num_threads()
    yield
    pydl.set_num_threads(n)


def rtol_for(dtype):
    """Default relative tolerance for comparing a kernel against a float64 reference."""
    return 1e-5 if np.dtype(dtype) == np.float32 else 1e-12
