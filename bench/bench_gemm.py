"""SGEMM throughput: pydl vs numpy (OpenBLAS) and torch, float32, same run, same thread count.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m pytest bench/bench_gemm.py --benchmark-enable
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/bench_gemm.py [threads]

Cases: square C = A B for n in 16 ... 2048; the Linear layers of the 784-512-256-10 MLP at batch
128 and of the digits MLP 64-128-64-10 at batch 32 (forward X W^T, backward dX = dY W and
dW = dY^T X; the 10-wide last layer gives the K = 10 backward); and the GEMMs the convolutions
of bench_conv.py / bench_cnn.py run (im2col: forward col^T W^T, weight gradient dY col^T, input
gradient W^T dY, per image or row block). Every case first checks pydl's result against numpy
(float64 accumulation) before timing. GFLOP/s = 2 M N K / best time; the summary at the end
prints the ratio of pydl and torch to numpy. The second form times the three libraries
interleaved (less sensitive to a busy machine) and prints the same table.
"""
import sys
import time
import timeit

import numpy as np
import pytest

import pydl
from pydl import _C

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None

SQUARE = [16, 32, 64, 128, 256, 512, 1024, 2048]


def mlp_cases(sizes, batch):
    """(name, M, N, K, trans_a, trans_b) of an MLP's forward and backward GEMMs."""
    cases = []
    for fin, fout in zip(sizes[:-1], sizes[1:]):
        cases.append((f"fwd X W^T {fin}->{fout} b{batch}", batch, fout, fin, False, True))
        cases.append((f"bwd dY W {fout}->{fin} b{batch}", batch, fin, fout, False, False))
        cases.append((f"bwd dY^T X {fout}x{fin} b{batch}", fout, fin, batch, True, False))
    return cases


# (name, M, N, K, trans_a, trans_b) as csrc/conv/conv.cpp calls gemm for the bench's convolutions
CONV = [("conv3x3 64ch 32x32 fwd", 160, 64, 576, True, True), ("conv3x3 64ch 32x32 dW", 64, 576, 1024, False, True),
        ("conv3x3 64ch 32x32 dX", 576, 1024, 64, True, False),
        ("conv3x3 128ch 16x16 fwd", 512, 128, 1152, True, True),
        ("conv3x3 128ch 16x16 dX", 1152, 256, 128, True, False),
        ("conv1x1 64->128 fwd", 1024, 128, 64, True, True),
        ("lenet c1 fwd", 6, 784, 25, False, False), ("lenet c1 dW", 6, 25, 3136, False, True),
        ("lenet c1 dX", 25, 3136, 6, True, False), ("lenet c2 fwd", 16, 600, 150, False, False),
        ("lenet c2 dX", 150, 400, 16, True, False)]

CASES = ([(f"square n={n}", n, n, n, False, False) for n in SQUARE] + mlp_cases((784, 512, 256, 10), 128)
         + mlp_cases((64, 128, 64, 10), 32) + CONV)


def operands(m, n, k, ta, tb, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
    return a, b, np.empty((m, n), np.float32)


def runners(a, b, c, ta, tb):
    """name -> zero-argument callable computing op(a) op(b), writing into a preallocated output."""
    oa, ob = (a.T if ta else a), (b.T if tb else b)
    run = {"pydl": lambda: _C.gemm(a, b, c, ta, tb),  # positional: pybind11 keywords cost ~2 us
           "numpy": lambda: np.matmul(oa, ob, out=c)}
    if torch is not None:
        ta_, tb_, tc = torch.from_numpy(oa), torch.from_numpy(ob), torch.from_numpy(c)
        run["torch"] = lambda: torch.matmul(ta_, tb_, out=tc)
    return run


def check(run, a, b, c, ta, tb, k):
    ref = (a.T if ta else a).astype(np.float64) @ (b.T if tb else b).astype(np.float64)
    c[...] = np.nan
    run()
    scale = k * np.abs(a).max() * np.abs(b).max()
    np.testing.assert_allclose(c, ref, rtol=1e-4, atol=1e-6 * scale)


@pytest.mark.parametrize("impl", ["pydl", "numpy", "torch"])
@pytest.mark.parametrize("name,m,n,k,ta,tb", CASES, ids=[c[0].replace(" ", "_") for c in CASES])
def test_sgemm(benchmark, throughput, bench_threads, settle, name, m, n, k, ta, tb, impl):
    a, b, c = operands(m, n, k, ta, tb)
    run = runners(a, b, c, ta, tb)
    if impl not in run:
        pytest.skip(f"{impl} not installed")
    check(run[impl], a, b, c, ta, tb, k)
    settle()
    benchmark.group = f"sgemm {name} ({m}x{n}x{k})"
    flops = 2.0 * m * n * k
    rounds = int(min(200, max(5, 2e9 / flops)))
    benchmark.pedantic(run[impl], rounds=rounds, iterations=1, warmup_rounds=1)
    throughput.record(benchmark, f"{name} ({m}x{n}x{k})", impl, flops)


def main(threads=1, rounds=15):
    """Interleaved rounds; GFLOP/s of the best round, and pydl / numpy of the best and of the median
    rounds. One thread: the calling thread's CPU time (all three compute on it); more: wall time."""
    from threadpoolctl import threadpool_info, threadpool_limits

    clock = time.thread_time if threads == 1 else time.perf_counter
    pydl.set_num_threads(threads)
    if torch is not None:
        torch.set_num_threads(threads)
    with threadpool_limits(threads):
        blas = [(i["internal_api"], i.get("architecture"), i["num_threads"]) for i in threadpool_info()
                if i["user_api"] == "blas"]
        print(f"float32 GEMM, {threads} thread(s), isa={_C.active_isa()}, numpy BLAS {blas}, best of {rounds}")
        print(f"{'case':<46} {'pydl':>8} {'numpy':>8} {'torch':>8}  GFLOP/s  pydl/numpy best, median  torch/numpy")
        for name, m, n, k, ta, tb in CASES:
            a, b, c = operands(m, n, k, ta, tb)
            run = runners(a, b, c, ta, tb)
            for fn in run.values():
                check(fn, a, b, c, ta, tb, k)
            flops = 2.0 * m * n * k
            # calls per timed sample: ~0.3 ms of work on one thread (CPU time), ~3 ms with more
            # (wall time, which the workers' wake-ups and the timer's resolution weigh on)
            number = int(max(1, (3e7 if threads == 1 else 3e8) / flops))
            times = {key: [] for key in run}
            for _ in range(rounds):  # interleaved rounds: the libraries see the same machine load
                for key, fn in run.items():
                    if threads > 1:  # others' workers spin after a call (OpenBLAS's for ~0.1 s:
                        time.sleep(0.2)  # 100 ms of CPU in the 100 ms after one, on Zen 3); then
                        warm = time.perf_counter() + 0.01  # 10 ms of untimed calls: after the pause
                        while time.perf_counter() < warm:  # the first calls ran up to 2x slower
                            fn()  # (clocks and caches; Zen 3 VM), unlike the calls of a training loop
                    times[key].append(timeit.timeit(fn, number=number, timer=clock) / number)
            rate = {key: flops / min(t) * 1e-9 for key, t in times.items()}
            med = {key: flops / float(np.median(t)) * 1e-9 for key, t in times.items()}
            tr = f"{rate['torch']:8.1f}" if "torch" in rate else f"{'-':>8}"
            tratio = f"{rate['torch'] / rate['numpy']:.2f}" if "torch" in rate else "-"
            print(f"{name + f' ({m}x{n}x{k})':<46} {rate['pydl']:8.1f} {rate['numpy']:8.1f} {tr}"
                  f"           {rate['pydl'] / rate['numpy']:.2f}  {med['pydl'] / med['numpy']:.2f}        {tratio}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
