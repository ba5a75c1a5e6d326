"""Convolution and pooling throughput: pydl vs torch (oneDNN / ATen CPU), float32, same run, same threads.

    bench/run bench/bench_conv.py                        # pytest-benchmark, 1 thread (--threads 2 for two)
    PYTHONPATH=. python bench/bench_conv.py [threads]    # interleaved timing, one table

Cases (NCHW, float32): ResNet-style 3x3 layers (64->64 on 32x32, 128->128 on 16x16, batch 16), a 1x1
(64->128 on 32x32), LeNet-5's two convolutions at batch 64, a depthwise 3x3 (64 channels, 32x32,
batch 16) and max_pool2d 2x2 (LeNet's and a ResNet-size one). A conv step is the forward with bias
followed by the backward giving the input, weight and bias gradients; GFLOP/s counts it as three
convolutions, 3 * 2*N*OC*(C/groups)*kH*kW*OH*OW multiply-adds over the best time. Pooling reports
input elements per second of forward + backward. Every case checks pydl's forward and gradients
against torch's before it times anything. The summary prints pydl's ratio to torch.
"""
import sys
import time
import timeit

import numpy as np
import pytest

import pydl
from pydl import ops

torch = pytest.importorskip("torch")
F = torch.nn.functional

# name: (N, C, H, W, OC, k, stride, padding, groups)
CONVS = {
    "3x3 64->64 32x32 b16": (16, 64, 32, 32, 64, 3, 1, 1, 1),
    "3x3 128->128 16x16 b16": (16, 128, 16, 16, 128, 3, 1, 1, 1),
    "1x1 64->128 32x32 b16": (16, 64, 32, 32, 128, 1, 1, 0, 1),
    "LeNet c1 1->6 5x5 p2 28x28 b64": (64, 1, 28, 28, 6, 5, 1, 2, 1),
    "LeNet c2 6->16 5x5 14x14 b64": (64, 6, 14, 14, 16, 5, 1, 0, 1),
    "depthwise 3x3 64ch 32x32 b16": (16, 64, 32, 32, 64, 3, 1, 1, 64),
}
# name: (N, C, H, W, kernel)
POOLS = {
    "max_pool2d 2x2 LeNet 6x28x28 b64": (64, 6, 28, 28, 2),
    "max_pool2d 2x2 64x32x32 b16": (16, 64, 32, 32, 2),
}


def conv_flops(case):
    N, C, H, W, OC, k, s, p, g = case
    oh, ow = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
    return 3 * 2.0 * N * OC * (C // g) * k * k * oh * ow


def conv_runners(case, seed=0):
    """{"pydl": step, "torch": step}, each running forward + backward, and a check()."""
    N, C, H, W, OC, k, s, p, g = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    w = (rng.standard_normal((OC, C // g, k, k), dtype=np.float32) / np.sqrt(C // g * k * k)).astype(np.float32)
    b = rng.standard_normal(OC, dtype=np.float32)
    y = ops.conv2d(x, w, b, s, p, groups=g)
    dy = rng.standard_normal(y.shape, dtype=np.float32)

    def pydl_step():
        out = ops.conv2d(x, w, b, s, p, groups=g)
        return (out,) + ops.conv2d_backward(dy, x, w, s, p, groups=g)

    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    tdy = torch.from_numpy(dy)

    def torch_step():
        out = F.conv2d(tx, tw, tb, s, p, groups=g)
        out.backward(tdy)
        res = (out, tx.grad, tw.grad, tb.grad)
        tx.grad = tw.grad = tb.grad = None
        return res

    def check():
        got, want = pydl_step(), torch_step()
        for name, a, t in zip(("out", "grad_in", "grad_weight", "grad_bias"), got, want):
            t = t.detach().numpy()
            np.testing.assert_allclose(a, t, rtol=2e-4, atol=2e-4 * max(1.0, float(np.abs(t).max())), err_msg=name)

    return {"pydl": pydl_step, "torch": torch_step}, check


def pool_runners(case, seed=0):
    N, C, H, W, k = case
    x = np.random.default_rng(seed).standard_normal((N, C, H, W), dtype=np.float32)
    y, idx = ops.max_pool2d(x, k, return_indices=True)
    dy = np.random.default_rng(seed + 1).standard_normal(y.shape, dtype=np.float32)

    def pydl_step():
        out, ind = ops.max_pool2d(x, k, return_indices=True)
        return out, ops.max_pool2d_backward(dy, ind, x.shape)

    tx = torch.tensor(x, requires_grad=True)
    tdy = torch.from_numpy(dy)

    def torch_step():
        out = F.max_pool2d(tx, k)
        out.backward(tdy)
        res = (out, tx.grad)
        tx.grad = None
        return res

    def check():
        for a, t in zip(pydl_step(), torch_step()):
            np.testing.assert_array_equal(a, t.detach().numpy())

    return {"pydl": pydl_step, "torch": torch_step}, check


@pytest.mark.parametrize("impl", ["pydl", "torch"])
@pytest.mark.parametrize("name", list(CONVS), ids=[n.replace(" ", "_") for n in CONVS])
def test_conv_step(benchmark, throughput, bench_threads, settle, name, impl):
    run, check = conv_runners(CONVS[name])
    check()
    settle()
    flops = conv_flops(CONVS[name])
    benchmark.group = f"conv fwd+bwd {name}"
    benchmark.pedantic(run[impl], rounds=int(min(100, max(5, 3e9 / flops))), iterations=1, warmup_rounds=1)
    throughput.record(benchmark, f"conv fwd+bwd {name}", impl, flops, baseline="torch")


@pytest.mark.parametrize("impl", ["pydl", "torch"])
@pytest.mark.parametrize("name", list(POOLS), ids=[n.replace(" ", "_") for n in POOLS])
def test_max_pool_step(benchmark, throughput, bench_threads, settle, name, impl):
    run, check = pool_runners(POOLS[name])
    check()
    settle()
    n = float(np.prod(POOLS[name][:4]))
    benchmark.group = f"{name} fwd+bwd"
    benchmark.pedantic(run[impl], rounds=100, iterations=1, warmup_rounds=1)
    throughput.record(benchmark, f"{name} fwd+bwd", impl, n, unit="Gelem/s", baseline="torch")


def main(threads=1):
    """Interleaved rounds (pydl and torch see the same machine load), best of 9. With one thread the
    clock is the calling thread's CPU time (time.thread_time), which other processes' load on a
    shared machine does not inflate; with more, wall time."""
    clock = time.thread_time if threads == 1 else time.perf_counter
    pydl.set_num_threads(threads)
    torch.set_num_threads(threads)
    print(f"float32 conv / pool, {threads} thread(s), isa={pydl.cpu_info()['isa']}, torch {torch.__version__}")
    print(f"{'case':<40} {'pydl':>8} {'torch':>8}   pydl/torch")
    cases = [(n, conv_runners(c), conv_flops(c) * 1e-9, "GFLOP/s") for n, c in CONVS.items()]
    cases += [(n, pool_runners(c), float(np.prod(c[:4])) * 1e-9, "Gelem/s") for n, c in POOLS.items()]
    for name, (run, check), work, unit in cases:
        check()
        number = max(1, int(0.05 / min(timeit.repeat(run["pydl"], number=1, repeat=3, timer=clock))))
        best = {key: float("inf") for key in run}
        for _ in range(9):
            for key, fn in run.items():
                if threads > 1:
                    time.sleep(0.05)
                best[key] = min(best[key], timeit.timeit(fn, number=number, timer=clock) / number)
        rate = {key: work / t for key, t in best.items()}
        print(f"{name:<40} {rate['pydl']:8.1f} {rate['torch']:8.1f}   {rate['pydl'] / rate['torch']:.2f}x  {unit}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
