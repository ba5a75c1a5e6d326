"""Test helpers (as numpy.testing): one comparison helper and a finite-difference gradient.

Used by pydl's own tests; public so that users can check their own modules the same way.
"""
import numpy as np

# Relative / absolute tolerances when comparing a kernel result against a float64 reference.
TOLERANCES = {np.dtype(np.float32): (1e-5, 1e-6), np.dtype(np.float64): (1e-12, 1e-14)}


def assert_close(actual, desired, dtype=None, rtol=None, atol=None, err_msg=""):
    """Assert ``actual`` matches ``desired`` within dtype-dependent tolerances.

    ``dtype`` (default: ``actual.dtype``) picks rtol/atol from TOLERANCES unless given. Also
    checks shape, and dtype when ``actual`` is an ndarray and ``dtype`` is given.
    """
    actual = np.asarray(actual)
    desired = np.asarray(desired)
    dt = np.dtype(dtype) if dtype is not None else actual.dtype
    r, a = TOLERANCES.get(dt, (1e-7, 0.0))
    rtol = r if rtol is None else rtol
    atol = a if atol is None else atol
    assert actual.shape == desired.shape, f"shape {actual.shape} != {desired.shape}. {err_msg}"
    if dtype is not None:
        assert actual.dtype == np.dtype(dtype), f"dtype {actual.dtype} != {np.dtype(dtype)}. {err_msg}"
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=atol, err_msg=err_msg)


def numerical_grad(f, x, eps=1e-6):
    """Central differences of the scalar function ``f`` at ``x`` (float64, modified in place and restored).

    Returns an array shaped like ``x`` with d f / d x[i] ~ (f(x + eps e_i) - f(x - eps e_i)) / (2 eps).
    """
    if x.dtype != np.float64:
        raise TypeError(f"x: expected float64 for finite differences, got {x.dtype}")
    g = np.zeros_like(x)
    flat, gflat = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        fp = f()
        flat[i] = old - eps
        fm = f()
        flat[i] = old
        gflat[i] = (fp - fm) / (2 * eps)
    return g
