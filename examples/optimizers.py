"""Seven optimizers: SGD, Momentum, Nesterov, Adagrad, Adadelta, RMSprop, Adam.

1. Digits: the same MLP (64-128-64-10, ReLU, batch 32) trained with each optimizer; table of the
   final training loss, test accuracy and the first epoch whose training loss is below 0.1 (the
   target: a run that never gets there within the epochs is flagged MISSED).
2. The Rosenbrock function f(x, y) = (1 - x)^2 + 100 (y - x^2)^2 (minimum 0 at (1, 1)), from
   (-1.5, 2): pydl.optim applied directly to a 2-parameter nn.Parameter whose gradient is set to
   the analytic one, (df/dx, df/dy) = (-2(1 - x) - 400 x (y - x^2), 200 (y - x^2)).
   Trajectories over the contours, and f against the step; the target is f < 1e-3 within the
   steps (flagged MISSED otherwise).

One seed (a single run per optimizer: no spread is reported).

    python examples/optimizers.py --out runs/examples
"""
import numpy as np

import pydl
from pydl import nn, optim
from pydl.train import Trainer, build_mlp

import _common as C

# (name, factory(params) -> optimizer) for the MLP on digits
DIGITS = [
    ("SGD", lambda p: optim.SGD(p, lr=0.1)),
    ("Momentum", lambda p: optim.SGD(p, lr=0.01, momentum=0.9)),
    ("Nesterov", lambda p: optim.SGD(p, lr=0.01, momentum=0.9, nesterov=True)),
    ("Adagrad", lambda p: optim.Adagrad(p, lr=0.05)),
    ("Adadelta", lambda p: optim.Adadelta(p, lr=1.0)),
    ("RMSprop", lambda p: optim.RMSprop(p, lr=1e-3)),
    ("Adam", lambda p: optim.Adam(p, lr=1e-3)),
]

# learning rates for Rosenbrock (its curvature reaches ~2000 along the valley walls)
ROSENBROCK = [
    ("SGD", lambda p: optim.SGD(p, lr=1e-3)),
    ("Momentum", lambda p: optim.SGD(p, lr=5e-4, momentum=0.9)),
    ("Nesterov", lambda p: optim.SGD(p, lr=5e-4, momentum=0.9, nesterov=True)),
    ("Adagrad", lambda p: optim.Adagrad(p, lr=0.5)),
    ("Adadelta", lambda p: optim.Adadelta(p, lr=1.0)),
    ("RMSprop", lambda p: optim.RMSprop(p, lr=1e-2)),
    ("Adam", lambda p: optim.Adam(p, lr=0.05)),
]


def rosenbrock(w):
    x, y = w
    return (1 - x) ** 2 + 100 * (y - x * x) ** 2


def rosenbrock_grad(w):
    x, y = w
    return np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])


def run_rosenbrock(factory, steps, start=(-1.5, 2.0)):
    w = nn.Parameter(np.array(start, dtype=np.float64))
    opt = factory([w])
    path = [w.data.copy()]
    for _ in range(steps):
        opt.zero_grad()
        w.grad = rosenbrock_grad(w.data)
        opt.step()
        path.append(w.data.copy())
    return np.array(path)


def main():
    args = C.parser(__doc__.splitlines()[0]).parse_args()
    epochs = 8 if args.quick else 30
    x_tr, x_te, y_tr, y_te = C.digits_split(args.seed)
    rows, curves = [], {}
    for name, factory in DIGITS:
        pydl.manual_seed(args.seed)
        model = build_mlp(64, (128, 64), 10)
        trainer = Trainer(model, nn.CrossEntropyLoss(), factory(model.parameters()))
        with C.Timer() as t:
            hist = trainer.fit(x_tr, y_tr, epochs=epochs, batch_size=32, verbose=0)
        loss = hist.history["loss"]
        below = next((i + 1 for i, v in enumerate(loss) if v < 0.1), None)
        rows.append([name, loss[-1], trainer.evaluate(x_te, y_te)["accuracy"], below or "-",
                     C.verdict(below is not None), f"{t.seconds:.1f}"])
        curves[name] = loss
    print(f"Digits, MLP 64-128-64-10, batch 32, {epochs} epochs, 1 seed")
    C.table(["optimizer", "train loss", "test acc", "epoch loss<0.1", "target loss<0.1", "seconds"], rows)
    targets = [(f"{r[0]} (digits)", r[4] == "yes") for r in rows]

    steps = 500 if args.quick else 3000
    paths = {name: run_rosenbrock(f, steps) for name, f in ROSENBROCK}
    rows = []
    for name, path in paths.items():
        f = np.array([rosenbrock(w) for w in path])
        hit = np.nonzero(f < 1e-3)[0]
        rows.append([name, float(f[-1]), float(np.linalg.norm(path[-1] - 1.0)), int(hit[0]) if hit.size else "-",
                     C.verdict(hit.size > 0)])
        targets.append((f"{name} (Rosenbrock)", hit.size > 0))
    print(f"\nRosenbrock from (-1.5, 2), {steps} steps")
    C.table(["optimizer", "final f", "|w - (1,1)|", "step f<1e-3", "target f<1e-3"], rows, floatfmt="{:.3g}")
    C.report_targets(targets)

    fig = C.figure(3, 1, size=(5.2, 4.2))
    if fig is not None:
        ax = fig.add_subplot(1, 3, 1)
        for name, loss in curves.items():
            ax.semilogy(range(1, len(loss) + 1), loss, label=name)
        ax.axhline(0.1, color="k", ls=":", lw=1)
        ax.text(1, 0.1, " target 0.1", va="bottom", fontsize=8)
        ax.set(xlabel="epoch", ylabel="training loss (log scale)", title="Digits MLP")
        ax = fig.add_subplot(1, 3, 2)
        gx, gy = np.meshgrid(np.linspace(-2, 2, 300), np.linspace(-1, 3, 300))
        ax.contour(gx, gy, np.log10(rosenbrock((gx, gy)) + 1e-3), levels=25, cmap="Greys", linewidths=0.4, alpha=0.6)
        for name, path in paths.items():
            ax.plot(path[:, 0], path[:, 1], lw=1.2, label=name)
        ax.plot([1], [1], "k*", ms=12)
        ax.set(xlim=(-2, 2), ylim=(-1, 3), xlabel="x", ylabel="y", title="Rosenbrock trajectories (* minimum)")
        ax = fig.add_subplot(1, 3, 3)
        for name, path in paths.items():
            ax.semilogy([rosenbrock(w) + 1e-16 for w in path], label=name)
        ax.axhline(1e-3, color="k", ls=":", lw=1)
        ax.text(0, 1e-3, " target 1e-3", va="bottom", fontsize=8)
        ax.set(xlabel="step", ylabel="f(w) (log scale)", title="Rosenbrock: f against step")
        C.legend_outside(ax, fontsize=8, title="optimizer")       # one legend: the colours are shared
        C.save(fig, args.out, "optimizers.png")


if __name__ == "__main__":
    main()
