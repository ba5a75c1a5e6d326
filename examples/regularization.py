"""Regularization ablation on a small training set (digits, 300 training images).

A wide MLP (64-256-256-10, ReLU, Adam 1e-3, batch 32, 150 epochs) over-fits 300 images. Each row
adds one regularizer; reported: test accuracy and the generalization gap (test loss - training
loss, both in eval mode, data loss only), mean ± standard deviation over 3 seeds (each seed its own
split and initialization; the spread is shown only from 3 or more seeds: ``--quick`` runs one).
There is no target here: the table and the bars compare the rows with "none".

- none
- L2 penalty 1e-4 * sum(w^2) on the weights            (pydl.train.L2)
- L1 penalty 1e-5 * sum(|w|) on the weights            (pydl.train.L1)
- dropout p = 0.3 after each hidden layer              (nn.Dropout)
- batch normalization before each hidden activation    (nn.BatchNorm1d)
- Gaussian noise on the inputs, std 0.1                (nn.GaussianNoise)
- Gaussian noise on the weights, std 0.02 per step     (Trainer(weight_noise=...))
- augmentation: random rotations of +-15 degrees       (pydl.data.RandomRotation)
- Cutout of 3x3 pixels                                 (pydl.data.Cutout)
- label smoothing 0.1                                  (nn.CrossEntropyLoss(label_smoothing=...))
- Mixup, alpha 0.2                                      (pydl.data.Mixup)
- CutMix, alpha 1.0                                     (pydl.data.CutMix)
- early stopping on a 20% validation split, patience 10 (callbacks.EarlyStopping)

    python examples/regularization.py --out runs/examples
"""
import numpy as np

import pydl
from pydl import data, nn, optim
from pydl.train import L1, L2, Trainer, build_mlp
from pydl.train.callbacks import EarlyStopping

import _common as C



def configs():
    """name -> dict(model=..., trainer=..., loss=..., fit=...) keyword overrides."""
    return {
        "none": {},
        "L2 1e-4": {"trainer": {"regularizers": [L2(1e-4)]}},
        "L1 1e-5": {"trainer": {"regularizers": [L1(1e-5)]}},
        "dropout 0.3": {"model": {"dropout": 0.3}},
        "batchnorm": {"model": {"batchnorm": True}},
        "input noise 0.1": {"model": {"input_noise": 0.1}},
        "weight noise 0.02": {"trainer": {"weight_noise": 0.02}},
        "rotation 15deg": {"trainer": {"transform": data.RandomRotation(15.0)}},
        "cutout 3x3": {"trainer": {"transform": data.Cutout(3)}},
        "label smoothing 0.1": {"loss": {"label_smoothing": 0.1}},
        "mixup 0.2": {"trainer": {"transform": data.Mixup(0.2, num_classes=10)}},
        "cutmix 1.0": {"trainer": {"transform": data.CutMix(1.0, num_classes=10)}},
        "early stopping": {"trainer": {"callbacks": [EarlyStopping(patience=10, restore_best_weights=True)]},
                           "fit": {"validation_split": 0.2}},
    }


def run(cfg, data_split, epochs, seed):
    x_tr, x_te, y_tr, y_te = data_split
    pydl.manual_seed(seed)
    model = build_mlp(64, (256, 256), 10, flatten=True, **cfg.get("model", {}))
    loss = nn.CrossEntropyLoss(**cfg.get("loss", {}))
    trainer = Trainer(model, loss, optim.Adam(model.parameters(), lr=1e-3), **cfg.get("trainer", {}))
    hist = trainer.fit(x_tr, y_tr, epochs=epochs, batch_size=32, verbose=0, **cfg.get("fit", {}))
    plain = Trainer(model, nn.CrossEntropyLoss(), trainer.optimizer)    # data loss only, no penalty
    tr, te = plain.evaluate(x_tr, y_tr), plain.evaluate(x_te, y_te)
    return te["accuracy"], te["loss"] - tr["loss"], len(hist.epoch)


def main():
    args, seeds = C.parse_seeded(C.parser(__doc__.splitlines()[0]))
    epochs = 10 if args.quick else 150
    splits = {s: C.digits_split(s, n_train=300, images=True) for s in seeds}
    rows, results = [], []
    for name, cfg in configs().items():
        with C.Timer() as t:
            res = np.array([run(cfg, splits[s], epochs, s) for s in seeds])
        rows.append([name, C.fmt_mean_std(res[:, 0]), C.fmt_mean_std(res[:, 1], "{:.3f}"),
                     int(round(res[:, 2].mean())), f"{t.seconds:.1f}"])
        results.append((name, C.mean_std(res[:, 0]), C.mean_std(res[:, 1])))
    print(f"Digits, 300 training images, MLP 64-256-256-10, Adam 1e-3, batch 32, {epochs} epochs, "
          f"{len(seeds)} seed(s)")
    C.table(["regularizer", "test acc", "gap (test - train loss)", "epochs", "s"], rows)

    fig = C.figure(2, 1, size=(5.5, 4.5))
    if fig is not None:
        names = [r[0] for r in results]
        spread = (f"mean ± std over {len(seeds)} seeds" if len(seeds) >= C.MIN_SEEDS_FOR_STD
                  else f"{len(seeds)} seed: no error bars")
        for i, (k, label, color) in enumerate(((1, "test accuracy", "tab:green"),
                                               (2, "generalization gap (test - train loss)", "tab:red"))):
            ax = fig.add_subplot(1, 2, i + 1)
            stds = [r[k][1] for r in results]
            ax.barh(names, [r[k][0] for r in results], xerr=None if stds[0] is None else stds, capsize=3,
                    color=color)
            ax.set(xlabel=f"{label} ({spread})")
            if k == 1:
                ax.set_xlim(0.0, 1.0)
            ax.axvline(results[0][k][0], color="k", ls=":", lw=1)     # the "none" row, for comparison
            ax.invert_yaxis()
        C.save(fig, args.out, "regularization.png")


if __name__ == "__main__":
    main()
