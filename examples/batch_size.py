"""Batch size and generalization: stochastic, mini-batch and full-batch gradient descent.

The same MLP (64-256-256-10, ReLU) is trained on 600 digits with plain SGD (lr 0.1) and batch
sizes from 1 (stochastic GD) to 600 (full-batch GD), each until its training loss (measured in
eval mode on the whole training set after each epoch) falls below 0.02, or an epoch budget runs
out. For each run: optimizer steps, training and test loss, the generalization gap (test loss -
training loss), test accuracy, and a sharpness measure in the spirit of Keskar et al. 2017 ("On
Large-Batch Training for Deep Learning: Generalization Gap and Sharp Minima"): the largest
relative increase of the training loss over random points of the box |delta_i| <= eps (|w_i| +
1) around the final weights w,

    sharpness = 100 * max_k (L(w + delta_k) - L(w)) / (1 + L(w)),

with eps = 0.05, estimated with 40 uniform random points (Keskar et al. maximize over the box
with L-BFGS-B; random points give a lower bound of that maximum). Large batches tend to reach
sharper minima; the noise of small batches steers SGD to flatter ones.

The target of every run is a training loss below 0.02; a run whose epoch budget ends first is
flagged MISSED in the table (its gap and sharpness then compare a less-trained network). One seed
per batch size: no spread is reported.

    python examples/batch_size.py --out runs/examples
"""
import numpy as np

import pydl
from pydl import nn, optim
from pydl.train import Trainer, build_mlp
from pydl.train.callbacks import Callback

import _common as C


class StopBelow(Callback):
    """Stop once the training-set loss, in eval mode, is below ``threshold``."""

    def __init__(self, x, y, threshold):
        self.x, self.y, self.threshold = x, y, threshold

    def on_epoch_end(self, epoch, logs=None):
        if self.trainer.evaluate(self.x, self.y)["loss"] < self.threshold:
            self.trainer.stop_training = True


def sharpness(trainer, x, y, eps=0.05, samples=40, seed=0):
    rng = np.random.default_rng(seed)
    params = [p for p in trainer.model.parameters()]
    w0 = [p.data.copy() for p in params]
    base = trainer.evaluate(x, y)["loss"]
    worst = 0.0
    for _ in range(samples):
        for p, w in zip(params, w0):
            p.data[...] = w + eps * (np.abs(w) + 1) * rng.uniform(-1, 1, w.shape).astype(w.dtype)
        worst = max(worst, trainer.evaluate(x, y)["loss"] - base)
    for p, w in zip(params, w0):
        p.data[...] = w
    return 100.0 * worst / (1.0 + base)


def main():
    args = C.parser(__doc__.splitlines()[0]).parse_args()
    x_tr, x_te, y_tr, y_te = C.digits_split(args.seed, n_train=600)
    sizes = [16, 600] if args.quick else [1, 8, 32, 128, 600]
    rows, results = [], []
    for bs in sizes:
        pydl.manual_seed(args.seed)
        model = build_mlp(64, (256, 256), 10)
        trainer = Trainer(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1),
                          callbacks=[StopBelow(x_tr, y_tr, 0.02)])
        epochs = 20 if args.quick else (1500 if bs >= 128 else 400)
        with C.Timer() as t:
            hist = trainer.fit(x_tr, y_tr, epochs=epochs, batch_size=bs, verbose=0)
        tr = trainer.evaluate(x_tr, y_tr)
        te = trainer.evaluate(x_te, y_te)
        sharp = sharpness(trainer, x_tr, y_tr, seed=args.seed)
        steps = len(hist.epoch) * hist.params["steps"]
        label = "full" if bs >= len(y_tr) else str(bs)
        met = tr["loss"] < 0.02
        rows.append([label, len(hist.epoch), steps, tr["loss"], C.verdict(met), te["loss"], te["loss"] - tr["loss"],
                     te["accuracy"], sharp, f"{t.seconds:.1f}"])
        results.append((label, te["loss"] - tr["loss"], te["accuracy"], sharp, met))
    print("Digits (600 training samples), MLP 64-256-256-10, SGD lr 0.1, trained to training loss < 0.02, 1 seed")
    C.table(["batch", "epochs", "steps", "train loss", "target <0.02", "test loss", "gap", "test acc",
             "sharpness %", "s"], rows)
    C.report_targets([(f"batch {r[0]}", r[4]) for r in results])

    fig = C.figure(3, 1, size=(4.2, 3.6))
    if fig is not None:
        labels = [r[0] + ("" if r[4] else "\n(MISSED)") for r in results]
        for i, (title, k) in enumerate((("generalization gap (test - train loss)", 1), ("test accuracy", 2),
                                        ("sharpness (%)", 3))):
            ax = fig.add_subplot(1, 3, i + 1)
            ax.bar(labels, [r[k] for r in results], color="tab:blue" if k != 3 else "tab:red")
            ax.set(xlabel="batch size (1 seed each)", title=title)
            if k == 2:
                ax.set_ylim(0.0, 1.0)
        C.save(fig, args.out, "batch_size.png")


if __name__ == "__main__":
    main()
