"""The thread pool through its main user, GEMM: any thread count gives bitwise-identical results,
concurrent callers and nested parallel calls neither deadlock nor corrupt results."""
import threading

import numpy as np
import pytest

import pydl
from pydl import _C


def _operands(m, n, k, seed):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((m, k)).astype(np.float32), rng.standard_normal((n, k)).astype(np.float32),
            rng.standard_normal(n).astype(np.float32))


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])  # sigmoid: nested parallel call per row block
def test_any_thread_count_bitwise_identical(activation):
    a, b, bias = _operands(263, 389, 517, 0)
    results = []
    for threads in (1, 2, 3, 5):
        pydl.set_num_threads(threads)
        c = np.empty((263, 389), np.float32)
        _C.gemm(a, b, c, False, True, 1.0, 0.0, bias, activation)
        results.append(c)
    for c in results[1:]:
        np.testing.assert_array_equal(c, results[0])
    ref = a.astype(np.float64) @ b.T.astype(np.float64) + bias
    ref = np.maximum(ref, 0) if activation == "relu" else 1 / (1 + np.exp(-ref))
    np.testing.assert_allclose(results[0], ref, rtol=1e-4, atol=1e-3)


def test_concurrent_callers():
    """Python threads calling GEMM at once (GIL released): a busy pool runs the caller serially."""
    pydl.set_num_threads(2)
    a, b, _ = _operands(300, 200, 400, 1)
    ref = np.empty((300, 200), np.float32)
    _C.gemm(a, b, ref, False, True)
    outs = [np.empty_like(ref) for _ in range(4)]
    errors = []

    def work(out):
        try:
            for _ in range(5):
                _C.gemm(a, b, out, False, True)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(o,)) for o in outs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
        assert not t.is_alive(), "GEMM thread hung"
    assert not errors
    for o in outs:
        np.testing.assert_array_equal(o, ref)
