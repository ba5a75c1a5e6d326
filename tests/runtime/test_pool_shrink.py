"""The thread pool shrinks when the thread count goes down, and an unknown PYDL_ISA warns.

Reliability issue, defect 6: after ``set_num_threads(1024)`` then ``(2)`` the pool kept its 1025
threads (every parallel call then woke 1024 workers: softmax ran 30x slower). Thread counts are
read from /proc/self/status in a fresh subprocess, so other tests' threads do not interfere;
the speed recovery is asserted through the thread count, not a timing.
"""
import os
import subprocess
import sys
import textwrap

import pytest

import pydl

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(pydl.__file__)))

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc")


def run(code, **env):
    e = dict(os.environ, PYTHONPATH=ROOT, **env)
    e.pop("PYDL_ISA", None) if "PYDL_ISA" not in env else None
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=e, capture_output=True, text=True,
                       timeout=300, cwd="/")
    assert r.returncode == 0, f"exit status {r.returncode}\n{r.stdout}\n{r.stderr[-3000:]}"
    return r


PRELUDE = """
    import threading
    import numpy as np
    import pydl

    import time

    def count():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Threads:"):
                    return int(line.split()[1])

    expect = None
    def threads():
        # A joined thread may still be counted for a moment (the kernel reaps it just after
        # join() returns): poll briefly until the count matches what the caller asserts next.
        n = count()
        end = time.monotonic() + 5
        while expect is not None and n != expect and time.monotonic() < end:
            time.sleep(0.01)
            n = count()
        return n

    x = np.random.default_rng(0).standard_normal((4096, 256)).astype(np.float32)
    def kernel():  # 1M elements: split over every thread the count allows
        return pydl.ops.softmax(x)
"""


def test_pool_shrinks_when_the_thread_count_goes_down():
    r = run(PRELUDE + """
    pydl.set_num_threads(1)
    kernel()
    base = threads()                      # the interpreter's own threads (and any BLAS's)
    pydl.set_num_threads(2)
    want = kernel()
    expect = base + 1
    assert threads() == base + 1, (base, threads())
    pydl.set_num_threads(1024)
    kernel()
    expect = base + 1023
    assert threads() == base + 1023, (base, threads())
    pydl.set_num_threads(2)               # joins the surplus before returning
    expect = base + 1
    assert threads() == base + 1, (base, threads())
    got = kernel()                        # and kernels run on 2 threads again
    expect = base + 1
    assert threads() == base + 1, (base, threads())
    assert np.array_equal(got, want)
    pydl.set_num_threads(64)
    kernel()
    expect = base + 63
    assert threads() == base + 63
    pydl.set_num_threads(8)
    expect = base + 7
    assert threads() == base + 7
    pydl.set_num_threads(1)               # never reaches the pool: freed by set_num_threads itself
    expect = base
    assert threads() == base, (base, threads())
    assert np.array_equal(kernel(), want)
    pydl.set_num_threads(4)
    kernel()
    expect = base + 3
    assert threads() == base + 3
    print("ok")
    """)
    assert r.stdout.strip() == "ok"


def test_pool_shrinks_after_a_change_during_a_parallel_call():
    # set_num_threads while another thread's kernel holds the pool: the pool is trimmed by the
    # next parallel call instead (and nothing crashes or deadlocks meanwhile)
    r = run(PRELUDE + """
    pydl.set_num_threads(1)
    base = threads()
    pydl.set_num_threads(32)
    want = kernel()
    stop = False
    def loop():
        while not stop:
            kernel()
    ts = [threading.Thread(target=loop) for _ in range(2)]
    for t in ts:
        t.start()
    for n in (16, 128, 3, 64, 2) * 20:
        pydl.set_num_threads(n)
    stop = True
    for t in ts:
        t.join()
    got = kernel()
    expect = base + 1
    assert threads() == base + 1, (base, threads())
    assert np.array_equal(got, want)
    print("ok")
    """)
    assert r.stdout.strip() == "ok"


@pytest.mark.parametrize("value", ["sse9", "AVX2", "avx-512", "native", " generic"])
def test_unknown_pydl_isa_warns_at_import(value):
    r = run("""
    import warnings
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        import pydl
    msgs = [str(x.message) for x in w if issubclass(x.category, RuntimeWarning) and "PYDL_ISA" in str(x.message)]
    assert len(msgs) == 1, [str(x.message) for x in w]
    print(msgs[0])
    print(pydl.cpu_info()["isa"] == pydl._C.detected_isa())
    """, PYDL_ISA=value)
    msg, same = r.stdout.strip().splitlines()
    assert repr(value) in msg
    for name in ("'avx512'", "'avx2'", "'generic'"):
        assert name in msg
    assert same == "True"  # the unknown value is ignored: the detected ISA runs


@pytest.mark.parametrize("value", ["generic", "avx2", "avx512", ""])
def test_known_or_empty_pydl_isa_does_not_warn(value):
    r = run("""
    import warnings
    warnings.simplefilter("error")
    import pydl
    print(pydl.cpu_info()["isa"])
    """, PYDL_ISA=value)
    order = ("generic", "avx2", "avx512")
    isa = r.stdout.strip()
    if value:
        assert order.index(isa) <= order.index(value)
