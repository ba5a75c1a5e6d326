"""Class-index targets are memory the cross-entropy kernel does not own (ARCHITECTURE.md §3.4).

The binding checks the indices with the GIL held, then releases it; another Python thread may
then rewrite them while the kernel runs. The kernel therefore reads each index once, checks it
where it uses it, and the binding raises ValueError (naming ``target`` and the index) instead of
writing out of bounds (reliability issue, defect 1: ``g[y] -= ...`` in the row kernel).
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import pydl
from pydl import _C

DTYPES = [np.float32, np.float64]


def _case(n, c, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c)).astype(dtype)
    t = rng.integers(0, c, n).astype(np.int64)
    return x, t


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bad", [7, -1, 1 << 40, -(1 << 62), np.iinfo(np.int64).min])
@pytest.mark.parametrize("use_w", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_bad_index_found_in_kernel_raises(isa, dtype, bad, use_w, reduction):
    # _cross_entropy_kernel_check skips the binding's pre-check: the kernel's own check at use
    # (the one a concurrent writer meets) must report the index, not write out of bounds.
    x, t = _case(6, 7, dtype)
    t[2] = bad
    w = np.linspace(0.5, 2.0, 7).astype(dtype) if use_w else None
    g = np.full_like(x, 123.0)
    with pytest.raises(ValueError, match=rf"target: class index {bad} at position 2 is out of range \[0, 7\)"):
        _C._cross_entropy_kernel_check(x, t, grad=g, weight=w, label_smoothing=0.1, reduction=reduction)
    # the bad row's gradient is never written (the write that used to go out of bounds)
    np.testing.assert_array_equal(g[2], 123.0)
    with pytest.raises(ValueError, match=rf"target: class index {bad} at position 2"):
        _C._cross_entropy_kernel_check(x, t, weight=w, reduction=reduction)
    # with valid targets the unchecked entry point is the same function
    t[2] = 3
    assert _C._cross_entropy_kernel_check(x, t, weight=w) == _C.cross_entropy(x, t, weight=w)


@pytest.mark.parametrize("threads", [1, 2, 4])
def test_first_bad_index_reported_with_threads(threads):
    # rows split across threads: the lowest bad row is reported, whichever thread meets it
    pydl.set_num_threads(threads)
    x, t = _case(4096, 40, np.float32, seed=1)
    t[[3000, 1500, 4000]] = [40, -5, 99]
    g = np.zeros_like(x)
    with pytest.raises(ValueError, match=r"class index -5 at position 1500"):
        _C._cross_entropy_kernel_check(x, t, grad=g)
    t[:] = 0
    loss = _C._cross_entropy_kernel_check(x, t, grad=g)
    assert np.isfinite(loss)


def test_target_may_not_share_memory_with_grad():
    # an int64 view of the grad array passed as the targets: refused (c = 1 makes the shapes fit)
    x = np.zeros((4, 1))
    g = np.zeros((4, 1))
    with pytest.raises(ValueError, match="grad: must not share memory with target"):
        _C.cross_entropy(x, g.view(np.int64).reshape(4), grad=g)


RACE = textwrap.dedent(r"""
    import sys, threading
    import numpy as np
    import pydl
    from pydl import _C, nn

    isa, n, c, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    _C.set_isa(isa)
    pydl.set_num_threads(2)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c)).astype(np.float32)
    t = rng.integers(0, c, n).astype(np.int64)
    w = np.ones(c, np.float32)
    g = np.empty_like(x)
    stop = False
    bad = [1 << 40, -(1 << 40), c, -1, np.iinfo(np.int64).max]

    def flip():
        k = 0
        while not stop:  # runs whenever the main thread releases the GIL: during the kernels
            i = k % n
            t[i] = bad[k % len(bad)]
            t[(i * 7919) % n] = 0
            t[i] = k % c
            k += 1

    th = threading.Thread(target=flip)
    th.start()
    loss_fn = nn.CrossEntropyLoss()
    wloss_fn = nn.CrossEntropyLoss(weight=w)
    calls = errors = 0
    import time
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for f in (lambda: loss_fn(x, t), lambda: wloss_fn(x, t), lambda: _C.cross_entropy(x, t, grad=g),
                  lambda: _C.cross_entropy(x.astype(np.float64), t, weight=w.astype(np.float64))):
            calls += 1
            try:
                f()
            except ValueError as e:
                assert "target" in str(e), e
                errors += 1
    stop = True
    th.join()
    print(calls, errors)
""")


@pytest.mark.parametrize("isa_name", ["avx512", "avx2", "generic"])
def test_targets_changed_during_the_kernel_do_not_crash(isa_name, tmp_path):
    if isa_name not in ("avx512", "avx2", "generic")[("avx512", "avx2", "generic").index(_C.detected_isa()):]:
        pytest.skip(f"CPU lacks {isa_name}")
    script = tmp_path / "race.py"
    script.write_text(RACE)
    env = dict(os.environ, PYTHONFAULTHANDLER="1")
    r = subprocess.run([sys.executable, str(script), isa_name, "2000", "50", "1.5"], capture_output=True,
                       text=True, timeout=300, env=env)
    # a signal (SIGSEGV: the out-of-bounds write) shows as a negative return code
    assert r.returncode == 0, f"exit status {r.returncode}\n{r.stdout}\n{r.stderr[-3000:]}"
    calls, errors = map(int, r.stdout.split())
    assert calls > 0 and errors <= calls
