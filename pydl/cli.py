"""Command line: ``python -m pydl train [options]``.

Trains an MLP classifier (default 64-128-64-10, ReLU, He init, Adam 1e-3, batch 32, 50 epochs),
or with ``--model cnn`` a small convolutional network on the images as (N, 1, H, W) (default
Conv 16 - MaxPool - Conv 32 - 4x4 average pool - Linear; ``pydl.train.build_cnn``), by default
on the bundled digits (8x8 images, 10 classes, pixels scaled to [0, 1] by /16), with
a stratified train / validation / test split (70 / 10 / 20 %) drawn with a fixed seed. Prints
progress and the final train / validation / test loss and accuracy, and writes the weights
(pydl.save), the training curves (PNG, when matplotlib is installed) and a CSV log of the epochs
under ``--out``. ``--data FILE`` trains on a .npz (arrays ``x``, ``y``) or a .csv (last column:
the label) instead; its features are standardized with the training split's mean and standard
deviation. ``--kfold K`` also reports the mean ± std accuracy of K-fold stratified cross-
validation on the train + validation part. ``--distributed`` trains data-parallel over MPI:
``mpiexec -n K python -m pydl train --distributed ...`` (each rank takes 1/K of every batch;
rank 0 alone prints and writes the outputs).
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


class CLIError(Exception):
    """A user error: printed as ``error: ...`` with exit status 1."""


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


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m pydl", description="pydl command line")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    t = sub.add_parser("train", help="train an MLP or CNN classifier (default: the bundled digits)",
                       description=__doc__.split("\n\n", 1)[1],
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    t.add_argument("--data", metavar="FILE", help=".npz with arrays x, y or .csv whose last column is the label "
                   "(default: the bundled digits)")
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
    t.add_argument("--dropout", type=_probability, default=0.0, help="dropout probability after each hidden layer "
                   "(cnn: before the last Linear)")
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
                   help="also report K-fold stratified cross-validation accuracy (mean ± std)")
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
    return parser


# ---------------------------------------------------------------- data
def load_data(path):
    """(x, y, images): x float32, y labels as read, images True when x is (N, H, W)."""
    from .datasets import load_digits, load_file
    if path is None:
        d = load_digits()
        return np.asarray(d.images, dtype=np.float32) / 16.0, np.asarray(d.target), True
    try:
        x, y = load_file(path)
    except (OSError, ValueError) as e:
        raise CLIError(f"--data: {e}") from None
    return x, y, x.ndim == 3


def encode_labels(y):
    """Map the labels to 0..C-1; they must be integers (class ids)."""
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise CLIError("--data: labels (y / last column) must be integer class ids")
    elif y.dtype.kind not in "iub":
        raise CLIError(f"--data: labels must be integer class ids, got dtype {y.dtype}")
    classes, idx = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise CLIError(f"--data: need at least 2 classes, got {len(classes)}")
    return idx.astype(np.int64), classes


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


def build_model(args, x_shape, n_classes):
    """The network of ``--model``: an MLP on the flattened samples, or a CNN on (N, C, H, W) images."""
    from .train import build_cnn, build_mlp
    common = dict(activation=args.activation, dropout=args.dropout, batchnorm=args.batchnorm, init=args.init,
                  input_noise=args.input_noise)
    if args.model == "cnn":
        return build_cnn(x_shape[1], n_classes, channels=args.channels, **common)
    return build_mlp(int(np.prod(x_shape[1:])), args.hidden, n_classes, flatten=len(x_shape) > 2, **common)


def make_trainer(args, x_shape, n_classes, image_shape, callbacks=()):
    from . import nn
    from .train import L1, L2, Trainer
    model = build_model(args, x_shape, n_classes)
    regs = ([L1(args.l1)] if args.l1 > 0 else []) + ([L2(args.l2)] if args.l2 > 0 else [])
    return Trainer(model, nn.CrossEntropyLoss(label_smoothing=args.label_smoothing),
                   build_optimizer(model.parameters(), args), metrics=("accuracy",),
                   callbacks=callbacks, regularizers=regs, weight_noise=args.weight_noise,
                   transform=build_transform(args, n_classes, image_shape),
                   distributed=getattr(args, "distributed", False))


def cmd_train(args):
    import pydl
    from .model_selection import StratifiedKFold, cross_validate, train_test_split
    from .train.callbacks import BackupAndRestore, CSVLogger, EarlyStopping

    if args.threads is not None:
        pydl.set_num_threads(args.threads)
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, flush=True))
    x, y_raw, images = load_data(args.data)
    y, classes = encode_labels(y_raw)
    n_classes = len(classes)
    counts = np.bincount(y)
    if counts.min() < 5:
        raise CLIError(f"every class needs at least 5 samples for the stratified splits; class "
                       f"{classes[counts.argmin()]} has {counts.min()}")
    x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=0.2, stratify=y, random_state=args.seed)
    x_train, x_val, y_train, y_val = train_test_split(x_rest, y_rest, test_size=0.125, stratify=y_rest,
                                                      random_state=args.seed)
    if args.data is not None:          # standardize with the training split's statistics
        mean = x_train.mean(axis=0)
        std = x_train.std(axis=0)
        std[std == 0] = 1.0
        x_train, x_val, x_test, x_rest = ((a - mean) / std for a in (x_train, x_val, x_test, x_rest))
    n_in = int(np.prod(x.shape[1:]))
    image_shape = tuple(x.shape[1:]) if images else None
    if args.model == "cnn":
        if not images:
            raise CLIError(f"--model cnn needs image data (x of shape (N, H, W)), got x of shape {x.shape}")
        # one channel: (N, H, W) -> (N, 1, H, W); the augmentations take both shapes
        x_train, x_val, x_test, x_rest = (a[:, None] for a in (x_train, x_val, x_test, x_rest))
    bs = args.batch_size
    source = "digits (bundled)" if args.data is None else args.data
    say(f"data: {source}: {x.shape[0]} samples, {n_in} features, {n_classes} classes; "
        f"train {len(y_train)} / validation {len(y_val)} / test {len(y_test)}")

    if args.kfold is not None:
        if args.kfold < 2:
            raise CLIError(f"--kfold: expected K >= 2, got {args.kfold}")
        t0 = time.perf_counter()

        def build():
            return make_trainer(args, x_rest.shape, n_classes, image_shape)

        pydl.manual_seed(args.seed)
        cv = StratifiedKFold(n_splits=args.kfold, shuffle=True, random_state=args.seed)
        res = cross_validate(build, x_rest, y_rest, cv=cv,
                             fit_kwargs={"epochs": args.epochs, "batch_size": bs, "verbose": 0})
        scores = np.asarray(res["test_score"])
        say("cv fold accuracies: " + " ".join(f"{s:.4f}" for s in scores))
        print(f"cv accuracy ({args.kfold}-fold): {scores.mean():.4f} ± {scores.std():.4f} "
              f"({time.perf_counter() - t0:.1f}s)", flush=True)

    os.makedirs(args.out, exist_ok=True)
    callbacks = [CSVLogger(os.path.join(args.out, "history.csv"))]
    if args.early_stopping is not None:
        callbacks.append(EarlyStopping(patience=args.early_stopping, restore_best_weights=True))
    if args.backup is not None:
        callbacks.append(BackupAndRestore(args.backup))
    pydl.manual_seed(args.seed)
    trainer = make_trainer(args, x_train.shape, n_classes, image_shape, callbacks)
    say(f"model: {_describe(trainer.model)}; optimizer {args.optimizer}; batch size "
        f"{'full' if bs is None else bs}; {args.epochs} epochs")
    t0 = time.perf_counter()
    history = trainer.fit(x_train, y_train, epochs=args.epochs, batch_size=bs,
                          validation_data=(x_val, y_val), verbose=0 if args.quiet else 1)
    elapsed = time.perf_counter() - t0
    if args.backup is not None and callbacks[-1].restored is not None:
        say(f"resumed from the backup in {args.backup} at epoch {callbacks[-1].restored['epoch'] + 1}")
    results = {name: trainer.evaluate(a, b) for name, a, b in
               (("train", x_train, y_train), ("validation", x_val, y_val), ("test", x_test, y_test))}
    print(f"trained {len(history.epoch)} epochs in {elapsed:.1f}s", flush=True)
    for name, r in results.items():
        print(f"{name} loss {r['loss']:.4f}  {name} accuracy {r['accuracy']:.4f}")
    if not trainer.is_root:            # --distributed: rank 0 writes the outputs
        return 0
    ckpt = os.path.join(args.out, "model.npz")
    pydl.save(trainer.model, ckpt)
    print(f"checkpoint: {ckpt}")
    try:
        history.plot(os.path.join(args.out, "curves.png"))
        print(f"curves: {os.path.join(args.out, 'curves.png')}")
    except ImportError:
        say("curves: matplotlib not installed, no PNG written")
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
    except CLIError as e:
        print(f"error: {e}", file=sys.stderr)
        return _end(args, 1)
    except (ValueError, TypeError, OSError, ImportError) as e:
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return _end(args, 1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return _end(args, 130)
    parser.error(f"unknown command {args.command!r}")
