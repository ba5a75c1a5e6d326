"""One training step (forward, softmax cross-entropy, backward, Adam) of small CNNs: pydl vs torch.

Networks (float32, ReLU, PyTorch's default init, torch given the same weights):
    lenet5/b64       LeNet-5 on 1x28x28 at batch 64: Conv2d(1, 6, 5, padding 2) - ReLU - MaxPool2d(2) -
                     Conv2d(6, 16, 5) - ReLU - MaxPool2d(2) - Flatten - Linear(400, 120) - ReLU -
                     Linear(120, 84) - ReLU - Linear(84, 10)
    resnet-cifar/b32 a 3-stage CIFAR-size ResNet on 3x32x32 at batch 32: stem Conv2d(3, 16, 3) - BN - ReLU;
                     one basic block per stage (16, 32, 64 channels; stride 1, 2, 2): conv3x3 - BN - ReLU -
                     conv3x3 - BN, plus the shortcut (identity in stage 1, a projection Conv2d 1x1 stride 2 -
                     BN in stages 2 and 3), then ReLU; AdaptiveAvgPool2d(1) - Flatten - Linear(64, 10);
                     convolutions without bias, BatchNorm2d in training mode
    mnist1d-cnn/b100 the MNIST-1D paper's CNN on 1x40 signals at batch 100: three Conv1d of 25 channels
                     (kernel 5, 3, 3; stride 2; padding 1), ReLU, Flatten, Linear(125, 10)

Before timing, one step of each from the same weights and batch is checked against torch: the
loss, and every parameter's gradient (relative error of the whole tensor). The throughput is
samples per second (best round); the ratio is to torch, measured in the same run with the same
thread count, its steps interleaved with pydl's. With one thread the clock is the process's CPU
time: on the shared 2-core machine (load ~6) wall-clock ratios moved by 2x between runs, CPU-time
ratios by a few percent.
The issue's bars (1 thread): LeNet-5 >= 1.5x torch, ResNet >= 1.0x torch.

    bench/run bench/bench_cnn.py [--threads 2]
"""
import time
import types

import numpy as np
import pytest

import pydl
from pydl import nn, optim

LR = 1e-3


# ---------------------------------------------------------------- the networks (pydl)
def lenet5():
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                         nn.Linear(84, 10))


def basic_block(cin, cout, stride):
    """conv3x3 - BN - ReLU - conv3x3 - BN plus the shortcut (a 1x1 projection when the shape changes), then ReLU."""
    body = nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(), nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout))
    shortcut = None
    if stride != 1 or cin != cout:
        shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
    return nn.Sequential(nn.Residual(body, shortcut), nn.ReLU())


def resnet_cifar(widths=(16, 32, 64), classes=10):
    layers = [nn.Conv2d(3, widths[0], 3, padding=1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU()]
    cin = widths[0]
    for i, c in enumerate(widths):
        layers.append(basic_block(cin, c, 1 if i == 0 else 2))
        cin = c
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes)]
    return nn.Sequential(*layers)


def mnist1d_cnn(channels=25):
    return nn.Sequential(nn.Conv1d(1, channels, 5, stride=2, padding=1), nn.ReLU(),
                         nn.Conv1d(channels, channels, 3, stride=2, padding=1), nn.ReLU(),
                         nn.Conv1d(channels, channels, 3, stride=2, padding=1), nn.ReLU(),
                         nn.Flatten(), nn.Linear(channels * 5, 10))


CASES = {"lenet5/b64": (lenet5, (1, 28, 28), 64), "resnet-cifar/b32": (resnet_cifar, (3, 32, 32), 32),
         "mnist1d-cnn/b100": (mnist1d_cnn, (1, 40), 100)}


# ---------------------------------------------------------------- the same networks in torch
def to_torch(module):
    """A torch module computing what the pydl ``module`` computes, with its parameters copied."""
    import torch

    tnn = torch.nn

    class Residual(tnn.Module):
        def __init__(self, body, shortcut):
            super().__init__()
            self.body, self.shortcut = body, shortcut

        def forward(self, x):
            return self.body(x) + (x if self.shortcut is None else self.shortcut(x))

    m = module
    if isinstance(m, nn.Sequential):
        return tnn.Sequential(*(to_torch(c) for c in m))
    if isinstance(m, nn.Residual):
        return Residual(to_torch(m.module), None if m.shortcut is None else to_torch(m.shortcut))
    if isinstance(m, (nn.Conv1d, nn.Conv2d)):
        cls = tnn.Conv1d if isinstance(m, nn.Conv1d) else tnn.Conv2d
        t = cls(m.in_channels, m.out_channels, m.kernel_size, stride=m.stride, padding=m.padding,
                dilation=m.dilation, groups=m.groups, bias=m.bias is not None)
    elif isinstance(m, nn.Linear):
        t = tnn.Linear(m.in_features, m.out_features)
    elif isinstance(m, nn.BatchNorm2d):
        t = tnn.BatchNorm2d(m.num_features, eps=m.eps, momentum=m.momentum)
    elif isinstance(m, nn.MaxPool2d):
        t = tnn.MaxPool2d(m.kernel_size, m.stride, m.padding)
    elif isinstance(m, nn.AdaptiveAvgPool2d):
        t = tnn.AdaptiveAvgPool2d(m.output_size)
    elif isinstance(m, nn.ReLU):
        t = tnn.ReLU()
    elif isinstance(m, nn.Flatten):
        t = tnn.Flatten()
    else:
        raise TypeError(f"to_torch: no torch counterpart for {type(m).__name__}")
    with torch.no_grad():
        for name, p in m.named_parameters():
            getattr(t, name).copy_(torch.from_numpy(p.data))
    return t


# ---------------------------------------------------------------- steps
def _batch(shape, batch, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch,) + shape).astype(np.float32), rng.integers(0, 10, batch)


def pydl_step_fn(model, x, y):
    loss_fn = nn.CrossEntropyLoss()
    opt = optim.Adam(model.parameters(), lr=LR)

    def step():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        model.backward(loss_fn.backward(), input_grad=False)
        opt.step()
        return loss

    return step, opt


def torch_step_fn(model, x, y):
    import torch

    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    loss_fn = torch.nn.CrossEntropyLoss()
    opt = torch.optim.Adam(model.parameters(), lr=LR)

    def step():
        opt.zero_grad()
        loss = loss_fn(model(tx), ty)
        loss.backward()
        opt.step()
        return loss

    return step, opt


def check_against_torch(model, tmodel, x, y):
    """One forward/backward of each from the same weights: the losses and all gradients agree."""
    import torch

    loss_fn = nn.CrossEntropyLoss()
    loss = loss_fn(model(x), y)
    model.backward(loss_fn.backward(), input_grad=False)
    tloss = torch.nn.functional.cross_entropy(tmodel(torch.from_numpy(x)), torch.from_numpy(y))
    tloss.backward()
    assert abs(loss - tloss.item()) <= 1e-4 * abs(tloss.item()), (loss, tloss.item())
    params, tparams = list(model.named_parameters()), list(tmodel.parameters())
    assert len(params) == len(tparams)
    for (name, p), tp in zip(params, tparams):
        g, tg = p.grad, tp.grad.numpy()
        assert g.shape == tg.shape, name
        err = np.linalg.norm(g - tg) / max(np.linalg.norm(tg), 1e-12)
        assert err < 1e-4, f"{name}: relative gradient error {err:.2e}"
    model.zero_grad()
    tmodel.zero_grad()


def make_steps(name, check=True):
    """{"pydl": step, "torch": step} for CASES[name], from the same weights; and the batch size."""
    build, shape, batch = CASES[name]
    pydl.manual_seed(0)
    model = build()
    x, y = _batch(shape, batch)
    steps = {}
    try:
        tmodel = to_torch(model)
    except ImportError:
        tmodel = None
    if tmodel is not None:
        if check:
            check_against_torch(model, tmodel, x, y)
        steps["torch"] = torch_step_fn(tmodel, x, y)[0]
    steps["pydl"] = pydl_step_fn(model, x, y)[0]
    return steps, batch


class _HandTimed:
    """Seconds per call timed by hand, shaped as ``Throughput.record`` reads a benchmark."""

    def __init__(self, seconds):
        self.stats = types.SimpleNamespace(stats=types.SimpleNamespace(min=min(seconds)))
        self.extra_info = {}


def _timed(step, clock, seconds):
    def run():
        t0 = clock()
        step()
        seconds.append(clock() - t0)
    return run


@pytest.mark.parametrize("name", list(CASES))
def test_cnn_train_step(benchmark, throughput, bench_threads, settle, name):
    """pytest-benchmark runs the pydl step (its table: wall time); one torch step runs in the
    untimed setup of every round, so the two alternate and see the same machine load. Both are
    also timed by hand with one clock, which the throughput table uses (best round of each): CPU
    time of the process with one thread (on a shared machine it leaves out the time other
    processes hold the core; everything runs on the calling thread), wall time with more."""
    steps, batch = make_steps(name)
    for step in steps.values():
        for _ in range(3):  # warm up (scratch buffers, oneDNN primitives)
            step()
    clock = time.process_time if bench_threads == 1 else time.perf_counter
    seconds = {impl: [] for impl in steps}
    torch_step = _timed(steps["torch"], clock, seconds["torch"]) if "torch" in steps else None

    def torch_round():
        if torch_step is not None:
            torch_step()
            settle(0.05)  # with 2 threads: let torch's OpenMP workers stop spinning

    benchmark.group = f"cnn train step {name}"
    benchmark.extra_info["batch"] = batch
    rounds = max(15, min(150, int(4e6 / (batch * np.prod(CASES[name][1])))))
    benchmark.pedantic(_timed(steps["pydl"], clock, seconds["pydl"]), setup=torch_round, rounds=rounds,
                       warmup_rounds=1)
    if getattr(benchmark, "stats", None) is None:  # --benchmark-disable
        return
    group = f"cnn train step {name} ({bench_threads}t, {'cpu' if bench_threads == 1 else 'wall'})"
    for impl, secs in seconds.items():
        throughput.record(_HandTimed(secs), group, impl, batch, unit="samples/s", scale=1.0, baseline="torch")
