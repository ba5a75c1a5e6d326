"""Fork safety of the thread pool: a child forked after threaded GEMM work can run threaded GEMM."""
import multiprocessing
import os
import time

import numpy as np
import pytest

import pydl

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def _threaded_gemm_ok(n=256):
    """A 2-thread GEMM large enough to use the pool; True when it matches numpy."""
    pydl.set_num_threads(2)
    rng = np.random.default_rng(n)
    a = rng.standard_normal((n, n + 3)).astype(np.float32)
    b = rng.standard_normal((n + 3, n + 5)).astype(np.float32)
    c = pydl.ops.matmul(a, b)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    return bool(np.allclose(c, ref, rtol=1e-4, atol=1e-3))


def _wait(pid, timeout):
    """waitpid with a timeout: returns the exit status, or kills the child and fails on a hang."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    pytest.fail(f"forked child hung for {timeout} s")


def test_fork_after_threaded_gemm():
    assert _threaded_gemm_ok(600)  # starts the pool's workers in the parent
    pid = os.fork()
    if pid == 0:  # child: the parent's workers do not exist here
        code = 1
        try:
            code = 0 if _threaded_gemm_ok(600) and pydl.get_num_threads() == 2 else 2
        finally:
            os._exit(code)
    assert _wait(pid, 60) == 0
    assert _threaded_gemm_ok(300)  # the parent's pool still works


def _child_main():
    raise SystemExit(0 if _threaded_gemm_ok(400) else 3)


def test_multiprocessing_fork_context():
    assert _threaded_gemm_ok(500)
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_child_main) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        if p.is_alive():
            p.kill()
            p.join()
            pytest.fail("multiprocessing child hung")
        assert p.exitcode == 0
