"""A CNN on the digits images: BatchNorm and augmentation, an ablation.

The network is ``pydl.train.build_cnn(1, 10)`` (the one of ``python -m pydl train --model cnn``):
Conv2d(1, 16, 3, padding 1) - [BatchNorm2d] - ReLU - MaxPool2d(2) - Conv2d(16, 32, 3, padding 1) -
[BatchNorm2d] - ReLU - AdaptiveAvgPool2d(4) - Flatten - Linear(512, 10), on the 8x8 digits as
(N, 1, 8, 8) images scaled to [0, 1]. Adam 1e-3, batch 32. To leave room for regularization to
matter, it trains on 300 images only; the test set is the usual held-out quarter (450 images).

Four rows, each over 3 seeds (mean ± std; ``--quick`` runs one seed and shows no spread):
- plain
- + BatchNorm: BatchNorm2d before each ReLU (the convolutions then have no bias)
- + augmentation: each training batch is rotated by up to ±10 degrees (pydl.data.RandomRotation)
  and shifted by up to one pixel (pydl.data.RandomCrop(8, padding=1))
- both

The test accuracy is measured after every epoch for the plot only (nothing is chosen on it).

What it shows (100 epochs, 3 seeds): BatchNorm lifts the test accuracy from ~0.95 to ~0.98 and
halves the generalization gap. The augmentation narrows the gap too but costs accuracy here: on
8x8 images a one-pixel shift moves an eighth of the image, and after 100 epochs the augmented
network still under-fits (training accuracy ~0.96); with BatchNorm it trains fully, yet stays
below BatchNorm alone. Augmentation pays on larger images and longer schedules. The table checks
the stated numbers as targets: mean test accuracy >= 0.94 plain and >= 0.97 with BatchNorm
(flagged MISSED otherwise; the augmented rows have no target).

    python examples/cnn.py --out runs/examples
"""
import numpy as np

import pydl
from pydl import data, nn, optim
from pydl.train import Trainer, build_cnn

import _common as C

CONFIGS = {"plain": (False, False), "+ BatchNorm": (True, False), "+ augmentation": (False, True),
           "both": (True, True)}
#: the mean test accuracy each row is expected to reach (the docstring's figures), or None
TARGETS = {"plain": 0.94, "+ BatchNorm": 0.97, "+ augmentation": None, "both": None}


def augmentation(seed):
    return data.Compose([data.RandomRotation(10.0, seed=seed), data.RandomCrop(8, padding=1, seed=seed + 1)])


def run(batchnorm, augment, split, epochs, seed):
    """Train one CNN; returns (history, train metrics, test metrics, seconds)."""
    x_tr, x_te, y_tr, y_te = split
    pydl.manual_seed(seed)
    model = build_cnn(1, 10, batchnorm=batchnorm)
    trainer = Trainer(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=1e-3), metrics=("accuracy",),
                      transform=augmentation(seed) if augment else None)
    with C.Timer() as t:
        hist = trainer.fit(x_tr, y_tr, epochs=epochs, batch_size=32, validation_data=(x_te, y_te), verbose=0)
    return hist, trainer.evaluate(x_tr, y_tr), trainer.evaluate(x_te, y_te), t.seconds


def main():
    args, seeds = C.parse_seeded(C.parser(__doc__.splitlines()[0]))
    epochs = 4 if args.quick else 100
    x_tr, x_te, y_tr, y_te = C.digits_split(args.seed, n_train=300, images=True)
    split = (x_tr[:, None], x_te[:, None], y_tr, y_te)          # (N, 1, 8, 8)

    rows, curves = [], {}
    for name, (batchnorm, augment) in CONFIGS.items():
        runs = [run(batchnorm, augment, split, epochs, s) for s in seeds]
        test = np.array([r[2]["accuracy"] for r in runs])
        train = np.array([r[1]["accuracy"] for r in runs])
        gap = np.array([r[2]["loss"] - r[1]["loss"] for r in runs])
        target = TARGETS[name]
        met = None if target is None else bool(test.mean() >= target)
        rows.append([name, C.fmt_mean_std(test), "-" if target is None else f">= {target}",
                     "-" if met is None else C.verdict(met), f"{train.mean():.4f}", f"{gap.mean():.3f}",
                     f"{np.mean([r[3] for r in runs]):.1f}"])
        curves[name] = (*C.mean_std(test), np.mean([r[0].history["val_accuracy"] for r in runs], axis=0), met)
    print(f"Digits as 8x8 images, CNN 16-32 channels, 300 training images, Adam 1e-3, batch 32, {epochs} epochs, "
          f"{len(seeds)} seed(s)")
    C.table(["config", "test acc", "target", "met", "train acc", "test - train loss", "seconds/run"], rows)
    C.report_targets([(name, c[3]) for name, c in curves.items()])

    fig = C.figure(2, 1, size=(5.0, 4.0))
    if fig is not None:
        ax = fig.add_subplot(1, 2, 1)
        for name, (_, _, acc, _) in curves.items():
            ax.plot(range(1, len(acc) + 1), acc, label=name)
        runs_text = f"mean of {len(seeds)} seeds" if len(seeds) > 1 else "1 seed"
        ax.set(xlabel="epoch", ylabel="test accuracy", ylim=(0, 1), title=f"Test accuracy ({runs_text})")
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
        ax = fig.add_subplot(1, 2, 2)
        names = list(curves)
        means = [curves[n][0] for n in names]
        stds = [curves[n][1] for n in names]
        ax.bar(range(len(names)), means, yerr=None if stds[0] is None else stds, capsize=4,
               color=[f"C{i}" for i in range(len(names))])
        for i, m in enumerate(means):
            ax.text(i, m / 2, f"{m:.3f}", ha="center", color="white", fontsize=9)
            if TARGETS[names[i]] is not None:
                ax.plot([i - 0.4, i + 0.4], [TARGETS[names[i]]] * 2, "k:", lw=1.5)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, fontsize=8)
        spread = (f"± std over {len(seeds)} seeds" if stds[0] is not None
                  else f"{len(seeds)} seed: no error bars")
        ax.set(ylabel="final test accuracy", ylim=(0, 1), title=f"After the last epoch ({spread})",
               xlabel="dotted line: the row's target")
        C.save(fig, args.out, "cnn.png")


if __name__ == "__main__":
    main()
