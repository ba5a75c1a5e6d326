"""Activation throughput (and softmax / log-softmax / fused cross-entropy at the end of the file):
pydl kernels vs numpy (the same formula written with
ufuncs and out=, no extra temporaries) and torch, float32, in the same run.

Run:  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m pytest bench/bench_activation.py --benchmark-enable -s
Every case checks its output against a float64 reference before timing. Implementations:
numpy (one thread), torch (1 thread), pydl (1 thread), pydl and torch with 2 threads. At the
end a table prints Gelem/s per case and the ratio to numpy (also in each benchmark's
extra_info). Bar: pydl tanh and sigmoid over 1M elements at least np.tanh's throughput.
"""
import math

import numpy as np
import pytest

import pydl
from pydl import _C

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None

SIZES = {"64K": 1 << 16, "1M": 1 << 20, "16M": 1 << 24}
OPS = ["relu", "sigmoid", "tanh", "gelu"]
IMPLS = ["numpy", "torch", "pydl", "pydl-2t", "torch-2t"]
RESULTS = {}  # (op, size) -> {impl: seconds}


def erf_numpy(z, out, tmp):
    """erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7), the scipy-free numpy formula."""
    np.abs(z, out=tmp)
    np.multiply(tmp, 0.3275911, out=out)
    out += 1.0
    np.reciprocal(out, out=out)  # t
    poly = np.full_like(z, 1.061405429)
    for c in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        poly *= out
        poly += c
    poly *= out
    np.square(tmp, out=tmp)
    np.negative(tmp, out=tmp)
    np.exp(tmp, out=tmp)
    np.multiply(poly, tmp, out=out)
    np.subtract(1.0, out, out=out)
    np.copysign(out, z, out=out)
    return out


def numpy_fn(op, x, out, tmp):
    if op == "relu":
        return lambda: np.maximum(x, 0.0, out=out)
    if op == "tanh":
        return lambda: np.tanh(x, out=out)
    if op == "sigmoid":
        def sigmoid():
            np.negative(x, out=out)
            np.exp(out, out=out)
            np.add(out, 1.0, out=out)
            np.reciprocal(out, out=out)
        return sigmoid
    if op == "gelu":
        def gelu():
            np.multiply(x, 1 / math.sqrt(2.0), out=tmp[0])
            erf_numpy(tmp[0], out, tmp[1])
            np.add(out, 1.0, out=out)
            np.multiply(out, x, out=out)
            np.multiply(out, 0.5, out=out)
        return gelu
    raise ValueError(op)


def torch_fn(op, x, out):
    xt, ot = torch.from_numpy(x), torch.from_numpy(out)
    fns = {"relu": lambda: torch.clamp_min(xt, 0.0, out=ot),
           "sigmoid": lambda: torch.sigmoid(xt, out=ot), "tanh": lambda: torch.tanh(xt, out=ot),
           "gelu": lambda: ot.copy_(torch.nn.functional.gelu(xt))}
    return fns[op]


def reference(op, x):
    x = x.astype(np.float64)
    if op == "relu":
        return np.maximum(x, 0)
    if op == "sigmoid":
        return 1 / (1 + np.exp(-x))
    if op == "tanh":
        return np.tanh(x)
    erf = torch.erf(torch.from_numpy(x / math.sqrt(2))).numpy() if torch is not None else None
    if erf is None:
        erf = np.vectorize(math.erf, otypes=[np.float64])(x / math.sqrt(2))
    return 0.5 * x * (1 + erf)


@pytest.fixture(scope="module", autouse=True)
def report():
    threads = pydl.get_num_threads()
    torch_threads = torch.get_num_threads() if torch is not None else None
    yield
    pydl.set_num_threads(threads)
    if torch is not None:
        torch.set_num_threads(torch_threads)
    print(f"\n\nactivations, float32 (isa={_C.active_isa()}); Gelem/s and ratio to numpy in this run")
    for (op, size), res in RESULTS.items():
        base = res.get("numpy")
        for impl, t in res.items():
            line = f"  {op:<13} {size:>8} {impl:<9} {SIZES[size] / t / 1e9:6.2f} Gelem/s"
            if base:
                line += f"   x{base / t:5.2f} numpy"
            print(line)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("op", OPS)
def test_activation(benchmark, throughput, op, size, impl):
    n = SIZES[size]
    x = (np.random.default_rng(0).standard_normal(n) * 3).astype(np.float32)
    out = np.empty_like(x)
    if impl.startswith("torch"):
        if torch is None:
            pytest.skip("torch not installed")
        torch.set_num_threads(2 if impl.endswith("2t") else 1)
        fn = torch_fn(op, x, out)
    elif impl == "numpy":
        fn = numpy_fn(op, x, out, (np.empty_like(x), np.empty_like(x)))
    else:
        pydl.set_num_threads(2 if impl.endswith("2t") else 1)
        kind = op

        def fn():
            _C.activation_forward(kind, x, out)

    fn()
    # Check a prefix against the float64 formula before timing. gelu: x/2 (1 + erf) in float32 has
    # absolute error ~ |x| 6e-8 (1 + erf cancels for x < 0); numpy's A&S erf adds 1.5e-7.
    m = min(n, 1 << 16)
    np.testing.assert_allclose(out[:m], reference(op, x[:m]), rtol=2e-6, atol=2e-6 if op == "gelu" else 1e-7)
    benchmark.group = f"{op} {size}"
    benchmark.pedantic(fn, rounds=max(12, (1 << 26) // n), iterations=1, warmup_rounds=2)
    t = benchmark.stats.stats.min
    RESULTS.setdefault((op, size), {})[impl] = t
    throughput.record(benchmark, f"{op} {size}", impl, n, unit="Gelem/s")
    benchmark.extra_info["gelem_per_s"] = n / t / 1e9
    base = RESULTS[(op, size)].get("numpy")
    if base:
        benchmark.extra_info["ratio_vs_numpy"] = base / t


# Softmax / log-softmax over the last axis and the fused cross-entropy (forward + dL/dlogits),
# float32, one thread: (batch, classes) shapes of a classifier head.
SHAPES = {"128x10": (128, 10), "256x1000": (256, 1000)}


def softmax_cases(op, x, target, out):
    n = x.shape[0]

    def np_log_softmax():
        z = x - x.max(-1, keepdims=True)
        z -= np.log(np.exp(z).sum(-1, keepdims=True))
        return z

    def np_softmax():
        e = np.exp(x - x.max(-1, keepdims=True))
        e /= e.sum(-1, keepdims=True)
        return e

    def np_ce():
        z = np_log_softmax()
        loss = -z[np.arange(n), target].mean()
        g = np.exp(z)
        g[np.arange(n), target] -= 1
        g /= n
        return loss, g

    cases = {"numpy": {"softmax": np_softmax, "log_softmax": np_log_softmax, "cross_entropy": np_ce}[op],
             "pydl": {"softmax": lambda: _C.softmax_forward(x, out, False),
                      "log_softmax": lambda: _C.softmax_forward(x, out, True),
                      "cross_entropy": lambda: _C.cross_entropy(x, target, grad=out)}[op]}
    if torch is not None:
        xt, tt = torch.from_numpy(x), torch.from_numpy(target)

        def torch_ce():
            xg = xt.detach().requires_grad_()
            loss = torch.nn.functional.cross_entropy(xg, tt)
            loss.backward()
            return loss

        cases["torch"] = {"softmax": lambda: torch.softmax(xt, -1), "log_softmax": lambda: torch.log_softmax(xt, -1),
                          "cross_entropy": torch_ce}[op]
    return cases, np_ce


@pytest.mark.parametrize("impl", ["numpy", "torch", "pydl"])
@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("op", ["softmax", "log_softmax", "cross_entropy"])
def test_softmax_family(benchmark, throughput, op, shape, impl):
    n, c = SHAPES[shape]
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((n, c)) * 3).astype(np.float32)
    target = rng.integers(0, c, n).astype(np.int64)
    out = np.empty_like(x)
    cases, np_ce = softmax_cases(op, x, target, out)
    if impl not in cases:
        pytest.skip("torch not installed")
    pydl.set_num_threads(1)
    if torch is not None:
        torch.set_num_threads(1)
    fn = cases[impl]
    if impl == "pydl":  # check against the numpy formula before timing
        got = fn()
        want_loss, want = np_ce() if op == "cross_entropy" else (None, cases["numpy"]())
        if op == "cross_entropy":
            assert got == pytest.approx(float(want_loss), rel=1e-5)
        np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6)
    benchmark.group = f"{op} {shape}"
    benchmark.pedantic(fn, rounds=200, iterations=1, warmup_rounds=5)
    t = benchmark.stats.stats.min
    RESULTS.setdefault((op, shape), {})[impl] = t
    throughput.record(benchmark, f"{op} {shape}", impl, n * c, unit="Gelem/s")
    SIZES.setdefault(shape, n * c)
    benchmark.extra_info["gelem_per_s"] = n * c / t / 1e9
    base = RESULTS[(op, shape)].get("numpy")
    if base:
        benchmark.extra_info["ratio_vs_numpy"] = base / t
