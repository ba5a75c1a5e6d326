"""Helpers for the pydl.nn tests: finite-difference gradient checks and torch parity tolerances."""
import numpy as np
import pytest

from pydl.testing import numerical_grad

# Relative tolerance for parity with torch / a float64 reference, per dtype (the brief's bars).
PARITY_RTOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-10}


def _check_module_grads(module, x, seed=0, rtol=1e-6, atol=1e-8, params=True):
    """Central differences of f = sum(module(x) * R) against module.backward(R), w.r.t. x and
    every parameter (float64)."""
    rng = np.random.default_rng(seed)
    y = module(x)
    R = rng.standard_normal(y.shape)
    for p in module.parameters():
        p.grad = None
    gx = module.backward(R)

    def f():
        return float(np.sum(module(x) * R))

    np.testing.assert_allclose(gx, numerical_grad(f, x), rtol=rtol, atol=atol, err_msg="d/d input")
    if params:
        for name, p in module.named_parameters():
            g = p.grad.copy()
            np.testing.assert_allclose(g, numerical_grad(f, p.data), rtol=rtol, atol=atol, err_msg=f"d/d {name}")


@pytest.fixture
def check_module_grads():
    return _check_module_grads


@pytest.fixture
def parity():
    """assert_close(actual, torch_tensor_or_array) with the dtype's parity tolerance."""

    def check(actual, desired, err_msg=""):
        desired = desired.detach().numpy() if hasattr(desired, "detach") else np.asarray(desired)
        rtol = PARITY_RTOL[np.dtype(actual.dtype)]
        scale = max(float(np.max(np.abs(desired))) if desired.size else 0.0, 1e-30)
        assert actual.shape == desired.shape, f"{actual.shape} != {desired.shape} {err_msg}"
        np.testing.assert_allclose(actual, desired, rtol=rtol, atol=rtol * scale, err_msg=err_msg)

    return check
