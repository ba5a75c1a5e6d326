"""Bias and variance against model size (pydl.model_selection.bias_variance_decomp).

Data: 40 noisy samples of y = sin(2 pi x) + 0.3 e on [0, 1] (datasets.make_regression_1d).
Models: MLPs 1-h-h-1 with tanh, h = 1 ... 64, trained with MSE, Adam (lr 0.01), full batch.
For each size, bias_variance_decomp refits the model on bootstrap resamples of the 40 samples
and predicts 200 test points whose targets are the noise-free sin(2 pi x), so

    expected MSE = bias^2 + variance       (mlxtend's decomposition; no noise term here),

with bias^2 = mean_x (mean_r f_r(x) - sin(2 pi x))^2 and variance = mean_x mean_r (f_r(x) - mean_r f_r(x))^2.
Small models under-fit (high bias), large ones follow the noise of their sample (high variance):
the example's targets, checked at the end (bias^2 of the smallest model above the largest's,
variance of the largest above the smallest's; flagged MISSED otherwise). One data sample and one
seed: the bootstrap rounds are the repetitions, no spread over seeds is reported.

    python examples/bias_variance.py --out runs/examples
"""
import numpy as np

import pydl
from pydl import nn, optim
from pydl.datasets import make_regression_1d
from pydl.model_selection import bias_variance_decomp
from pydl.train import Trainer, build_mlp

import _common as C


def builder(h):
    def build():
        model = build_mlp(1, (h, h), 1, activation="tanh")
        return Trainer(model, nn.MSELoss(), optim.Adam(model.parameters(), lr=0.01), metrics=("mse",))
    return build


def main():
    args = C.parser(__doc__.splitlines()[0]).parse_args()
    widths = [1, 4, 64] if args.quick else [1, 2, 4, 8, 16, 64]
    rounds = 5 if args.quick else 30
    epochs = 200 if args.quick else 1500
    x_tr, y_tr = make_regression_1d(40, noise=0.3, random_state=args.seed)
    x_te = np.linspace(0, 1, 200, dtype=np.float32).reshape(-1, 1)
    y_te = np.sin(2 * np.pi * x_te).astype(np.float32)
    fit = {"epochs": epochs, "batch_size": None, "verbose": 0}
    rows, res = [], []
    for h in widths:
        pydl.manual_seed(args.seed)
        with C.Timer() as t:
            total, bias, var = bias_variance_decomp(builder(h), x_tr, y_tr, x_te, y_te, loss="mse",
                                                    num_rounds=rounds, random_seed=args.seed, fit_kwargs=fit)
        n_params = sum(p.size for p in builder(h)().model.parameters())
        rows.append([f"1-{h}-{h}-1", n_params, total, bias, var, f"{t.seconds:.1f}"])
        res.append((n_params, total, bias, var))
    print(f"Bias-variance decomposition, {rounds} bootstrap rounds, {epochs} full-batch Adam epochs")
    C.table(["model", "params", "expected MSE", "bias^2", "variance", "s"], rows)
    small, large = res[0], res[-1]
    C.report_targets([(f"bias^2 falls from {rows[0][0]} to {rows[-1][0]}", small[2] > large[2]),
                      (f"variance rises from {rows[0][0]} to {rows[-1][0]}", large[3] > small[3])])

    fig = C.figure(3, 1, size=(4.6, 3.8))
    if fig is not None:
        res = np.array(res)
        ax = fig.add_subplot(1, 3, 1)
        ax.semilogx(res[:, 0], res[:, 1], "k-o", label="expected MSE")
        ax.semilogx(res[:, 0], res[:, 2], "b-o", label="bias^2")
        ax.semilogx(res[:, 0], res[:, 3], "r-o", label="variance")
        ax.set(xlabel="parameters (log scale)", ylabel="MSE", title="bias-variance vs model size")
        ax.set_ylim(bottom=0.0)
        ax.legend(loc="best")
        rng = np.random.default_rng(args.seed)
        for i, h in enumerate((widths[0], widths[-1])):
            ax = fig.add_subplot(1, 3, 2 + i)
            for _ in range(6):
                idx = rng.integers(0, len(x_tr), len(x_tr))
                t = builder(h)()
                t.fit(x_tr[idx], y_tr[idx], **fit)
                ax.plot(x_te[:, 0], t.predict(x_te)[:, 0], color="tab:orange", alpha=0.6, lw=1)
            ax.plot(x_te[:, 0], y_te[:, 0], "k--", label="sin(2 pi x)")
            ax.plot(x_tr[:, 0], y_tr[:, 0], "k.", ms=4, label="training sample")
            ax.set(ylim=(-2, 2), xlabel="x", title=f"1-{h}-{h}-1: fits on bootstrap samples")
            ax.legend(fontsize=8, loc="best")
        C.save(fig, args.out, "bias_variance.png")


if __name__ == "__main__":
    main()
