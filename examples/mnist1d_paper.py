"""MNIST-1D (Greydanus 2020, "Scaling down deep learning"): the paper's CNN and MLP rows and a residual MLP, pydl next to torch.

(Named mnist1d_paper.py: a script named mnist1d.py would shadow the mnist1d package it imports.)

Data: ``pydl.datasets.load_mnist1d`` (the paper's data set: 4000 training / 1000 test signals of
length 40, built locally by the ``mnist1d`` package, seed 42).

Models (the paper's, from the mnist1d repository's ConvBase / MLPBase):
- CNN: Conv1d(1, 25, 5, stride 2, padding 1) - ReLU - Conv1d(25, 25, 3, stride 2, padding 1) - ReLU -
  Conv1d(25, 25, 3, stride 2, padding 1) - ReLU - Flatten - Linear(125, 10); lengths 40 -> 19 -> 10 -> 5.
- MLP: Linear(40, 100) - ReLU - Linear(100, 100) - ReLU - Linear(100, 10).
- ResMLP: the residual network of Prince, "Understanding Deep Learning" (MIT Press 2023), notebook
  11.2 "Residual networks", on MNIST-1D: Linear(40, 100), then two residual blocks
  h + Linear(100, 100)(ReLU(h)) (the book's figure 11.5b order: ReLU before the linear map inside
  the branch), then Linear(100, 10); in pydl
  Sequential(Linear(40, 100), Residual(Sequential(ReLU(), Linear(100, 100))) x 2, Linear(100, 10)).
All with PyTorch's default init (the notebook uses He init and SGD; here the paper's protocol).

Protocol (the repository's train.py): Adam lr 1e-2, no weight decay, batch 100, steps 0..8000
(8001 updates); the batches are taken in order, without shuffling (step * 100 mod 4000); the
test loss and accuracy are measured every 250 steps (here under no_grad). Reported: the final
and the best test accuracy, and the wall time of the whole run (training and evaluation).

Target: the paper's test accuracies (the mnist1d repository's table: MLP 68%, CNN 94%), within
3 points, for the final accuracy of each run; a run below is flagged MISSED (``--quick``, 300
steps, is not judged). The residual MLP has no published figure: it is held to the paper's
MLP figure (the notebook asks whether the residual connections change the MLP's performance).
One seed: the paper's single-run protocol, no spread is reported.

The torch run (when torch is installed) starts from the same initial weights (copied from
pydl's) and sees the same batches, in the same process, with the same thread count. The speed
ratio is torch's time over pydl's: CPU time of the process with one thread (it leaves out the
time other processes hold the core of a shared machine), wall time with more.

    python examples/mnist1d_paper.py --out runs/examples            # ~35 s on a Zen 5 core (pydl ~9 s, torch ~21 s)
    python examples/mnist1d_paper.py --quick                        # 300 steps, for the tests
"""
import numpy as np

import pydl
from pydl import nn, optim
from pydl.datasets import load_mnist1d
from pydl.train import TrainStep

import _common as C

LR, BATCH, STEPS, EVAL_EVERY = 1e-2, 100, 8000, 250
#: the paper's test accuracies (github.com/greydanus/mnist1d README) and the tolerance of the target
PAPER_ACCURACY, TOLERANCE = {"CNN": 0.94, "MLP": 0.68}, 0.03
#: each row's reference accuracy: the paper's figure (the residual MLP: the paper's MLP figure, see above)
TARGET = {"CNN": "CNN", "MLP": "MLP", "ResMLP": "MLP"}


def paper_cnn(channels=25, length=40, classes=10):
    """The paper's CNN as a pydl Sequential (Conv1d+ReLU pairs run fused)."""
    out_len = length
    for k in (5, 3, 3):
        out_len = (out_len + 2 - k) // 2 + 1
    return nn.Sequential(
        nn.Conv1d(1, channels, 5, stride=2, padding=1), nn.ReLU(),
        nn.Conv1d(channels, channels, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv1d(channels, channels, 3, stride=2, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(channels * out_len, classes))


def paper_mlp(inputs=40, hidden=100, classes=10):
    """The paper's MLP: two hidden layers of ``hidden`` ReLU units."""
    return nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, classes))


def residual_mlp(inputs=40, hidden=100, classes=10, blocks=2):
    """Prince's residual MLP (UDL notebook 11.2): Linear(inputs, hidden), ``blocks`` residual blocks
    h + Linear(ReLU(h)), Linear(hidden, classes). TrainStep runs its step in one C++ call too."""
    return nn.Sequential(nn.Linear(inputs, hidden),
                         *(nn.Residual(nn.Sequential(nn.ReLU(), nn.Linear(hidden, hidden))) for _ in range(blocks)),
                         nn.Linear(hidden, classes))


def to_torch(model):
    """The same network in torch, with ``model``'s weights copied (Sequential, Residual with an
    identity shortcut, Conv1d, Linear, ReLU, Flatten)."""
    import torch

    class Residual(torch.nn.Module):
        def __init__(self, module):
            super().__init__()
            self.module = module

        def forward(self, x):
            return x + self.module(x)

    m = model
    if isinstance(m, nn.Sequential):
        return torch.nn.Sequential(*(to_torch(c) for c in m))
    if isinstance(m, nn.Residual) and m.shortcut is None:
        return Residual(to_torch(m.module))
    if isinstance(m, nn.ReLU):
        return torch.nn.ReLU()
    if isinstance(m, nn.Flatten):
        return torch.nn.Flatten()
    if isinstance(m, nn.Conv1d):
        t = torch.nn.Conv1d(m.in_channels, m.out_channels, m.kernel_size, stride=m.stride, padding=m.padding)
    elif isinstance(m, nn.Linear):
        t = torch.nn.Linear(m.in_features, m.out_features)
    else:
        raise TypeError(f"to_torch: no torch counterpart for {type(m).__name__}")
    with torch.no_grad():
        t.weight.copy_(torch.from_numpy(m.weight.data))
        t.bias.copy_(torch.from_numpy(m.bias.data))
    return t


def train_pydl(model, data, steps, eval_every=EVAL_EVERY):
    """The paper's loop in pydl; returns (eval steps, test accuracies, final train loss, timer)
    (``timer.seconds`` wall, ``timer.cpu_seconds`` CPU).

    ``TrainStep`` runs zero_grad, forward, loss, backward and the Adam step (for the MLPs in one C++
    call; the CNN step by step), with the results of writing them out."""
    x, y, xt, yt = data
    train_step = TrainStep(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=LR))
    evals, accs = [], []
    with C.Timer() as timer:
        for step in range(steps + 1):
            bix = step * BATCH % len(x)
            loss = train_step(x[bix:bix + BATCH], y[bix:bix + BATCH])
            if step % eval_every == 0 or step == steps:
                with pydl.no_grad():
                    accs.append(float(np.mean(model(xt).argmax(1) == yt)))
                evals.append(step)
    return evals, accs, loss, timer


def train_torch(model, data, steps, eval_every=EVAL_EVERY):
    """The same loop in torch (the repository's train.py, evaluation under no_grad)."""
    import torch

    x, y, xt, yt = (torch.from_numpy(a) for a in data)
    loss_fn = torch.nn.CrossEntropyLoss()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    evals, accs = [], []
    with C.Timer() as timer:
        for step in range(steps + 1):
            bix = step * BATCH % len(x)
            loss = loss_fn(model(x[bix:bix + BATCH]), y[bix:bix + BATCH])
            loss.backward()
            opt.step()
            opt.zero_grad()
            if step % eval_every == 0 or step == steps:
                with torch.no_grad():
                    accs.append(float((model(xt).argmax(1) == yt).float().mean()))
                evals.append(step)
    return evals, accs, loss.item(), timer


def main():
    p = C.parser(__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1, help="threads for pydl and torch (default 1, as the paper's bar)")
    p.add_argument("--no-torch", action="store_true", help="skip the torch runs")
    args = p.parse_args()
    try:
        import torch
    except ImportError:
        torch = None
    if args.no_torch:
        torch = None
    before = pydl.get_num_threads(), torch.get_num_threads() if torch is not None else None
    pydl.set_num_threads(args.threads)
    if torch is not None:
        torch.set_num_threads(args.threads)
    try:
        run(args, torch)
    finally:  # the tests run this in-process
        pydl.set_num_threads(before[0])
        if torch is not None:
            torch.set_num_threads(before[1])


def run(args, torch):
    steps, eval_every = (300, 100) if args.quick else (STEPS, EVAL_EVERY)
    flat = load_mnist1d(return_X_y=True)
    signals = load_mnist1d(return_X_y=True, as_images=True)

    rows, curves = [], {}
    cpu = args.threads == 1  # the clock of the speed ratio (see the module docstring)
    for name, build, d in (("CNN", paper_cnn, signals), ("MLP", paper_mlp, flat), ("ResMLP", residual_mlp, flat)):
        pydl.manual_seed(args.seed)
        model = build()
        twin = to_torch(model) if torch is not None else None
        runs = [("pydl", train_pydl, model)] + ([("torch", train_torch, twin)] if twin is not None else [])
        results = {impl: train(m, d, steps, eval_every) for impl, train, m in runs}
        for impl, (evals, accs, loss, timer) in results.items():
            curves[f"{name} {impl}"] = (evals, accs)
            clock = (lambda t: t.cpu_seconds) if cpu else (lambda t: t.seconds)
            speedup = f"{clock(results['torch'][3]) / clock(timer):.2f}x" if "torch" in results else "-"
            ref = PAPER_ACCURACY[TARGET[name]]
            met = accs[-1] >= ref - TOLERANCE if not args.quick else None  # targets are for the full run
            rows.append([name, impl, accs[-1], max(accs), f"{ref:.2f}" + ("" if TARGET[name] == name else " (MLP)"),
                         C.verdict(met) if met is not None else "n/a (--quick)", f"{loss:.2e}", f"{timer.seconds:.1f}", f"{timer.cpu_seconds:.1f}",
                         f"{(steps + 1) / timer.seconds:,.0f}", speedup])
    print(f"MNIST-1D, paper protocol: Adam {LR:g}, batch {BATCH}, {steps} steps, test accuracy every "
          f"{eval_every} steps; {args.threads} thread(s); 1 seed")
    C.table(["model", "impl", "final test acc", "best test acc", "paper", f"target (paper - {TOLERANCE})",
             "last train loss", "seconds", "cpu s", "steps/s", f"torch time / time ({'cpu' if cpu else 'wall'})"],
            rows)
    if args.quick:
        print(f"targets: not judged (--quick runs {steps} steps; the paper's accuracies are for {STEPS})")
    else:
        C.report_targets([(f"{r[0]} {r[1]}", r[5] == "yes") for r in rows])

    fig = C.figure(1, 1, size=(6.0, 4.2))
    if fig is not None:
        ax = fig.add_subplot(1, 1, 1)
        styles = {"pydl": "-", "torch": "--"}
        colors = {"CNN": "C0", "MLP": "C1", "ResMLP": "C2"}
        for key, (evals, accs) in curves.items():
            model_name, impl = key.split()
            ax.plot(evals, accs, styles[impl], color=colors[model_name], label=key)
        for name, acc in PAPER_ACCURACY.items():
            ax.axhline(acc, color=colors[name], ls=":", lw=1)
            ax.text(0, acc, f" paper {name} {acc:.2f}", va="bottom", fontsize=8, color=colors[name])
        ax.set(xlabel="training step", ylabel="test accuracy", ylim=(0, 1),
               title=f"MNIST-1D, Adam {LR:g}, batch {BATCH} (1 seed)")
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
        C.save(fig, args.out, "mnist1d_paper.png")


if __name__ == "__main__":
    main()
