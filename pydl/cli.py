"""Command line: ``python -m pydl train [options]`` and ``python -m pydl predict [options]``.

Trains an MLP (default 64-128-64-10, ReLU, He init, Adam 1e-3, batch 32, 50 epochs),
or with ``--model cnn`` a small convolutional network on the images as (N, 1, H, W) (default
Conv 16 - MaxPool - Conv 32 - 4x4 average pool - Linear; ``pydl.train.build_cnn``), by default
on the bundled digits (8x8 images, 10 classes, pixels scaled to [0, 1] by /16), with
a train / validation / test split (70 / 10 / 20 %, stratified for classification) drawn with a
fixed seed. Prints progress and the final train / validation / test loss and accuracy (a
regression: MSE and R^2 in the target's units), and writes the model file (model.npz), the
training curves (PNG, when matplotlib is installed) and a CSV log of the epochs under ``--out``.
``--data FILE`` trains on a .npz (arrays ``x``, ``y``) or a .csv (features, then the label in
the last column) instead; its features are standardized with the training split's mean and
standard deviation. Labels may be numbers or names (classes are their sorted distinct values,
as scikit-learn's LabelEncoder). ``--task auto`` takes a numeric target as a regression target
when it has a non-integer value, or more than 20 distinct values with fewer than 10 samples per
value on average; otherwise (and for names) as class labels. A regression trains with MSELoss
on the target standardized by the training split's mean and std. ``--kfold K`` also reports
the mean ± std accuracy (R^2) of K-fold (stratified) cross-validation on the train + validation
part. model.npz is self-describing (architecture, standardization, class names, task, pydl
version; arrays and JSON, no pickle): ``python -m pydl predict`` needs nothing else.
``--distributed`` trains data-parallel over MPI: ``mpiexec -n K python -m pydl train
--distributed ...`` (each rank takes 1/K of every batch; rank 0 alone prints and writes the
outputs).
"""
import argparse
import contextlib
import os
import sys
import time

import numpy as np

from .train._mlp import ACTIVATIONS, INITS

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "adadelta", "rmsprop", "adam", "adamw")
DEFAULT_LR = {"sgd": 0.05, "momentum": 0.05, "nesterov": 0.05, "adagrad": 0.01, "adadelta": 1.0,
              "rmsprop": 1e-3, "adam": 1e-3, "adamw": 1e-3}
AUGMENTATIONS = ("rotation", "crop", "noise", "cutout", "hflip", "vflip")
#: --task auto: a numeric target with more distinct values than this, and fewer than
#: AUTO_SAMPLES_PER_CLASS samples per value on average, is a regression target.
AUTO_MAX_CLASSES = 20
AUTO_SAMPLES_PER_CLASS = 10
#: --dropout's default for a regression (diabetes, 50 epochs, 8 split seeds: test R^2 0.21 mean
#: without dropout, 0.43 with 0.2; classification keeps 0).
REGRESSION_DROPOUT = 0.2


class CLIError(Exception):
    """A user error: printed as ``error: ...`` with exit status 1."""


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each flag's default, except None and False (the help text says what they mean)."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def _batch_size(text):
    if text.lower() in ("full", "none", "0"):
        return None
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a positive int, 0 or 'full', got {text!r}") from None


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive int, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive int, got {text!r}")
    return value


def _non_negative(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def _probability(text):
    value = _non_negative(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return value


PREDICT_DESCRIPTION = """Predicts with a model file of `python -m pydl train` alone: rebuilds the network, applies
the saved standardization and writes one row per sample of --data: the class name (with
--proba, then each class's probability) or the predicted value. --data is a .csv whose rows
hold the features, optionally followed by the label / target column (a header is detected as
in training, or named by --header / --no-header), or a .npz with an array x (and optionally
y). When the labels are there, the accuracy (or MSE and R^2) on them is reported too."""


def _delimiter(text):
    from .datasets._files import check_delimiter
    try:
        return check_delimiter({"\\t": "\t", "tab": "\t"}.get(text, text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected one character other than a quote or a line break "
                                         f"('tab' or '\\t' for a tab), got {text!r}") from None


def _add_csv_options(p):
    p.add_argument("--delimiter", type=_delimiter, default=",", metavar="CHAR",
                   help="CSV field separator ('tab' or '\\t' for a tab)")
    header = p.add_mutually_exclusive_group()
    header.add_argument("--header", dest="header", action="store_const", const=True, default=None,
                        help="the CSV's first row is a header (without --header / --no-header: a first row "
                        "is a header when none of its feature fields is a number)")
    header.add_argument("--no-header", dest="header", action="store_const", const=False,
                        help="the CSV's first row is a sample")


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m pydl", description="pydl command line")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    t = sub.add_parser("train", help="train an MLP or CNN classifier or regressor (default: the bundled digits)",
                       description=__doc__.split("\n\n", 1)[1],
                       formatter_class=_HelpFormatter)
    t.add_argument("--data", metavar="FILE", help=".npz with arrays x, y or .csv whose last column is the label "
                   "or target (default: the bundled digits)")
    t.add_argument("--task", choices=("auto", "classification", "regression"), default="auto",
                   help="auto: regression for a numeric target with a non-integer value, or with more than 20 "
                   "distinct values and fewer than 10 samples per value on average; else classification")
    _add_csv_options(t)
    t.add_argument("--model", choices=("mlp", "cnn"), default="mlp",
                   help="mlp: flattened inputs; cnn: convolutional network on image data (N, H, W)")
    t.add_argument("--hidden", type=_positive_int, nargs="*", default=[128, 64], metavar="N",
                   help="hidden layer widths (mlp)")
    t.add_argument("--channels", type=_positive_int, nargs="+", default=[16, 32], metavar="C",
                   help="output channels of the convolution stages, a 2x2 max-pool between stages (cnn)")
    t.add_argument("--activation", choices=tuple(ACTIVATIONS), default="relu")
    t.add_argument("--init", choices=INITS, default="he",
                   help="weight init: he = nn.init.kaiming_uniform_ (ReLU gain), xavier = xavier_uniform_ "
                   "(gain of the activation), default = PyTorch's Linear init; biases zero unless default")
    t.add_argument("--optimizer", choices=OPTIMIZERS, default="adam",
                   help="momentum / nesterov are SGD with momentum (--momentum)")
    t.add_argument("--lr", type=_non_negative, default=None,
                   help="learning rate (default per optimizer: " +
                   ", ".join(f"{k} {v:g}" for k, v in DEFAULT_LR.items()) + ")")
    t.add_argument("--momentum", type=_probability, default=0.9, help="for momentum, nesterov, rmsprop")
    t.add_argument("--weight-decay", type=_non_negative, default=None,
                   help="optimizer weight decay (default 0; 0.01 for adamw)")
    t.add_argument("--batch-size", type=_batch_size, default=32, help="samples per step; 0 or 'full': full batch")
    t.add_argument("--epochs", type=_positive_int, default=50)
    t.add_argument("--l1", type=_non_negative, default=0.0, help="L1 penalty coefficient on the weights")
    t.add_argument("--l2", type=_non_negative, default=0.0, help="L2 penalty coefficient on the weights")
    t.add_argument("--dropout", type=_probability, default=None, help="dropout probability after each hidden layer "
                   f"(cnn: before the last Linear); default 0, {REGRESSION_DROPOUT} for a regression (a small noisy "
                   "target overfits the default network without it)")
    t.add_argument("--batchnorm", action="store_true", help="BatchNorm1d before each hidden activation "
                   "(cnn: BatchNorm2d before each convolution's activation)")
    t.add_argument("--input-noise", type=_non_negative, default=0.0, help="std of Gaussian noise on the inputs "
                   "(a GaussianNoise layer)")
    t.add_argument("--weight-noise", type=_non_negative, default=0.0, help="std of Gaussian noise on the weights "
                   "at each training step")
    t.add_argument("--label-smoothing", type=_probability, default=0.0)
    t.add_argument("--augment", nargs="*", choices=AUGMENTATIONS, default=None, metavar="KIND",
                   help=f"augment training batches; kinds {', '.join(AUGMENTATIONS)} (no kind: rotation)")
    t.add_argument("--mixup", type=_non_negative, default=0.0, metavar="ALPHA", help="Mixup with Beta(alpha, alpha)")
    t.add_argument("--cutmix", type=_non_negative, default=0.0, metavar="ALPHA", help="CutMix with Beta(alpha, alpha)")
    t.add_argument("--early-stopping", type=_positive_int, default=None, metavar="PATIENCE",
                   help="stop when val_loss has not improved for PATIENCE epochs (best weights restored)")
    t.add_argument("--kfold", type=_positive_int, default=None, metavar="K",
                   help="also report K-fold cross-validation accuracy (stratified; R^2 for a regression), "
                   "mean ± std")
    t.add_argument("--backup", metavar="DIR", default=None,
                   help="back up the training state to DIR at the end of every epoch; a killed run started "
                   "again with the same command resumes from the backup and ends with the same weights "
                   "and history (the backup is deleted when training finishes)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=_positive_int, default=None, help="pydl threads (default: all cores; "
                   "with --distributed: the cores / the ranks on the machine)")
    t.add_argument("--distributed", action="store_true", help="data-parallel training over MPI (pydl.distributed): "
                   "run as mpiexec -n K python -m pydl train --distributed ...; needs pip install \".[mpi]\"")
    t.add_argument("--out", default=os.path.join("runs", "train"), metavar="DIR",
                   help="where the checkpoint (model.npz), curves (curves.png) and log (history.csv) go")
    t.add_argument("--quiet", action="store_true", help="no progress output")
    p = sub.add_parser("predict", help="predict with a model file of train on new data",
                       description=PREDICT_DESCRIPTION, formatter_class=_HelpFormatter)
    p.add_argument("--model", default=os.path.join("runs", "train", "model.npz"), metavar="FILE",
                   help="model file written by train")
    p.add_argument("--data", metavar="FILE", required=True, help=".csv or .npz of samples to predict")
    p.add_argument("--out", metavar="FILE", default=None, help="CSV of predictions (default: standard output)")
    p.add_argument("--proba", action="store_true", help="also write the class probabilities (classifiers)")
    _add_csv_options(p)
    return parser


# ---------------------------------------------------------------- data
def load_data(args):
    """The training data: a ``datasets.Table`` (x float32, (N, F) or (N, H, W); y as read) and
    (mean, std), the fixed input scaling of the bundled digits (None for --data: the training
    split's statistics are used)."""
    from .datasets import load_digits
    from .datasets._files import Table, read_file
    if args.data is None:
        d = load_digits()
        x = np.asarray(d.images, dtype=np.float32)
        scale = (np.zeros(x.shape[1:], np.float32), np.full(x.shape[1:], 16.0, np.float32))
        return Table(x, np.asarray(d.target), None, None, None), scale
    try:
        return read_file(args.data, delimiter=args.delimiter, header=args.header), None
    except (OSError, ValueError) as e:
        raise CLIError(f"--data: {e}") from None


def _where(lines, i):
    return f"sample {i} (counting from 0)" if lines is None else f"line {lines[i]}"


def choose_task(task, y, lines):
    """(task, why): --task, or its auto rule (AUTO_MAX_CLASSES, AUTO_SAMPLES_PER_CLASS)."""
    numeric = y.dtype.kind in "fiub"
    if task == "regression":
        if not numeric:
            from .datasets._files import is_number
            i = next(i for i, v in enumerate(y) if not is_number(v))
            raise CLIError(f"--task regression needs numeric targets; {_where(lines, i)} has {str(y[i])!r}")
        return task, "--task regression"
    if task == "classification":
        return task, "--task classification"
    if not numeric:
        return "classification", "auto: the labels are names"
    if y.dtype.kind == "f" and not np.all(y == np.round(y)):
        return "regression", "auto: the target has non-integer values"
    distinct = len(np.unique(y))
    if distinct > AUTO_MAX_CLASSES and distinct * AUTO_SAMPLES_PER_CLASS > len(y):
        return "regression", (f"auto: {distinct} distinct values, fewer than {AUTO_SAMPLES_PER_CLASS} samples "
                              "per value")
    return "classification", f"auto: {distinct} distinct integer values"


def class_names(values):
    """Class names (str) of distinct label values: names as they are, integer-valued numbers
    without a fraction ("3", not "3.0"), other numbers as Python writes them."""
    values = np.asarray(values)
    if values.dtype.kind not in "fiub":
        return values.astype(str)
    return np.array([str(int(v)) if float(v).is_integer() else repr(float(v)) for v in values.tolist()], dtype=str)


def encode_labels(y, lines=None, task_why=""):
    """Map the labels to 0..C-1 (sorted distinct values, as scikit-learn's LabelEncoder);
    returns (indices int64, class names str)."""
    classes, idx = np.unique(y, return_inverse=True)
    names = class_names(classes)
    if len(classes) < 2:
        raise CLIError(f"--data: need at least 2 classes, got {len(classes)} ({', '.join(names)})")
    counts = np.bincount(idx)
    if counts.min() < 5:
        c = int(counts.argmin())
        hint = "; if the target is a quantity, pass --task regression" if y.dtype.kind in "fiub" else ""
        raise CLIError(f"every class needs at least 5 samples for the stratified splits; class {str(names[c])!r} has "
                       f"{counts.min()} (first at {_where(lines, int(np.argmax(idx == c)))}; task {task_why}{hint})")
    return idx.astype(np.int64), names


def regression_scores(y, pred):
    """(MSE, R^2) of predictions, float64: R^2 = 1 - sum((y - pred)^2) / sum((y - mean(y))^2)."""
    y, pred = np.asarray(y, np.float64).ravel(), np.asarray(pred, np.float64).ravel()
    if y.shape != pred.shape:
        raise ValueError(f"pred: expected {y.size} values (one per target), got {pred.size}")
    ss_res = float(np.sum((y - pred) ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    return ss_res / max(len(y), 1), (1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan"))


def _r2_scoring(trainer, x, y):
    """cross_validate's score of a regression fold: R^2 (the same on the standardized target)."""
    return regression_scores(y, trainer.predict(x))[1]


# ---------------------------------------------------------------- model and training
def build_optimizer(params, args):
    from . import optim
    name = args.optimizer
    lr = DEFAULT_LR[name] if args.lr is None else args.lr
    wd = (0.01 if name == "adamw" else 0.0) if args.weight_decay is None else args.weight_decay
    if name == "sgd":
        return optim.SGD(params, lr=lr, weight_decay=wd)
    if name in ("momentum", "nesterov"):
        if args.momentum <= 0:
            raise CLIError(f"--optimizer {name} needs --momentum > 0")
        return optim.SGD(params, lr=lr, momentum=args.momentum, nesterov=name == "nesterov", weight_decay=wd)
    if name == "adagrad":
        return optim.Adagrad(params, lr=lr, weight_decay=wd)
    if name == "adadelta":
        return optim.Adadelta(params, lr=lr, weight_decay=wd)
    if name == "rmsprop":
        return optim.RMSprop(params, lr=lr, weight_decay=wd)
    if name == "adam":
        return optim.Adam(params, lr=lr, weight_decay=wd)
    return optim.AdamW(params, lr=lr, weight_decay=wd)


def build_transform(args, n_classes, image_shape):
    """The training-batch transform: augmentations, then Mixup / CutMix (None when none asked)."""
    from . import data
    kinds = args.augment
    if kinds is not None and not kinds:
        kinds = ["rotation"]
    kinds = kinds or []
    needs_images = [k for k in kinds if k != "noise"] + (["cutmix"] if args.cutmix > 0 else [])
    if needs_images and image_shape is None:
        raise CLIError(f"{', '.join(needs_images)} needs image data (x of shape (N, H, W)); "
                       "use --augment noise or --mixup with flat features")
    makers = {"rotation": lambda: data.RandomRotation(15.0),
              "crop": lambda: data.RandomCrop(image_shape, padding=1),
              "noise": lambda: data.GaussianNoise(0.05),
              "cutout": lambda: data.Cutout(max(1, image_shape[0] // 3)),
              "hflip": lambda: data.RandomHorizontalFlip(),
              "vflip": lambda: data.RandomVerticalFlip()}
    steps = [makers[k]() for k in kinds]
    if args.mixup > 0:
        steps.append(data.Mixup(args.mixup, num_classes=n_classes))
    if args.cutmix > 0:
        steps.append(data.CutMix(args.cutmix, num_classes=n_classes))
    if not steps:
        return None
    return steps[0] if len(steps) == 1 else data.Compose(steps)


def architecture(args, x_shape, n_out):
    """The network of ``--model`` as a JSON record ``{"builder", "arguments"}`` of build_mlp (on
    the flattened samples) or build_cnn (on (N, C, H, W) images); the model file keeps it."""
    common = dict(activation=args.activation, dropout=args.dropout, batchnorm=args.batchnorm, init=args.init,
                  input_noise=args.input_noise)
    if args.model == "cnn":
        return {"builder": "build_cnn", "arguments": dict(in_channels=int(x_shape[1]), out_features=n_out,
                                                          channels=list(args.channels), **common)}
    return {"builder": "build_mlp", "arguments": dict(in_features=int(np.prod(x_shape[1:])), hidden=list(args.hidden),
                                                      out_features=n_out, flatten=len(x_shape) > 2, **common)}


def make_trainer(args, x_shape, n_out, image_shape, callbacks=(), task="classification"):
    """A Trainer: CrossEntropyLoss and accuracy for classification, MSELoss for regression."""
    from . import nn
    from .train import L1, L2, Trainer
    from .train._mlp import build_from_architecture
    model = build_from_architecture(architecture(args, x_shape, n_out))
    regs = ([L1(args.l1)] if args.l1 > 0 else []) + ([L2(args.l2)] if args.l2 > 0 else [])
    if task == "classification":
        loss, metrics = nn.CrossEntropyLoss(label_smoothing=args.label_smoothing), ("accuracy",)
    else:
        loss, metrics = nn.MSELoss(), ()
    return Trainer(model, loss, build_optimizer(model.parameters(), args), metrics=metrics,
                   callbacks=callbacks, regularizers=regs, weight_noise=args.weight_noise,
                   transform=build_transform(args, n_out, image_shape),
                   distributed=getattr(args, "distributed", False))


def _preview(names, k=6):
    names = [str(n) for n in names]
    return ", ".join(names if len(names) <= k else names[:k - 1] + ["...", names[-1]])


def cmd_train(args):
    import pydl
    from .model_selection import KFold, StratifiedKFold, cross_validate, train_test_split
    from .train.callbacks import BackupAndRestore, CSVLogger, EarlyStopping
    from .train.checkpoint import SavedModel

    if args.threads is not None:
        pydl.set_num_threads(args.threads)
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, flush=True))
    data, scale = load_data(args)
    x = data.x
    images = x.ndim == 3
    task, why = choose_task(args.task, data.y, data.lines)
    if task == "classification":
        y, classes = encode_labels(data.y, data.lines, why)
        n_out, stratify = len(classes), y
        what = f"{n_out} classes ({_preview(classes)})"
    else:
        used = [f for f, v in (("--label-smoothing", args.label_smoothing), ("--mixup", args.mixup),
                               ("--cutmix", args.cutmix)) if v > 0]
        if used:
            raise CLIError(f"{', '.join(used)}: for classification only; the task is regression ({why})")
        y, classes, n_out, stratify = data.y.astype(np.float64), None, 1, None
        what = "a numeric target" + (f" ({data.target_name})" if data.target_name else "")
    if args.dropout is None:
        args.dropout = REGRESSION_DROPOUT if task == "regression" else 0.0
    x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=0.2, stratify=stratify, random_state=args.seed)
    x_train, x_val, y_train, y_val = train_test_split(x_rest, y_rest, test_size=0.125, random_state=args.seed,
                                                      stratify=None if stratify is None else y_rest)
    if scale is None:                  # standardize with the training split's statistics
        mean = x_train.mean(axis=0)
        std = x_train.std(axis=0)
        std[std == 0] = 1.0
    else:
        mean, std = scale
    x_train, x_val, x_test, x_rest = ((a - mean) / std for a in (x_train, x_val, x_test, x_rest))
    y_mean, y_std = 0.0, 1.0
    if task == "regression":           # the model learns the standardized target
        y_mean, y_std = float(y_train.mean()), float(y_train.std()) or 1.0

    def target(v):
        return v if task == "classification" else ((v - y_mean) / y_std).astype(np.float32)

    n_in = int(np.prod(x.shape[1:]))
    image_shape = tuple(x.shape[1:]) if images else None
    if args.model == "cnn":
        if not images:
            raise CLIError(f"--model cnn needs image data (x of shape (N, H, W)), got x of shape {x.shape}")
        # one channel: (N, H, W) -> (N, 1, H, W); the augmentations take both shapes
        x_train, x_val, x_test, x_rest = (a[:, None] for a in (x_train, x_val, x_test, x_rest))
    bs = args.batch_size
    source = "digits (bundled)" if args.data is None else args.data
    say(f"data: {source}: {x.shape[0]} samples, {n_in} features, {what}; task {task} ({why}); "
        f"train {len(y_train)} / validation {len(y_val)} / test {len(y_test)}")

    if args.kfold is not None:
        if args.kfold < 2:
            raise CLIError(f"--kfold: expected K >= 2, got {args.kfold}")
        t0 = time.perf_counter()

        def build():
            return make_trainer(args, x_rest.shape, n_out, image_shape, task=task)

        pydl.manual_seed(args.seed)
        splitter = StratifiedKFold if task == "classification" else KFold
        cv = splitter(n_splits=args.kfold, shuffle=True, random_state=args.seed)
        score, scoring = ("accuracy", None) if task == "classification" else ("r2", _r2_scoring)
        res = cross_validate(build, x_rest, target(y_rest), cv=cv, scoring=scoring,
                             fit_kwargs={"epochs": args.epochs, "batch_size": bs, "verbose": 0})
        scores = np.asarray(res["test_score"])
        say(f"cv fold {score}: " + " ".join(f"{s:.4f}" for s in scores))
        print(f"cv {score} ({args.kfold}-fold): {scores.mean():.4f} ± {scores.std():.4f} "
              f"({time.perf_counter() - t0:.1f}s)", flush=True)

    os.makedirs(args.out, exist_ok=True)
    callbacks = [CSVLogger(os.path.join(args.out, "history.csv"))]
    if args.early_stopping is not None:
        callbacks.append(EarlyStopping(patience=args.early_stopping, restore_best_weights=True))
    if args.backup is not None:
        callbacks.append(BackupAndRestore(args.backup))
    pydl.manual_seed(args.seed)
    trainer = make_trainer(args, x_train.shape, n_out, image_shape, callbacks, task)
    say(f"model: {_describe(trainer.model)}; optimizer {args.optimizer}; batch size "
        f"{'full' if bs is None else bs}; {args.epochs} epochs")
    t0 = time.perf_counter()
    history = trainer.fit(x_train, target(y_train), epochs=args.epochs, batch_size=bs,
                          validation_data=(x_val, target(y_val)), verbose=0 if args.quiet else 1)
    elapsed = time.perf_counter() - t0
    if args.backup is not None and callbacks[-1].restored is not None:
        say(f"resumed from the backup in {args.backup} at epoch {callbacks[-1].restored['epoch'] + 1}")
    saved = SavedModel(trainer.model, architecture(args, x_train.shape, n_out), task, mean, std, x_train.shape[1:],
                       classes, y_mean, y_std, data.feature_names, data.target_name)
    splits = (("train", x_train, y_train), ("validation", x_val, y_val), ("test", x_test, y_test))
    if task == "classification":
        lines = [f"{name} loss {r['loss']:.4f}  {name} accuracy {r['accuracy']:.4f}" for name, r in
                 ((name, trainer.evaluate(a, b)) for name, a, b in splits)]
    else:                              # in the target's units
        lines = [f"{name} mse {m:.6g}  {name} r2 {r2:.4f}" for name, m, r2 in
                 ((name,) + regression_scores(b, saved.decode(trainer.predict(a))) for name, a, b in splits)]
    print(f"trained {len(history.epoch)} epochs in {elapsed:.1f}s", flush=True)
    print("\n".join(lines))
    if not trainer.is_root:            # --distributed: rank 0 writes the outputs
        return 0
    ckpt = os.path.join(args.out, "model.npz")
    saved.save(ckpt)
    print(f"checkpoint: {ckpt}")
    try:
        history.plot(os.path.join(args.out, "curves.png"))
        print(f"curves: {os.path.join(args.out, 'curves.png')}")
    except ImportError:
        say("curves: matplotlib not installed, no PNG written")
    return 0


# ---------------------------------------------------------------- predict
def load_predict_data(args, n_features, feature_names):
    """(x, y) of predict's --data: the samples' ``n_features`` features and the labels when the
    file has them (else None)."""
    from .datasets._files import check_args, csv_floats, csv_labels, read_csv_rows, read_npz
    try:
        path, _, ext = check_args(args.data, np.float32, args.delimiter, args.header)
        if ext == ".npz":
            x, y = read_npz(path, need_y=False)
            return x, y
        rows, lines, names = read_csv_rows(path, args.delimiter, args.header, n_features, feature_names)
        n = len(rows[0])
        if n not in (n_features, n_features + 1):
            raise ValueError(f"{path}: {n} columns; the model takes {n_features} features "
                             f"(then, optionally, the label / target column: {n_features + 1} columns)")
        x = csv_floats(path, rows, lines, names, n_features)
        y = csv_labels(path, [r[-1] for r in rows], lines, n) if n > n_features else None
        return x, y
    except (OSError, ValueError) as e:
        raise CLIError(f"--data: {e}") from None


def cmd_predict(args):
    import contextlib
    import csv

    from .train.checkpoint import SavedModel
    try:
        saved = SavedModel.load(args.model)
    except (OSError, ValueError) as e:
        raise CLIError(f"--model: {e}") from None
    classify = saved.task == "classification"
    if args.proba and not classify:
        raise CLIError(f"--proba: {args.model} is a regression model (no class probabilities)")
    x, y = load_predict_data(args, saved.n_features, saved.feature_names)
    try:
        pred = saved.predict(x)
    except (TypeError, ValueError) as e:
        raise CLIError(f"--data: {args.data}: {e}") from None
    header = [saved.target_name or "prediction"]
    columns = [pred.tolist() if classify else [repr(float(v)) for v in pred]]
    if args.proba:
        header += [f"proba_{c}" for c in saved.classes]
        columns += [[f"{p:.6g}" for p in col] for col in saved.predict_proba(x).T]
    with contextlib.nullcontext(sys.stdout) if args.out is None else open(args.out, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(zip(*columns))
    report = sys.stderr if args.out is None else sys.stdout
    if args.out is not None:
        print(f"predictions: {len(pred)} rows ({saved.task}) written to {args.out}", file=report)
    if y is not None:
        if classify:
            print(f"accuracy {np.mean(pred == class_names(y)):.4f} on the labels in {args.data}", file=report)
        else:
            if y.dtype.kind not in "fiub":
                raise CLIError(f"--data: the last column of {args.data} holds names, not numeric targets")
            mse, r2 = regression_scores(y, pred)
            print(f"mse {mse:.6g}  r2 {r2:.4f} on the targets in {args.data}", file=report)
    return 0


@contextlib.contextmanager
def _ranks(args):
    """--distributed: start MPI; every rank but 0 prints nothing (its stdout goes to devnull);
    an error on any rank ends every rank (the others may be waiting in a collective)."""
    if not getattr(args, "distributed", False):
        yield
        return
    from . import distributed
    distributed.init()
    with contextlib.ExitStack() as stack:
        if distributed.rank() != 0:
            stack.enter_context(contextlib.redirect_stdout(stack.enter_context(open(os.devnull, "w"))))
        yield


def _end(args, code):
    """The exit status; on an error in a distributed run, MPI_Abort ends every rank with it."""
    if code and getattr(args, "distributed", False):
        from . import distributed
        if distributed.is_initialized() and distributed.world_size() > 1:
            distributed.abort(code)
    return code


def _describe(model):
    try:
        return " -> ".join(type(m).__name__ for m in model)
    except TypeError:
        return type(model).__name__


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            with _ranks(args):
                return cmd_train(args)
        if args.command == "predict":
            return cmd_predict(args)
    except CLIError as e:
        print(f"error: {e}", file=sys.stderr)
        return _end(args, 1)
    except BrokenPipeError:            # the reader of stdout went away (`... | head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (ValueError, TypeError, OSError, ImportError) as e:
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return _end(args, 1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return _end(args, 130)
    parser.error(f"unknown command {args.command!r}")
