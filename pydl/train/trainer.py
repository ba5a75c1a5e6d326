"""Trainer: the Keras-like training loop (fit / evaluate / predict) over pydl modules.

One training step on a batch (x_b, y_b) of n_b samples:

    optimizer.zero_grad()
    [weight noise: w <- w + eps, eps ~ N(0, std^2)]         (weight_noise > 0)
    out = model(x_b); L_b = loss_fn(out, y_b); model.backward(loss_fn.backward())
    [weight noise: w <- w - eps, restored exactly from a copy]
    for each regularizer R: L_b += R.penalty(); grad += d R / d w
    [clip the gradients: clipnorm / global_clipnorm / clipvalue, Keras semantics]
    optimizer.step()
    [lr_scheduler.step() with scheduler_interval="batch"]

The epoch's "loss" is the sample-weighted mean over its batches of the training objective,
sum_b n_b * (data loss_b + penalty_b) / sum_b n_b, each term measured while training (dropout
active, weights changing between batches): the number Keras reports. Training metrics are
averaged the same way from the same forward passes (against the transformed targets when a
``transform`` such as Mixup changes them). "val_loss" and "val_<metric>" are measured after the
epoch in eval mode; val_loss includes the current penalty too (as Keras), so the generalization
gap logged as "gap" = val_loss - loss compares data losses. With ``reduction="sum"`` losses the
batch loss is divided by n_b first, so "loss" is always a per-sample mean.

Weighted losses (``fit(..., sample_weight=, class_weight=)``, Keras semantics): each sample i
gets the weight s_i = sample_weight[i] * class_weight.get(class of y_i, 1.0) (the class of a
(N, C) target is its argmax, of a binary one its rounded value), and the batch loss is Keras's
default "sum_over_batch_size" reduction of the per-sample losses l_i (the loss called with
``reduction="none"``): sum_i s_i l_i / n, n the number of loss values in the batch (so weights
of 1 give the unweighted loss; it is not renormalized by sum_i s_i). A ``reduction="sum"`` loss
gives sum_i s_i l_i (reported divided by n_b, as always). Only the training loss is weighted:
metrics, validation and ``evaluate`` are not (Keras's ``metrics``, not ``weighted_metrics``).

Default metrics follow the loss: ``metrics=None`` gives ("accuracy",) when the loss scores
classes (``loss_fn.classification``) or, for a loss that is not a classification loss (MSE), when
the targets are one-hot rows (a classifier trained by squared error); otherwise no metric (a
regression reports its loss only). A loss that declares nothing gets accuracy for integer class
labels or one-hot targets. The choice is made from the targets of each ``fit`` / ``evaluate``.

Resuming: ``fit(..., initial_epoch=k)`` starts at epoch k. A ``callbacks.BackupAndRestore``
asks the Trainer for its complete training state (``_training_state``: position in the run, down
to the batch, model, optimizer, random streams, history, callbacks' ``get_state``) and, in a
restarted run, puts it back at ``on_train_begin`` (``_restore_training_state``); the epoch loop
then continues from that position, so the run ends bitwise as if never interrupted.
"""
from __future__ import annotations

import contextlib
import copy
import inspect
import math
import numbers
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from .. import _random
from .._grad_mode import no_grad
from .._typing import Array
from ..nn.loss import float_labels_error
from . import _rng_state
from . import metrics as _metrics
from ._clipping import GradientClipper
from .callbacks import BackupAndRestore, Callback, LearningRateScheduler
from .history import History
from .regularizers import Regularizer, resolve_params
from .step import TrainStep


def _check_callbacks(callbacks: Iterable[Any], name: str) -> list[Callback]:
    """``callbacks`` as a list of Callback instances; a TypeError names what to do with anything else
    (a learning-rate scheduler has its own place)."""
    callbacks = list(callbacks)
    for cb in callbacks:
        if isinstance(cb, Callback):
            continue
        if callable(getattr(cb, "step", None)) and hasattr(cb, "optimizer"):
            raise TypeError(
                f"{name}: got a learning-rate scheduler ({type(cb).__name__}), not a Callback: pass it as "
                "Trainer(..., lr_scheduler=scheduler) (with scheduler_interval='batch' for a per-batch schedule "
                "such as OneCycleLR), or wrap it: pydl.train.callbacks.LearningRateScheduler(scheduler)")
        raise TypeError(f"{name}: expected Callback instances (subclasses of pydl.train.callbacks.Callback), "
                        f"got {type(cb).__name__}")
    return callbacks


def _overrides(cb, hook):
    return getattr(type(cb), hook, None) is not getattr(Callback, hook)


def _ordered_callbacks(callbacks, history):
    """The callbacks of a fit: those given, in order, then ``history``, then the BackupAndRestore
    (at most one), which must see every other callback's state."""
    backups = [cb for cb in callbacks if isinstance(cb, BackupAndRestore)]
    if len(backups) > 1:
        raise ValueError(f"callbacks: at most one BackupAndRestore per fit, got {len(backups)}")
    return [cb for cb in callbacks if not isinstance(cb, BackupAndRestore)] + [history] + backups


@contextlib.contextmanager
def _inference(model):
    """Eval mode and ``pydl.no_grad()`` inside the block; the model's previous mode after it."""
    was_training = getattr(model, "training", True)
    model.eval()
    try:
        with no_grad():
            yield
    finally:
        model.train(was_training)


def _check_batch_size(batch_size, allow_none=False):
    if batch_size is None and allow_none:
        return None
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        expected = "an int >= 1 or None (full batch)" if allow_none else "an int >= 1"
        raise ValueError(f"batch_size: expected {expected}, got {batch_size!r}")
    return int(batch_size)


def _check_fit_args(epochs, batch_size, validation_split, verbose, initial_epoch=0):
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
        raise ValueError(f"epochs: expected an int >= 0, got {epochs!r}")
    if isinstance(initial_epoch, bool) or not isinstance(initial_epoch, (int, np.integer)) or initial_epoch < 0:
        raise ValueError(f"initial_epoch: expected an int >= 0, got {initial_epoch!r}")
    _check_batch_size(batch_size, allow_none=True)
    if (isinstance(validation_split, bool) or not isinstance(validation_split, numbers.Real)
            or not 0.0 <= validation_split < 1.0):
        raise ValueError(f"validation_split: expected a float in [0, 1), got {validation_split!r}")
    if verbose not in (0, 1, 2):
        raise ValueError(f"verbose: expected 0, 1 or 2, got {verbose!r}")


def _has_batchnorm(model):
    """True when ``model`` (a pydl.nn.Module) contains a BatchNorm layer, whose training forward
    needs more than one sample per channel."""
    modules = getattr(model, "modules", None)
    if not callable(modules):
        return False
    from ..nn.batchnorm import _BatchNorm
    return any(isinstance(m, _BatchNorm) for m in modules())


def _batch_bounds(n, bs, min_tail):
    """Batch boundaries: batch b holds the samples bounds[b]:bounds[b + 1] (of the epoch's order).

    Batches of ``bs`` samples, the last one possibly smaller; a last batch of fewer than
    ``min_tail`` samples is merged into the one before it.
    """
    bounds = list(range(0, n, bs)) + [n]
    if len(bounds) > 2 and bounds[-1] - bounds[-2] < min_tail:
        del bounds[-2]
    return bounds


class _EpochProgress:
    """Where an epoch stands: its permutation, the batches run, the running sums of its logs."""

    def __init__(self, epoch, order, n_metrics):
        self.epoch = epoch
        self.order = order
        self.batch = 0                  # batches of this epoch already run
        self.loss_sum = 0.0
        self.seen = 0
        self.metric_sums = [0.0] * n_metrics
        self.done = False               # the epoch's end has been reached (on_epoch_end running)

    def state(self):
        return {"order": None if self.order is None else np.array(self.order, copy=True),
                "loss_sum": self.loss_sum, "seen": self.seen, "metric_sums": list(self.metric_sums)}

    @classmethod
    def from_state(cls, epoch, batch, state, n_metrics):
        p = cls(epoch, state["order"], n_metrics)
        p.batch = batch
        p.loss_sum, p.seen = state["loss_sum"], state["seen"]
        p.metric_sums = list(state["metric_sums"])
        return p


class _WeightNoise:
    """Gaussian weight noise for one training step: ``add`` draws eps ~ N(0, std^2) into each
    parameter (w <- w + eps), ``restore`` puts back the exact clean values."""

    def __init__(self, params, std, rng):
        self.params, self.std, self.rng = params, std, rng
        self._saved = [np.empty_like(p.data) for p in params]
        self._eps = [np.empty_like(p.data) for p in params]

    def add(self):
        for p, saved, eps in zip(self.params, self._saved, self._eps):
            np.copyto(saved, p.data)
            self.rng.standard_normal(dtype=eps.dtype, out=eps)
            eps *= self.std
            p.data += eps

    def restore(self):
        for p, saved in zip(self.params, self._saved):
            np.copyto(p.data, saved)


class Trainer:
    """Fit, evaluate and predict with a model, a loss and an optimizer.

    Parameters
    ----------
    model : nn.Module
    loss_fn : loss object, ``loss_fn(pred, target) -> float`` and ``loss_fn.backward() -> dL/dpred``
    optimizer : optim.Optimizer
    metrics : sequence of str or callable, or None
        None (default): chosen from the loss and the targets (see the module docstring:
        "accuracy" for classification, nothing for regression). Otherwise the metrics to log:
        "accuracy" (argmax over classes; threshold 0.5 for one output, 0 on logits when the loss's
        ``target_kinds`` holds "binary", as BCEWithLogitsLoss; soft targets use their argmax), "mse", "mae", or ``f(y_true, y_pred) -> float``
        (a per-sample mean; logged under ``f.__name__``).
    callbacks : sequence of Callback
    regularizers : sequence of regularizers.L1 / L2
        Penalties added to the training objective and to the gradients before each step.
    weight_noise : float
        Standard deviation of Gaussian noise added to the weights for each training step
        (see the module docstring; An 1996, Graves 2011 "fixed-variance weight noise"): the
        gradient is taken at w + eps and applied to the clean weights w. 0 disables it.
    weight_noise_params : sequence of Parameters or names, optional
        Which parameters get weight noise (default: the weights, ndim >= 2, not biases or BN).
    transform : callable ``t(x, y) -> (x, y)``, optional
        Applied to every training batch (not to validation, evaluate or predict): augmentations,
        Mixup / CutMix (which may return soft targets).
    clipnorm, clipvalue, global_clipnorm : float > 0, optional
        Gradient clipping with Keras's semantics, at most one of them (see
        :mod:`pydl.train._clipping`): ``clipnorm`` clips the norm of each parameter's gradient
        separately, ``global_clipnorm`` the norm of all gradients together, ``clipvalue`` every
        element to [-v, v]. Applied after the regularizers' gradients, before ``optimizer.step()``.
        (PyTorch's ``clip_grad_norm_`` is ``pydl.nn.utils.clip_grad_norm_``.)
    lr_scheduler : optim.lr_scheduler object or callable ``schedule(epoch, lr) -> lr``, optional
        Stepped by the Trainer (a :class:`callbacks.LearningRateScheduler` run before the other
        callbacks): after every epoch, or after every batch with ``scheduler_interval="batch"``
        (per-batch schedules such as ``OneCycleLR`` or a ``LinearLR`` warmup in iterations).
    scheduler_interval : {"epoch", "batch"}, default "epoch"
        When ``lr_scheduler`` steps (PyTorch Lightning's ``interval``).
    distributed : bool, default False
        Data-parallel training over MPI (:mod:`pydl.distributed`; run the script under
        ``mpiexec -n K``, every rank with the same model, data and arguments). ``fit`` starts
        every rank from rank 0's weights, buffers, optimizer state and random streams; each rank
        trains on its slice of every global batch of ``batch_size`` samples, and ``optimizer``
        (wrapped in a ``DistributedOptimizer`` unless it is one) averages the gradients, so the
        run follows one process's on the whole batches. Logged losses and metrics (training,
        validation, ``evaluate``) are over all ranks' samples: the numbers one process would
        log. Only rank 0 prints, and ModelCheckpoint, CSVLogger and BackupAndRestore write from
        rank 0 only; every rank runs every callback (give all ranks the same ones) and must call
        ``fit`` and ``evaluate`` (collective); ``predict`` is local. BatchNorm layers use their
        rank's statistics (PyTorch DDP's default; ``pydl.distributed.convert_sync_batchnorm``
        for global ones); rank 0's running statistics are broadcast before every evaluation and
        at the end of ``fit``, as DDP's ``broadcast_buffers``.
    """

    def __init__(self, model: Any, loss_fn: Any, optimizer: Any, metrics: Any = None,
                 callbacks: Sequence[Callback] = (), *, regularizers: Sequence[Regularizer] = (),
                 weight_noise: float = 0.0, weight_noise_params: Any = None,
                 transform: Callable[[Array, Array], tuple[Array, Array]] | None = None,
                 clipnorm: float | None = None, clipvalue: float | None = None,
                 global_clipnorm: float | None = None, lr_scheduler: Any = None,
                 scheduler_interval: str = "epoch", distributed: bool = False) -> None:
        for name in ("__call__", "backward", "parameters", "named_parameters", "train", "eval"):
            if not hasattr(model, name):
                raise TypeError(f"model: expected a pydl.nn.Module, got {type(model).__name__} (no {name})")
        if not callable(loss_fn) or not hasattr(loss_fn, "backward"):
            raise TypeError(f"loss_fn: expected a pydl.nn loss, got {type(loss_fn).__name__}")
        if not hasattr(optimizer, "step") or not hasattr(optimizer, "zero_grad"):
            raise TypeError(f"optimizer: expected a pydl.optim optimizer, got {type(optimizer).__name__}")
        if not isinstance(distributed, (bool, np.bool_)):
            raise TypeError(f"distributed: expected a bool, got {type(distributed).__name__}")
        self._dist = None
        if distributed:
            from ..distributed import DistributedOptimizer
            from ._distributed import DataParallel
            self._dist = DataParallel()
            if not isinstance(optimizer, DistributedOptimizer):
                optimizer = DistributedOptimizer(optimizer)
        self.model = model
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        self._default_metrics = metrics is None
        if metrics is None:
            metrics = ("accuracy",) if getattr(loss_fn, "classification", False) else ()
        elif isinstance(metrics, str) or callable(metrics):
            metrics = (metrics,)
        self.metric_fns = [_metrics.get(m) for m in metrics]
        names = [n for n, _ in self.metric_fns]
        if len(set(names)) != len(names) or "loss" in names:
            raise ValueError(f"metrics: names must be distinct and not 'loss', got {names}")
        self.callbacks = _check_callbacks(callbacks, "callbacks")
        self.regularizers = list(regularizers)
        for r in self.regularizers:
            if not isinstance(r, Regularizer):
                raise TypeError(f"regularizers: expected L1/L2 instances, got {type(r).__name__}")
        if not isinstance(weight_noise, (int, float)) or not math.isfinite(weight_noise) or weight_noise < 0:
            raise ValueError(f"weight_noise: expected a finite std >= 0, got {weight_noise!r}")
        self.weight_noise = float(weight_noise)
        self.weight_noise_params = weight_noise_params
        if transform is not None and not callable(transform):
            raise TypeError(f"transform: expected a callable t(x, y) -> (x, y), got {type(transform).__name__}")
        self.transform = transform
        self._clipper = GradientClipper.create(clipnorm, clipvalue, global_clipnorm)
        if scheduler_interval not in ("epoch", "batch"):
            raise ValueError(f"scheduler_interval: expected 'epoch' or 'batch', got {scheduler_interval!r}")
        self.lr_scheduler = lr_scheduler
        self._scheduler_callback = None
        if lr_scheduler is not None:
            if getattr(lr_scheduler, "optimizer", optimizer) is not optimizer:
                raise ValueError("lr_scheduler: was built on another optimizer than the Trainer's (build it "
                                 "on the optimizer passed to the Trainer)")
            self._scheduler_callback = LearningRateScheduler(lr_scheduler, interval=scheduler_interval)
        self.stop_training = False
        self.history: History | None = None
        self._weight_noise: _WeightNoise | None = None
        # the current fit's bookkeeping
        self._fit: dict[str, Any] | None = None
        self._progress: _EpochProgress | None = None
        self._resume: _EpochProgress | None = None
        self._weights: Array | None = None
        self._none_loss: Any = None
        # What the loss takes as targets (pydl losses declare it; other callables declare nothing).
        self._target_kinds = tuple(getattr(loss_fn, "target_kinds", ()))
        # accuracy on a single output: threshold logits at 0 for binary losses on logits, else 0.5.
        self._threshold = 0.0 if "binary" in self._target_kinds else 0.5
        self._sum_reduction = getattr(loss_fn, "reduction", "mean") == "sum"
        # The gradient w.r.t. the input batch is never used: skip it where the model allows.
        try:
            self._backward_kw = ({"input_grad": False}
                                 if "input_grad" in inspect.signature(model.backward).parameters else {})
        except (TypeError, ValueError):
            self._backward_kw = {}

    @property
    def distributed(self) -> bool:
        """True for a data-parallel Trainer (``Trainer(..., distributed=True)``)."""
        return self._dist is not None

    @property
    def is_root(self) -> bool:
        """True on the rank that prints and writes files: rank 0, or always when not distributed."""
        return self._dist is None or self._dist.root

    # ------------------------------------------------------------------ input checks
    def _dtype(self):
        for p in self.model.parameters():
            return p.data.dtype
        return np.dtype(np.float32)

    def _check_x(self, x, name):
        if isinstance(x, (list, tuple)):
            x = np.asarray(x)
        if not isinstance(x, np.ndarray):
            raise TypeError(f"{name}: expected a numpy.ndarray, got {type(x).__name__}")
        if x.dtype.kind not in "fiub":
            raise TypeError(f"{name}: expected a numeric array, got dtype {x.dtype}")
        if x.ndim < 1 or x.shape[0] == 0:
            raise ValueError(f"{name}: empty input (shape {x.shape}); expected at least one sample")
        x = np.ascontiguousarray(x, dtype=self._dtype())
        if not np.isfinite(x).all():
            bad = int(np.count_nonzero(~np.isfinite(x)))
            raise ValueError(f"{name}: contains {bad} NaN or infinite value(s)")
        return x

    def _n_outputs(self, x, name="x"):
        """Number of model outputs (columns), from an eval-mode forward pass on one sample."""
        try:
            with _inference(self.model):
                out = np.asarray(self.model(x[:1]))
        except (ValueError, TypeError) as e:  # name the caller's argument and its real shape
            raise type(e)(f"{name}: the model rejects samples of shape {tuple(x.shape[1:])} "
                          f"(x of shape {tuple(x.shape)}): {e}") from e
        return (out.shape[1] if out.ndim == 2 else 1), out.ndim

    def _check_y(self, y, n, n_out, out_ndim, name):
        if isinstance(y, (list, tuple)):
            y = np.asarray(y)
        if not isinstance(y, np.ndarray):
            raise TypeError(f"{name}: expected a numpy.ndarray, got {type(y).__name__}")
        if y.ndim == 0 or y.shape[0] != n:
            got = "a scalar" if y.ndim == 0 else f"{y.shape[0]}"
            raise ValueError(f"x and {name}: different numbers of samples: x has {n}, {name} has {got}")
        if y.dtype.kind in "iub":
            if y.ndim == 1 and (n_out > 1 or "class_index" in self._target_kinds):
                lo, hi = int(y.min()), int(y.max())
                if lo < 0 or hi >= n_out:
                    raise ValueError(f"{name}: class labels must lie in [0, {n_out}) for a model with "
                                     f"{n_out} outputs, got labels from {lo} to {hi}")
                return np.ascontiguousarray(y, dtype=np.int64)
            y = y.astype(self._dtype())
        elif y.dtype.kind == "f":
            if y.ndim == 1 and n_out > 1 and "class_index" in self._target_kinds:
                raise float_labels_error(y, name, n_out, type(self.loss_fn).__name__)
            y = np.ascontiguousarray(y, dtype=self._dtype())
            if not np.isfinite(y).all():
                raise ValueError(f"{name}: contains NaN or infinite values")
        else:
            raise TypeError(f"{name}: expected a numeric array, got dtype {y.dtype}")
        if y.ndim == 1 and n_out == 1 and out_ndim == 2:
            y = y.reshape(n, 1)        # (N,) targets for a (N, 1) output
        if y.ndim == 2 and out_ndim == 2 and y.shape[1] != n_out:
            raise ValueError(f"{name}: expected {n_out} columns (one per model output), got shape {y.shape}")
        return y

    def _prepare(self, x, y, xname="x", yname="y"):
        x = self._check_x(x, xname)
        n_out, out_ndim = self._n_outputs(x, xname)
        return x, self._check_y(y, x.shape[0], n_out, out_ndim, yname)

    def _choose_default_metrics(self, y):
        """metrics=None: accuracy for classification (see the module docstring), else none."""
        if not self._default_metrics:
            return
        declared = getattr(self.loss_fn, "classification", None)
        onehot = (y.ndim == 2 and y.shape[1] > 1 and y.dtype.kind == "f"
                  and bool(np.all((y == 0) | (y == 1))) and bool(np.all(y.sum(axis=1) == 1)))
        if declared is None:
            classify = onehot or (y.ndim == 1 and y.dtype.kind in "iu")
        else:
            classify = bool(declared) or onehot
        self.metric_fns = [_metrics.get("accuracy")] if classify else []

    def _sample_weights(self, y, n, sample_weight, class_weight):
        """Per-sample loss weights (float64, shape (n,)) from sample_weight and class_weight, or None."""
        if sample_weight is None and class_weight is None:
            return None
        if getattr(self.loss_fn, "reduction", None) not in ("mean", "sum"):
            raise TypeError("sample_weight / class_weight: the loss must support reduction='none' (a pydl.nn loss "
                            f"with reduction 'mean' or 'sum'), got {type(self.loss_fn).__name__}")
        w = np.ones(n)
        if sample_weight is not None:
            if sample_weight.dtype.kind not in "fiub":
                raise TypeError(f"sample_weight: expected real numbers, got dtype {sample_weight.dtype}")
            if sample_weight.ndim == 2 and sample_weight.shape[1] != 1:
                raise ValueError(f"sample_weight: expected shape ({n},) (one weight per sample), "
                                 f"got {sample_weight.shape}")
            sw = sample_weight.astype(np.float64).reshape(n)
            if not np.isfinite(sw).all() or (sw < 0).any():
                raise ValueError("sample_weight: expected finite, non-negative weights")
            w *= sw
        if class_weight is not None:
            if not isinstance(class_weight, dict):
                raise TypeError(f"class_weight: expected a dict {{class index: weight}}, got {type(class_weight).__name__}")
            if y.ndim > 2:
                raise ValueError(f"class_weight: targets of shape {y.shape} have no class per sample")
            cls = y.argmax(axis=1) if (y.ndim == 2 and y.shape[1] > 1) else np.round(y.reshape(n))
            cls = cls.astype(np.int64)
            cw = np.ones(n)
            for k, v in class_weight.items():
                if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)):
                    raise TypeError(f"class_weight: keys must be int class indices, got {k!r}")
                if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.number)) \
                        or not np.isfinite(v) or v < 0:
                    raise ValueError(f"class_weight: expected finite weights >= 0, got {v!r} for class {k}")
                cw[cls == k] = float(v)
            w *= cw
        return w

    # ------------------------------------------------------------------ fit
    def fit(self, x: Array, y: Array, epochs: int = 10, batch_size: int | None = 32,
            validation_data: tuple[Array, Array] | None = None, validation_split: float = 0.0,
            shuffle: bool = True, verbose: int = 1, callbacks: Sequence[Callback] | None = None,
            initial_epoch: int = 0, class_weight: dict[int, float] | None = None,
            sample_weight: Array | None = None) -> History:
        """Train the model; returns a History (also kept as ``trainer.history``).

        Parameters
        ----------
        x : ndarray of shape (N, ...)
            Any numeric dtype (bool, integers, floats, e.g. uint8 images): converted to the model's
            dtype, as Keras does (calling a module directly takes that dtype only).
        y : ndarray of shape (N,) int class indices, (N, C) soft targets, or (N,) / (N, k) regression targets
        epochs : int
            Index of the epoch to stop before (Keras): epochs ``initial_epoch, ..., epochs - 1`` run.
        batch_size : int or None
            1: stochastic GD; k: mini-batch; None (or >= N): full-batch GD. The last batch of an
            epoch may be smaller. When the model has a BatchNorm layer and that last batch would
            hold a single sample (N % batch_size == 1), it is merged into the batch before it
            (which then has batch_size + 1 samples): a training BatchNorm cannot normalize one
            sample. Nothing else changes the batches. Full-batch epochs are not shuffled (the
            order does not matter).
        validation_data : (x_val, y_val), optional
            Overrides validation_split.
        validation_split : float in [0, 1)
            The last fraction of the samples (before any shuffling) is held out (Keras).
        shuffle : bool
            Reshuffle the training samples every epoch with pydl's global generator
            (reproducible after ``pydl.manual_seed``).
        verbose : 0, 1 or 2
            0 silent; 1 a tqdm progress bar per epoch when tqdm is installed, else one line per
            epoch; 2 one line per epoch.
        callbacks : sequence of Callback, optional
            Extra callbacks for this call only (after those given to the constructor).
        initial_epoch : int >= 0
            Epoch at which to start (Keras), to resume a previous run: epochs are numbered from
            it (in the callbacks' hooks and in ``History.epoch``). When ``trainer.history`` holds
            a previous fit's records, the new History starts with those of its epochs before
            ``initial_epoch``, so the history continues (Keras starts an empty one). A
            :class:`~pydl.train.callbacks.BackupAndRestore` that finds a backup overrides it.
        class_weight : dict {class index: weight}, optional
            Weight of each sample's loss by its class (Keras; classes not listed weigh 1).
        sample_weight : ndarray of shape (N,), optional
            Weight of each sample's loss (Keras); multiplied by the class weight. With either,
            the batch loss is sum_i w_i l_i / n (see the module docstring); the loss must be a
            pydl loss (it is called with ``reduction="none"``). With ``validation_split`` the
            weights of the held-out samples are dropped.

        Notes
        -----
        Callbacks run in the order given, then the History, then a BackupAndRestore (always
        last, so that its backups hold the other callbacks' state at the end of each epoch or
        batch, and its restore at ``on_train_begin`` follows their own ``on_train_begin``).
        """
        _check_fit_args(epochs, batch_size, validation_split, verbose, initial_epoch)
        epochs, initial_epoch = int(epochs), int(initial_epoch)
        x, y, validation = self._prepare_data(x, y, validation_data, validation_split)
        n = x.shape[0]
        n_all = n + (validation[0].shape[0] if validation is not None and validation_data is None else 0)
        self._choose_default_metrics(y)
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight)
            if sample_weight.ndim not in (1, 2) or sample_weight.shape[0] != n_all:
                raise ValueError(f"sample_weight: expected shape ({n_all},) (one weight per sample of x), "
                                 f"got {sample_weight.shape}")
            sample_weight = sample_weight[:n]                 # validation_split holds out the tail
        weights = self._sample_weights(y, n, sample_weight, class_weight)
        self._weights = weights
        self._none_loss = None
        if weights is not None:
            self._none_loss = copy.copy(self.loss_fn)
            self._none_loss.reduction = "none"
        bs = n if batch_size is None else min(int(batch_size), n)
        min_batch = (2 if _has_batchnorm(self.model) else 1) * (1 if self._dist is None else self._dist.size)
        bounds = _batch_bounds(n, bs, min_batch)
        steps = len(bounds) - 1
        dist = self._dist
        if dist is not None:
            dist.begin_fit(self, x, y, validation, bs, epochs, initial_epoch, min_batch)
            verbose = verbose if dist.root else 0
        for r in self.regularizers:
            r.bind(self.model)
        rng = _random.generator()
        self._weight_noise = _WeightNoise(
            resolve_params(self.model, self.weight_noise_params, "weight_noise_params"),
            self.weight_noise, rng) if self.weight_noise > 0 else None

        history = History()
        history.params = {"epochs": epochs, "steps": steps, "samples": n, "batch_size": bs}
        if initial_epoch > 0 and self.history is not None:
            history._carry_over(self.history, initial_epoch)
        cbs = _ordered_callbacks(([self._scheduler_callback] if self._scheduler_callback else [])
                                 + self.callbacks + _check_callbacks(callbacks or (), "callbacks"), history)
        for cb in cbs:
            cb.set_trainer(self)
        batch_cbs = [cb for cb in cbs if _overrides(cb, "on_batch_begin") or _overrides(cb, "on_batch_end")]
        self.history = history
        self.stop_training = False
        self._fit = {"callbacks": cbs, "samples": n, "batch_size": bs, "steps": steps,
                     "epochs": epochs, "initial_epoch": initial_epoch}
        self._progress = None
        self._resume = None
        bar_cls = _tqdm() if verbose == 1 else None

        muted = contextlib.ExitStack()        # distributed: every rank but 0 prints nothing
        if dist is not None:
            muted.enter_context(dist.quiet())
        try:
            for cb in cbs:
                cb.on_train_begin({})
            resume, self._resume = self._resume, None       # set by a BackupAndRestore
            first = initial_epoch if resume is None else resume.epoch
            for epoch in range(first, epochs):
                partial = resume if (resume is not None and resume.epoch == epoch and resume.batch > 0) else None
                if partial is None and self.stop_training:  # restored from a run that had stopped
                    break
                t0 = time.perf_counter()
                if partial is None:
                    for cb in cbs:
                        cb.on_epoch_begin(epoch, {})
                    order = rng.permutation(n) if (shuffle and bs < n) else None
                    progress = _EpochProgress(epoch, order, len(self.metric_fns))
                else:
                    progress = partial
                bar = bar_cls(total=steps, initial=progress.batch, desc=f"Epoch {epoch + 1}/{epochs}",
                              unit="batch", leave=True, file=sys.stderr) if bar_cls else None
                logs = self._run_epoch(x, y, bounds, progress, batch_cbs, bar)
                self._end_epoch(epoch, logs, validation, bs, cbs)
                if verbose:
                    _report_epoch(epoch, epochs, logs, bar, t0)
                if self._dist is not None:     # every rank stops when one callback stopped it
                    self.stop_training = self._dist.any(self.stop_training)
                if self.stop_training:
                    break
            if self._dist is not None:
                self._dist.sync_buffers(self.model)
            for cb in cbs:
                cb.on_train_end({})
        finally:
            muted.close()
            self._fit = self._progress = self._resume = None
            self._weights = self._none_loss = None
        return history

    def _prepare_data(self, x, y, validation_data, validation_split):
        """Checked training arrays and the validation pair (or None): validation_data, else the
        last ``validation_split`` fraction of the samples."""
        x, y = self._prepare(x, y)
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError("validation_data: expected a tuple (x_val, y_val)")
            return x, y, self._prepare(validation_data[0], validation_data[1],
                                       "validation_data[0]", "validation_data[1]")
        if validation_split == 0:
            return x, y, None
        n = x.shape[0]
        split_at = int(math.floor(n * (1.0 - validation_split)))
        if split_at == 0 or split_at == n:
            raise ValueError(f"validation_split: {validation_split} of {n} samples leaves "
                             f"{split_at} for training and {n - split_at} for validation; "
                             "both must be non-empty")
        return x[:split_at], y[:split_at], (x[split_at:], y[split_at:])

    def _run_epoch(self, x, y, bounds, progress, batch_cbs, bar):
        """Run the batches of ``progress``'s epoch from ``progress.batch`` on (the samples
        ``bounds[b]:bounds[b + 1]`` of ``progress.order``, or of x when None); returns the epoch's
        training logs: the sample-weighted means of the batch losses and metrics."""
        self.model.train()
        self._progress = p = progress
        order = p.order
        dist = self._dist
        scale = 1.0
        # Nothing in Python between batches (no batch callbacks, sample weights, transform or
        # distributed averaging, a plain step): the batches may run in C++ calls (a progress bar
        # then advances by a call's batches).
        fused = not batch_cbs and self._weights is None and self.transform is None and self._plain_step()
        while p.batch < len(bounds) - 1:
            b = p.batch
            if b > 0 and self.stop_training:          # restored from a run stopped mid-epoch
                break
            if fused:
                ran = self._run_fused(x, y, bounds, p)
                if ran:
                    if bar is not None:
                        bar.update(p.batch - b)
                    continue
                fused = ran is None                   # no plan yet: try again after this batch
            sl = slice(bounds[b], bounds[b + 1])
            idx = sl if order is None else order[sl]
            if dist is not None:                      # this rank's slice of the global batch
                idx, scale = dist.local(idx, self._sum_reduction)
            xb, yb = x[idx], y[idx]
            wb = None if self._weights is None else self._weights[idx]
            nb = xb.shape[0]
            logs = {"batch": b, "size": bounds[b + 1] - bounds[b]} if batch_cbs else None
            for cb in batch_cbs:
                cb.on_batch_begin(b, logs)
            loss, metrics = self._train_step(xb, yb, wb, scale)
            for i, m in enumerate(metrics):
                p.metric_sums[i] += nb * m
            p.loss_sum += nb * loss
            p.seen += nb
            p.batch = b + 1
            if batch_cbs:
                if dist is not None:                  # the global batch's loss
                    loss = float(dist.sums([nb * loss])[0]) / logs["size"]
                logs["loss"] = loss
                for cb in batch_cbs:
                    cb.on_batch_end(b, logs)
            if bar is not None:
                bar.update(1)
            if self.stop_training:
                break
        loss_sum, seen, metric_sums = p.loss_sum, p.seen, p.metric_sums
        if dist is not None:                          # sums over the ranks
            loss_sum, seen, *metric_sums = dist.sums([loss_sum, seen] + list(metric_sums))
        logs = {"loss": float(loss_sum / seen)}
        for (name, _), s in zip(self.metric_fns, metric_sums):
            logs[name] = float(s / seen)
        return logs

    # batches per call of TrainStep.run_batches: Python regains control (Ctrl-C) between calls
    _FUSED_BATCHES = 64

    def _run_fused(self, x, y, bounds, p):
        """Run batches p.batch, p.batch + 1, ... (at most _FUSED_BATCHES) of the epoch with
        ``TrainStep.run_batches`` and add them to ``p`` exactly as the loop of ``_run_epoch``
        does. Returns whether any ran (the loop then goes on from ``p.batch``), or None when the
        TrainStep has no plan yet: the first step makes the optimizer state that a plan needs, so
        plans are made by the per-batch steps."""
        fns = [fn for _, fn in self.metric_fns]
        if fns and not all(fn is _metrics.accuracy for fn in fns):
            return False                              # (accuracy is counted in C++)
        step = self._step_fn()
        if not step._plannable:
            return False
        if step._plan is None:
            return None
        first = p.batch
        res = step.run_batches(x, y, p.order, bounds[first:first + self._FUSED_BATCHES + 1], bool(fns))
        if res is None:
            return False
        losses, correct = res
        for k, loss in enumerate(losses):
            b = first + k
            nb = bounds[b + 1] - bounds[b]
            if self._sum_reduction:
                loss = loss / nb
            if fns:
                m = correct[k] / nb                   # _metric's accuracy of the batch
                for i in range(len(fns)):
                    p.metric_sums[i] += nb * m
            p.loss_sum += nb * loss
            p.seen += nb
            p.batch = b + 1
        return bool(losses)

    def _train_step(self, xb, yb, wb=None, grad_scale=1.0):
        """One optimizer step on a batch: transform, forward, loss, backward (at noisy weights
        when weight_noise > 0), regularization, step. Returns (objective, metric values).
        ``wb``: the batch's sample weights (None: unweighted); ``grad_scale`` multiplies the
        loss gradient (a distributed rank's K * n_r / nb)."""
        nb = xb.shape[0]
        if self.transform is not None:
            xb, yb = self._apply_transform(xb, yb)
        if wb is None and grad_scale == 1.0 and self._plain_step():
            step = self._step_fn()
            loss = step(xb, yb)
            metrics = [self._metric(fn, yb, step.output) for _, fn in self.metric_fns]
            return (loss / nb if self._sum_reduction else loss), metrics
        self.optimizer.zero_grad()
        if self._weight_noise is not None:
            self._weight_noise.add()
        out = self.model(xb)
        metrics = [self._metric(fn, yb, out) for _, fn in self.metric_fns]
        if wb is None:
            loss = float(self.loss_fn(out, yb))
            grad = self.loss_fn.backward()
        else:
            loss, grad = self._weighted_loss(out, yb, wb)
        if grad_scale != 1.0:
            grad = grad * grad.dtype.type(grad_scale)
        self.model.backward(grad, **self._backward_kw)
        if self._weight_noise is not None:
            self._weight_noise.restore()
        if self._sum_reduction:
            loss /= nb
        for r in self.regularizers:
            loss += r.penalty()
            r.add_grad()
        if self._clipper is not None:
            if self._dist is not None:     # clip the averaged gradients (Horovod: synchronize, then clip)
                self.optimizer.synchronize()
            self._clipper(self._optimized_params())
        self.optimizer.step()
        return loss, metrics

    def _optimized_params(self) -> list[Any]:
        """The parameters the optimizer updates (the model's when it has no param_groups)."""
        groups = getattr(self.optimizer, "param_groups", None)
        if groups is None:
            return list(self.model.parameters())
        return [p for g in groups for p in g["params"]]

    def _plain_step(self) -> bool:
        """Whether a step is exactly zero_grad, forward, loss, backward, optimizer step: no weight
        noise, regularizers, gradient clipping or distributed averaging (anything between backward
        and step). Such a step runs as a TrainStep, fused into one C++ call when the model and
        optimizer allow (docs/ARCHITECTURE.md §2)."""
        return (self._weight_noise is None and not self.regularizers and self._clipper is None
                and self._dist is None)

    def _step_fn(self) -> TrainStep:
        """The TrainStep of the current model, loss and optimizer (kept between batches: it holds
        the fused plan)."""
        step = getattr(self, "_step", None)
        if (step is None or step.model is not self.model or step.loss_fn is not self.loss_fn
                or step.optimizer is not self.optimizer):
            step = self._step = TrainStep(self.model, self.loss_fn, self.optimizer)
        return step

    def _weighted_loss(self, out, yb, wb):
        """Keras's sum_over_batch_size of the weighted per-sample losses, and dL/dout."""
        losses = self._none_loss(out, yb)
        w = wb.astype(losses.dtype).reshape(wb.shape + (1,) * (losses.ndim - 1))
        w = np.broadcast_to(w, losses.shape)
        if not self._sum_reduction:
            w = w / losses.dtype.type(max(losses.size, 1))
        return float((w * losses).sum(dtype=np.float64)), self._none_loss.backward(w)

    def _end_epoch(self, epoch, logs, validation, bs, cbs):
        """Add the validation loss, metrics and gap to ``logs``; run the epoch-end callbacks."""
        if validation is not None:
            for k, v in self._evaluate(*validation, max(256, bs)).items():
                logs["val_" + k] = v
            logs["gap"] = logs["val_loss"] - logs["loss"]
        if self._progress is not None:
            self._progress.done = True
        for cb in cbs:
            cb.on_epoch_end(epoch, logs)

    # ------------------------------------------------------------------ backup and restore
    def _training_state(self):
        """Everything a resumed ``fit`` needs to continue bitwise as if never interrupted (called
        by BackupAndRestore from its hooks, at the end of an epoch or of a batch).

        Returns a nested dict that ``pydl.save`` writes without pickle: the position (``epoch``
        to run next and ``batch``, the batches of it already run, with the epoch's permutation and
        running sums when ``batch > 0``), ``stop_training``, the model's and the optimizer's
        state_dict, every random stream (see :mod:`pydl.train._rng_state`), the History so far,
        and each callback's ``get_state()``.
        """
        if self._fit is None:
            raise RuntimeError("Trainer._training_state: only available during fit")
        for obj, name in ((self.model, "model"), (self.optimizer, "optimizer")):
            if not callable(getattr(obj, "state_dict", None)) or not callable(getattr(obj, "load_state_dict", None)):
                raise TypeError(f"{name}: BackupAndRestore needs state_dict() and load_state_dict(), "
                                f"{type(obj).__name__} has not")
        p = self._progress
        if p is None:
            epoch, batch, progress = self._fit["initial_epoch"], 0, None
        elif p.done or p.batch == 0:
            epoch, batch, progress = p.epoch + (1 if p.done else 0), 0, None
        else:
            epoch, batch, progress = p.epoch, p.batch, p.state()
            if self._dist is not None:   # the sums over the ranks, and each rank's
                self._dist.progress_state(p, progress)
        cbs = [cb for cb in self._fit["callbacks"] if cb is not self.history]
        return {
            "epoch": epoch, "batch": batch, "progress": progress,
            "stop_training": bool(self.stop_training),
            "samples": self._fit["samples"], "batch_size": self._fit["batch_size"],
            "steps": self._fit["steps"],
            "model": {k: np.array(v, copy=True) for k, v in self.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "rng": _rng_state.capture(self._owned_generators()),
            "history": {"epoch": list(self.history.epoch),
                        "history": {k: list(v) for k, v in self.history.history.items()}},
            "callbacks": [{"class": type(cb).__name__, "state": cb.get_state()} for cb in cbs],
        }

    def _restore_training_state(self, state, where="backup"):
        """Put back a :meth:`_training_state` (from ``on_train_begin``); ``fit`` then continues at
        its position. Everything is checked against this run before anything changes."""
        if self._fit is None:
            raise RuntimeError("Trainer._restore_training_state: only available during fit")
        for key in ("samples", "batch_size", "steps"):
            if state[key] != self._fit[key]:
                raise ValueError(f"{where}: was made by a run with {key}={state[key]}, this run has "
                                 f"{key}={self._fit[key]}: not the same training (delete the backup "
                                 "to start afresh)")
        cbs = [cb for cb in self._fit["callbacks"] if cb is not self.history]
        saved_cbs = state["callbacks"]
        names = [type(cb).__name__ for cb in cbs]
        saved_names = [c["class"] for c in saved_cbs]
        if names != saved_names:
            raise ValueError(f"{where}: was made with the callbacks {saved_names}, this run has {names}")
        epoch, batch = int(state["epoch"]), int(state["batch"])
        progress = None
        if batch > 0:
            progress = _EpochProgress.from_state(epoch, batch, state["progress"], len(self.metric_fns))
            if self._dist is not None:
                self._dist.restore_progress(progress, state["progress"])
            if progress.order is not None and np.shape(progress.order) != (self._fit["samples"],):
                raise ValueError(f"{where}: the saved sample order has shape {np.shape(progress.order)}, "
                                 f"expected ({self._fit['samples']},)")
        generators = self._owned_generators()
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        _rng_state.restore(state["rng"], generators, f"{where}['rng']")
        self.history.epoch = list(state["history"]["epoch"])
        self.history.history = {k: list(v) for k, v in state["history"]["history"].items()}
        for cb, saved in zip(cbs, saved_cbs):
            if saved["state"] is not None:
                cb.set_state(saved["state"])
        self.stop_training = bool(state["stop_training"])
        self._resume = progress if progress is not None else _EpochProgress(epoch, None, len(self.metric_fns))

    def _owned_generators(self):
        """Generators of the run other than pydl's global one: those of the transform and loss."""
        return _rng_state.find_generators(self.transform, self.loss_fn)

    def _apply_transform(self, xb, yb):
        res = self.transform(xb, yb)
        if not isinstance(res, tuple) or len(res) != 2:
            raise TypeError("transform: expected t(x, y) to return a tuple (x, y), got "
                            f"{type(res).__name__}")
        xb, yb = res
        dt = self._dtype()
        if xb.dtype != dt:
            xb = xb.astype(dt)
        if yb.dtype.kind == "f" and yb.dtype != dt:
            yb = yb.astype(dt)
        return np.ascontiguousarray(xb), yb

    def _metric(self, fn, y, out):
        if fn is _metrics.accuracy:
            if out.ndim == 2 and out.shape[1] > 1 and y.ndim == 1:     # fast path: class indices
                return np.count_nonzero(out.argmax(axis=1) == y) / out.shape[0]
            return _metrics.accuracy(y, out, self._threshold)
        return float(fn(y, out))

    # ------------------------------------------------------------------ evaluate / predict
    def _evaluate(self, x, y, batch_size):
        """Loss and metrics of checked arrays, in batches, in eval mode without saving state."""
        n = x.shape[0]
        if self._dist is not None:     # rank 0's buffers everywhere; this rank's rows, then sums
            self._dist.sync_buffers(self.model)
            rows = self._dist.local_rows(n)
            x, y = x[rows], y[rows]
        loss_sum = 0.0
        metric_sums = [0.0] * len(self.metric_fns)
        with _inference(self.model):
            for s in range(0, x.shape[0], batch_size):
                xb, yb = x[s:s + batch_size], y[s:s + batch_size]
                nb = xb.shape[0]
                out = self.model(xb)
                for i, (_, fn) in enumerate(self.metric_fns):
                    metric_sums[i] += nb * self._metric(fn, yb, out)
                loss = float(self.loss_fn(out, yb))
                loss_sum += loss if self._sum_reduction else nb * loss
        if self._dist is not None:
            loss_sum, *metric_sums = self._dist.sums([loss_sum] + metric_sums)
        penalty = sum(r.penalty() for r in self.regularizers)
        logs = {"loss": float(loss_sum / n + penalty)}
        for (name, _), s in zip(self.metric_fns, metric_sums):
            logs[name] = float(s / n)
        return logs

    def evaluate(self, x: Array, y: Array, batch_size: int = 256) -> dict[str, float]:
        """Loss and metrics on (x, y), in eval mode under ``pydl.no_grad()``.

        Parameters
        ----------
        x : ndarray of shape (N, ...)
            Any numeric dtype: converted to the model's dtype (as in ``fit``).
        y : ndarray of shape (N,) or (N, k), targets as for ``fit``
        batch_size : int >= 1

        Returns
        -------
        dict
            {"loss": ..., <metric name>: ..., ...}: "loss" is the per-sample mean data loss plus
            the regularizers' current penalty (as Keras); metrics are per-sample means.
        """
        batch_size = _check_batch_size(batch_size)
        for r in self.regularizers:
            r.bind(self.model)
        x, y = self._prepare(x, y)
        self._choose_default_metrics(y)
        return self._evaluate(x, y, batch_size)

    def predict(self, x: Array, batch_size: int = 256) -> Array:
        """Model outputs for x, in eval mode under ``pydl.no_grad()``.

        Parameters
        ----------
        x : ndarray of shape (N, ...)
            Any numeric dtype: converted to the model's dtype (as in ``fit``).
        batch_size : int >= 1

        Returns
        -------
        ndarray of shape (N, ...)
            The model's outputs (logits for classifiers), one row per sample.
        """
        batch_size = _check_batch_size(batch_size)
        x = self._check_x(x, "x")
        with _inference(self.model):
            outs = [np.array(self.model(x[s:s + batch_size]), copy=True) for s in range(0, x.shape[0], batch_size)]
        return outs[0] if len(outs) == 1 else np.concatenate(outs, axis=0)


def _tqdm():
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm


def _format_logs(logs):
    return " - ".join(f"{k}: {v:.4f}" if isinstance(v, float) else f"{k}: {v}" for k, v in logs.items())


def _report_epoch(epoch, epochs, logs, bar, t0):
    """Show the epoch's logs: on its progress bar, or as one printed line."""
    line = _format_logs(logs)
    if bar is not None:
        bar.set_postfix_str(line, refresh=False)
        bar.close()
    else:
        print(f"Epoch {epoch + 1}/{epochs} - {time.perf_counter() - t0:.2f}s - {line}", flush=True)
