"""Optimizer step throughput: pydl (raw kernel and optim.<Opt>.step) vs hand-written numpy
(in-place ufuncs with out=, no temporaries beyond one scratch array per tensor) and torch
(foreach and fused where available), float32, one thread, in the same run.

Run:  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m pytest bench/bench_optim.py --benchmark-enable -s
Each case checks one step against the numpy update before timing. At the end a table prints
Gelem/s (parameters updated per second) from the median and the best time, and the speed of
each implementation relative to numpy (this/numpy) and pydl's optim path relative to it (optim/this). Bar: optim.Adam over 1M float32 parameters >= 2 Gelem/s on one thread.
"""
import numpy as np
import pytest

import pydl
from pydl import _C, nn, optim

from _baselines import numpy_adam_step

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None

SIZES = {"1M": 1 << 20, "16M": 1 << 24}
FRACTIONS = [0.3, 0.2, 0.15, 0.1, 0.08, 0.06, 0.05, 0.03, 0.02, 0.01]  # ~10 tensors, unequal
LR, BETAS, EPS, MOMENTUM = 1e-3, (0.9, 0.999), 1e-8, 0.9
RESULTS = {}  # (optimizer, size) -> {impl: (median seconds, min seconds)}


def split(n):
    sizes = [int(f * n) for f in FRACTIONS]
    sizes[0] += n - sum(sizes)
    return sizes


@pytest.fixture(scope="module", autouse=True)
def one_thread_and_report():
    threads = pydl.get_num_threads()
    pydl.set_num_threads(1)
    if torch is not None:
        torch_threads = torch.get_num_threads()
        torch.set_num_threads(1)
    yield
    pydl.set_num_threads(threads)
    if torch is not None:
        torch.set_num_threads(torch_threads)
    print(f"\n\noptimizer steps, float32, 1 thread (isa={_C.active_isa()}): Gelem/s from the median "
          "(best) time; ratios of medians")
    for (opt, size), res in sorted(RESULTS.items()):
        n = SIZES[size]
        base, ours = res.get("numpy", (None,))[0], res.get("optim", (None,))[0]
        for impl, (t, t_min) in sorted(res.items(), key=lambda kv: kv[1][0]):
            line = f"  {opt:<13} {size:>4} {impl:<14} {n / t / 1e9:6.2f} ({n / t_min / 1e9:5.2f}) Gelem/s"
            if base:
                line += f"   this/numpy x{base / t:5.2f}"
            if ours:
                line += f"   optim/this x{t / ours:5.2f}"
            print(line)


class Problem:
    """n float32 parameters in ~10 tensors with fixed gradients, and matching numpy/torch copies."""

    def __init__(self, n, seed=0):
        rng = np.random.default_rng(seed)
        self.params = [nn.Parameter(rng.standard_normal(s, dtype=np.float32)) for s in split(n)]
        for p in self.params:
            p.grad = rng.standard_normal(p.shape, dtype=np.float32)

    def arrays(self):
        return [p.data.copy() for p in self.params], [p.grad for p in self.params]

    def torch_params(self):
        ts = []
        for p in self.params:
            t = torch.tensor(p.data.copy(), requires_grad=True)
            t.grad = torch.from_numpy(p.grad)
            ts.append(t)
        return ts


def add_torch_impls(impls, prob, name, **hyper):
    """Add torch.optim.<name> steps, foreach and fused (where this torch has them), to ``impls``."""
    if torch is None:
        return
    for kind in ("foreach", "fused"):
        tps = prob.torch_params()
        try:
            topt = getattr(torch.optim, name)(tps, **hyper, **{kind: True})
            topt.step()
        except (RuntimeError, TypeError):
            continue
        impls[f"torch_{kind}"] = topt.step


def check_against_numpy(impls, prob, nps, rtol, atol):
    """One step of pydl's optim and of numpy from the same start: they must agree, and move."""
    before = [p.data.copy() for p in prob.params]
    impls["optim"]()
    impls["numpy"]()
    for p, q in zip(prob.params, nps):
        np.testing.assert_allclose(p.data, q, rtol=rtol, atol=atol)
    assert any(not np.array_equal(p.data, b) for p, b in zip(prob.params, before))


# -- Adam --------------------------------------------------------------------------------------
def adam_impls(prob):
    """name -> zero-argument step function; each keeps its own copy of the parameters."""
    impls = {"optim": optim.Adam(prob.params, lr=LR, betas=BETAS, eps=EPS).step}
    ps, gs = prob.arrays()
    ms, vs = [np.zeros_like(p) for p in ps], [np.zeros_like(p) for p in ps]
    t_kernel = [0]

    def kernel():
        t_kernel[0] += 1
        _C.adam_step(ps, gs, ms, vs, None, [t_kernel[0]] * len(ps), lr=LR, beta1=BETAS[0], beta2=BETAS[1],
                     eps=EPS, weight_decay=0.0, amsgrad=False, maximize=False)
    impls["kernel"] = kernel

    nps, ngs = prob.arrays()
    nms, nvs, tmps = ([np.zeros_like(p) for p in nps] for _ in range(3))
    t_numpy = [0]

    def numpy_step():
        t_numpy[0] += 1
        numpy_adam_step(nps, ngs, nms, nvs, tmps, t_numpy[0], LR, BETAS, EPS)
    impls["numpy"] = numpy_step

    add_torch_impls(impls, prob, "Adam", lr=LR, betas=BETAS, eps=EPS)
    return impls, nps


# -- SGD with momentum -------------------------------------------------------------------------
def sgd_impls(prob):
    """name -> zero-argument step function; each keeps its own copy of the parameters."""
    impls = {"optim": optim.SGD(prob.params, lr=LR, momentum=MOMENTUM).step}
    ps, gs = prob.arrays()
    bufs = [np.empty_like(p) for p in ps]
    first = [True]

    def kernel():
        _C.sgd_step(ps, gs, bufs, [first[0]] * len(ps), lr=LR, momentum=MOMENTUM, dampening=0.0,
                    weight_decay=0.0, nesterov=False, maximize=False)
        first[0] = False
    impls["kernel"] = kernel

    nps, ngs = prob.arrays()
    nbufs, tmps = [None] * len(nps), [np.empty_like(p) for p in nps]

    def numpy_step():
        for i, (p, g, tmp) in enumerate(zip(nps, ngs, tmps)):
            if nbufs[i] is None:
                nbufs[i] = g.copy()
            else:
                nbufs[i] *= MOMENTUM
                nbufs[i] += g
            np.multiply(nbufs[i], LR, out=tmp)
            p -= tmp
    impls["numpy"] = numpy_step

    add_torch_impls(impls, prob, "SGD", lr=LR, momentum=MOMENTUM)
    return impls, nps



# optimizer -> (its implementations, tolerances of pydl against numpy after one step)
CASES = {"Adam": (adam_impls, dict(rtol=1e-5, atol=1e-6)), "SGD-momentum": (sgd_impls, dict(rtol=1e-6, atol=1e-7))}


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("impl", ["kernel", "optim", "numpy", "torch_foreach", "torch_fused"])
@pytest.mark.parametrize("opt_name", list(CASES))
def test_step(benchmark, throughput, opt_name, size, impl):
    make_impls, tolerance = CASES[opt_name]
    prob = Problem(SIZES[size])
    impls, nps = make_impls(prob)
    check_against_numpy(impls, prob, nps, **tolerance)
    if impl not in impls:
        pytest.skip(f"{impl} not available")
    n = SIZES[size]
    rounds = 40 if n <= 1 << 20 else 6
    benchmark.pedantic(impls[impl], rounds=rounds, warmup_rounds=2)
    RESULTS.setdefault((opt_name, size), {})[impl] = (benchmark.stats.stats.median, benchmark.stats.stats.min)
    throughput.record(benchmark, f"{opt_name} step {size}", impl, n, unit="Gelem/s")
    benchmark.extra_info["gelem_per_s"] = n / benchmark.stats.stats.median / 1e9
