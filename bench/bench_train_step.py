"""One training step (forward, softmax cross-entropy, backward, Adam) of an MLP: pydl vs torch vs numpy.

Networks (ReLU between the Linear layers, float32, one thread everywhere):
    64-128-64-10 at batch 32 and 784-512-256-10 at batch 128.
pydl runs three ways: the hand-written loop (``pydl``; ``pydl-no-dx`` with
``backward(..., input_grad=False)``) and ``pydl.train.TrainStep`` (``pydl-step``: the fused
step ``Trainer.fit`` runs, bitwise equal to pydl-no-dx). Baselines in the same run: the same network in torch (torch.set_num_threads(1), the input does
not require grad) and a hand-written numpy loop (forward with @ and bias, relu via np.maximum,
softmax-CE, backward, Adam with in-place ufuncs). Before timing, one pydl step is checked
against one numpy step from the same weights.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/bench_train_step.py
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m pytest bench/bench_train_step.py --benchmark-enable
"""
import timeit

import numpy as np
import pytest

import pydl
from pydl import nn, optim
from pydl.train import TrainStep

from _baselines import numpy_adam_step

CASES = {"64-128-64-10/b32": ((64, 128, 64, 10), 32), "784-512-256-10/b128": ((784, 512, 256, 10), 128)}
LR, BETAS, EPS = 1e-3, (0.9, 0.999), 1e-8


def _data(sizes, batch, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch, sizes[0])).astype(np.float32), rng.integers(0, sizes[-1], batch)


def _init_weights(sizes):
    pydl.manual_seed(0)
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i + 2 < len(sizes):
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def pydl_step_fn(sizes, batch, input_grad=True):
    """``input_grad=False``: the first Linear skips dL/dx (as torch and the numpy loop do)."""
    model = _init_weights(sizes)
    x, y = _data(sizes, batch)
    loss_fn = nn.CrossEntropyLoss()
    opt = optim.Adam(model.parameters(), lr=LR, betas=BETAS, eps=EPS)

    def step():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        model.backward(loss_fn.backward(), input_grad=input_grad)
        opt.step()
        return loss

    return step, model


def pydl_trainstep_fn(sizes, batch):
    """The step ``Trainer.fit`` runs per batch: ``pydl.train.TrainStep``, the fused plan (one C++
    call: forward, cross-entropy, backward, Adam; the first Linear skips dL/dx)."""
    model = _init_weights(sizes)
    x, y = _data(sizes, batch)
    step = TrainStep(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=LR, betas=BETAS, eps=EPS))
    return (lambda: step(x, y)), model


def numpy_step_fn(sizes, batch, state):
    """Hand-written numpy MLP training step; ``state`` = list of (W, b) float32 arrays."""
    x, y = _data(sizes, batch)
    params = [a.copy() for wb in state for a in wb]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    tmp = [np.empty_like(p) for p in params]
    L = len(params) // 2
    rows = np.arange(batch)
    t = [0]

    def step():
        hs = [x]
        for i in range(L):
            h = hs[-1] @ params[2 * i].T
            h += params[2 * i + 1]
            if i + 1 < L:
                np.maximum(h, 0, out=h)
            hs.append(h)
        z = hs[-1]
        z -= z.max(1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(1, keepdims=True)
        loss = -np.log(z[rows, y]).mean()
        z[rows, y] -= 1
        z /= batch
        g = z
        grads = [None] * (2 * L)
        for i in reversed(range(L)):
            grads[2 * i] = g.T @ hs[i]
            grads[2 * i + 1] = g.sum(0)
            if i:
                g = g @ params[2 * i]
                g *= hs[i] > 0
        t[0] += 1
        numpy_adam_step(params, grads, m, v, tmp, t[0], LR, BETAS, EPS)
        return loss

    return step, params


def torch_step_fn(sizes, batch, state):
    import torch

    torch.set_num_threads(1)
    layers = []
    for i in range(len(sizes) - 1):
        lin = torch.nn.Linear(sizes[i], sizes[i + 1])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(state[i][0]))
            lin.bias.copy_(torch.from_numpy(state[i][1]))
        layers.append(lin)
        if i + 2 < len(sizes):
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    x, y = _data(sizes, batch)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    loss_fn = torch.nn.CrossEntropyLoss()
    opt = torch.optim.Adam(model.parameters(), lr=LR, betas=BETAS, eps=EPS)

    def step():
        opt.zero_grad()
        loss = loss_fn(model(tx), ty)
        loss.backward()
        opt.step()
        return loss

    return step


def make_steps(name):
    sizes, batch = CASES[name]
    pstep, model = pydl_step_fn(sizes, batch)
    state = [(lin.weight.data.copy(), lin.bias.data.copy()) for lin in model if isinstance(lin, nn.Linear)]
    nstep, nparams = numpy_step_fn(sizes, batch, state)
    pstep2, model2 = pydl_step_fn(sizes, batch, input_grad=False)
    fstep, fmodel = pydl_trainstep_fn(sizes, batch)
    # same weights, same data: a few steps of each must agree (the fused step bitwise with pydl-no-dx)
    for _ in range(3):
        lp, lp2, lf, ln = pstep(), pstep2(), fstep(), nstep()
        assert abs(lp - ln) <= 1e-5 * abs(ln) and abs(lp2 - ln) <= 1e-5 * abs(ln) and lf == lp2, (lp, lp2, lf, ln)
    for p, p2, pf, q in zip(model.parameters(), model2.parameters(), fmodel.parameters(), nparams):
        np.testing.assert_allclose(p.data, q, rtol=1e-3, atol=1e-4)  # Adam amplifies g ~ 0 noise
        np.testing.assert_array_equal(p.data, p2.data)
        np.testing.assert_array_equal(pf.data, p2.data)
    steps = {"pydl": pstep, "pydl-no-dx": pstep2, "pydl-step": fstep, "numpy": nstep}
    try:
        steps["torch"] = torch_step_fn(sizes, batch, state)
    except ImportError:
        pass
    return steps, batch


def _limit_threads():
    pydl.set_num_threads(1)
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:
        return None, "threadpoolctl not installed"
    lim = threadpool_limits(1)
    info = [f"{i['internal_api']} {i.get('architecture', '?')}" for i in threadpool_info()
            if i["user_api"] == "blas"]
    return lim, ", ".join(info)


@pytest.mark.parametrize("impl", ["pydl", "pydl-no-dx", "pydl-step", "numpy", "torch"])
@pytest.mark.parametrize("name", list(CASES))
def test_train_step(benchmark, throughput, name, impl):
    _limit_threads()
    steps, batch = make_steps(name)
    if impl not in steps:
        pytest.skip("torch not installed")
    benchmark.group = f"train step {name}"
    benchmark.extra_info["batch"] = batch
    benchmark(steps[impl])
    throughput.record(benchmark, f"train step {name}", impl, batch, unit="samples/s", scale=1.0)


def _best(fn, number, repeat=9):
    fn()
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


def main():
    _, blas = _limit_threads()
    print(f"pydl {pydl.__version__} isa={pydl.cpu_info()['isa']} threads=1; numpy BLAS: {blas}")
    print("pydl-no-dx: model.backward(g, input_grad=False), the first layer skips dL/dx as torch/numpy do")
    print("pydl-step: pydl.train.TrainStep, the fused step Trainer.fit runs (one C++ call, no dL/dx either)")
    print(f"{'case':<22}{'impl':<12}{'samples/s':>12}{'us/step':>10}{'vs numpy':>10}{'vs torch':>10}")
    for name in CASES:
        steps, batch = make_steps(name)
        number = 200 if batch <= 32 else 20
        t = {}
        for _ in range(2):  # interleave the implementations to share the machine's noise
            for k, f in steps.items():
                t[k] = min(t.get(k, float("inf")), _best(f, number, repeat=5))
        sps = {k: batch / v for k, v in t.items()}
        for k in steps:
            vt = f"{sps[k] / sps['torch']:>10.2f}" if "torch" in sps else f"{'-':>10}"
            print(f"{name:<22}{k:<12}{sps[k]:>12,.0f}{t[k] * 1e6:>10.1f}{sps[k] / sps['numpy']:>10.2f}{vt}")


if __name__ == "__main__":
    main()
