"""Callbacks for ``Trainer.fit``, with Keras's hook names and semantics.

Hooks: ``on_train_begin(logs)``, ``on_epoch_begin(epoch, logs)``, ``on_batch_begin(batch, logs)``,
``on_batch_end(batch, logs)``, ``on_epoch_end(epoch, logs)``, ``on_train_end(logs)``; epochs and
batches count from 0. Before training the Trainer sets ``callback.trainer``; ``callback.model``
is ``trainer.model``. Setting ``trainer.stop_training = True`` ends training after the current
batch (from a batch hook) or epoch.

Epoch logs hold "loss", the metrics, and with validation "val_loss", "val_<metric>" and "gap".
Batch logs hold "size" (samples in the batch) and "loss" (the batch's training objective) at
``on_batch_end``.

Data-parallel training (``Trainer(..., distributed=True)``): every rank runs every callback, with
the same logs (sums over the ranks); ModelCheckpoint, CSVLogger and BackupAndRestore write files
from rank 0 only (``trainer.is_root``), and a BackupAndRestore's backup is read on rank 0 and
sent to the others.

State for BackupAndRestore: a callback whose behaviour depends on earlier epochs or batches
returns that state from ``get_state()`` (nested dicts with str keys, lists, tuples, numbers,
strs, None and arrays: what ``pydl.save`` writes) and takes it back in ``set_state(state)``,
which a resumed run calls after every ``on_train_begin``. The callbacks here all do.
"""
from __future__ import annotations

import csv
import inspect
import io
import math
import numbers
import os
import warnings
from typing import Any

import numpy as np

from . import metrics as _metrics

#: the logs handed to the hooks (the callbacks may add entries)
Logs = dict[str, Any]


class Callback:
    """Base class: every hook does nothing."""

    trainer: Any = None             # the Trainer running this callback (set by ``set_trainer``)

    @property
    def model(self) -> Any:
        return None if self.trainer is None else self.trainer.model

    def set_trainer(self, trainer: Any) -> None:
        self.trainer = trainer

    def on_train_begin(self, logs: Logs | None = None) -> None: pass
    def on_train_end(self, logs: Logs | None = None) -> None: pass
    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None: pass
    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None: pass
    def on_batch_begin(self, batch: int, logs: Logs | None = None) -> None: pass
    def on_batch_end(self, batch: int, logs: Logs | None = None) -> None: pass

    def get_state(self) -> Any:
        """The callback's state for a :class:`BackupAndRestore` backup, or None (the default:
        no state). Override it, with :meth:`set_state`, when the callback's behaviour depends on
        earlier epochs or batches; return nested dicts (str keys), lists, tuples, numbers, strs,
        None and arrays, copied (the backup may be written later)."""
        return None

    def set_state(self, state: Any) -> None:
        """Take back a :meth:`get_state` result; a resumed run calls it after ``on_train_begin``."""


def _writes_files(callback):
    """False on the ranks of a distributed Trainer that must not write files (all but rank 0)."""
    return getattr(callback.trainer, "is_root", True)


def _copy_state(model):
    return {k: np.array(v, copy=True) for k, v in model.state_dict().items()}


def _monitor_op(monitor, mode, trainer, who):
    """Return +1 when larger is better, -1 when smaller is better (mode 'min'/'max'/'auto')."""
    if mode == "min":
        return -1
    if mode == "max":
        return 1
    fn = None
    if trainer is not None:
        base = monitor[4:] if monitor.startswith("val_") else monitor
        fn = dict(getattr(trainer, "metric_fns", ())).get(base)
    d = _metrics.direction(monitor, fn)
    if d is None:
        raise ValueError(f"{who}: cannot tell whether monitor={monitor!r} should be maximized or "
                         f"minimized; pass mode='max' or mode='min'")
    return 1 if d == "up" else -1


class _MonitorCallback(Callback):
    """A callback that watches ``logs[monitor]``. Its direction ``_sign`` (+1 when larger is
    better, -1 when smaller is) is settled on first use, once the trainer's metrics are known."""

    _who = "Callback"          # the public class name, for messages

    def __init__(self, monitor: str, mode: str, verbose: int) -> None:
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"{self._who}: mode must be 'auto', 'min' or 'max', got {mode!r}")
        self.monitor = monitor
        self.mode = mode
        self.verbose = verbose
        self._sign: Any = None       # +1 / -1 once settled
        self.best: Any = None        # the best monitored value so far (a float once settled)

    def _settle_direction(self):
        """Set ``_sign`` and start ``best`` at the worst value, once."""
        if self._sign is None:
            self._sign = _monitor_op(self.monitor, self.mode, self.trainer, self._who)
            self.best = -self._sign * math.inf

    def _monitored(self, logs, otherwise):
        """``logs[monitor]``, or None after a RuntimeWarning that ends with ``otherwise``."""
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"{self._who}: monitor {self.monitor!r} is not in the logs; {otherwise}",
                          RuntimeWarning, stacklevel=3)
        return current


class EarlyStopping(_MonitorCallback):
    """Stop training when a monitored quantity has stopped improving (Keras 3 semantics).

    At the end of every epoch ``e >= start_from_epoch`` where ``logs[monitor]`` exists:
    ``wait += 1``; the value is an improvement when it beats ``best`` by more than ``min_delta``
    in the monitored direction (``current + min_delta < best`` for 'min', ``current - min_delta
    > best`` for 'max'; ``best`` starts at +inf / -inf). On improvement ``best`` and
    ``best_epoch`` are updated and ``wait`` resets to 0 -- but only if the value also improves on
    ``baseline`` (when given). Otherwise, if ``wait >= patience`` and ``e > 0``, training stops
    and ``stopped_epoch = e``.

    With ``restore_best_weights`` the model state (parameters and buffers) of the best epoch is
    restored at the end of training, also when training was not stopped early (Keras 3). If no
    epoch improved on the first considered one, its weights are those restored.

    ``mode="auto"`` infers the direction from the monitored name: losses and errors go down,
    accuracy goes up; otherwise a ValueError asks for mode='min' or 'max'. Unlike Keras, ``best``
    is also reset at ``on_train_begin``, so one instance can serve several fits.
    """

    _who = "EarlyStopping"

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0, patience: int = 0, mode: str = "auto",
                 baseline: float | None = None, restore_best_weights: bool = False, start_from_epoch: int = 0,
                 verbose: int = 0) -> None:
        super().__init__(monitor, mode, verbose)
        if patience < 0:
            raise ValueError(f"patience: expected >= 0, got {patience}")
        self.min_delta = abs(min_delta)
        self.patience = patience
        self.baseline = baseline
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = start_from_epoch
        self.on_train_begin()

    def _improves(self, current, reference):
        # Keras: op(current - signed_delta, reference), signed_delta = +min_delta ('max'), -min_delta ('min')
        if self._sign > 0:
            return current - self.min_delta > reference
        return current + self.min_delta < reference

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.wait = 0
        self.stopped_epoch = 0
        self.best_epoch = 0
        self.best_weights: dict[str, np.ndarray] | None = None
        self.best = None if self._sign is None else -self._sign * math.inf

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        self._settle_direction()
        logs = logs or {}
        current = self._monitored(logs, f"available: {', '.join(logs)}")
        if current is None:
            return
        if epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = _copy_state(self.model)
            self.best_epoch = epoch
        self.wait += 1
        if self._improves(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = _copy_state(self.model)
            if self.baseline is None or self._improves(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.trainer.stop_training = True

    def get_state(self) -> Any:
        return {"wait": self.wait, "stopped_epoch": self.stopped_epoch, "best_epoch": self.best_epoch,
                "best": self.best, "sign": self._sign,
                "best_weights": None if self.best_weights is None else
                {k: np.array(v, copy=True) for k, v in self.best_weights.items()}}

    def set_state(self, state: Any) -> None:
        self.wait, self.stopped_epoch = state["wait"], state["stopped_epoch"]
        self.best_epoch, self.best, self._sign = state["best_epoch"], state["best"], state["sign"]
        bw = state["best_weights"]
        self.best_weights = None if bw is None else {k: np.array(v, copy=True) for k, v in bw.items()}

    def on_train_end(self, logs: Logs | None = None) -> None:
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.load_state_dict(self.best_weights)


class ModelCheckpoint(_MonitorCallback):
    """Save the model with ``pydl.save`` at the end of every epoch (or only when it improves).

    ``filepath`` may hold format fields: ``{epoch}`` (counted from 1, as Keras) and any key of the
    epoch logs, e.g. ``"ckpt-{epoch:02d}-{val_loss:.3f}.npz"``. With ``save_best_only`` the model
    is saved only when ``logs[monitor]`` is better than every earlier value (strictly, in the
    direction given by ``mode``); ``best`` holds that value. ``last_saved`` is the last path.

    Parameters
    ----------
    filepath : str or os.PathLike
    monitor : str, default "val_loss"
    save_best_only : bool, default False
    mode : {"auto", "min", "max"}
    verbose : int, default 0
    save_optimizer : bool, default False
        False: the file holds the model's ``state_dict()`` (an ordinary ``.npz``). True: it holds
        ``{"model": model.state_dict(), "optimizer": optimizer.state_dict()}`` (nested, still no
        pickle), and :func:`pydl.train.load_checkpoint` ``(path, model, optimizer)`` restores
        both, to continue training with the optimizer's moments and step counts.
    """

    _who = "ModelCheckpoint"

    def __init__(self, filepath: str | os.PathLike[str], monitor: str = "val_loss", save_best_only: bool = False,
                 mode: str = "auto", verbose: int = 0, save_optimizer: bool = False) -> None:
        super().__init__(monitor, mode, verbose)
        self.filepath = os.fspath(filepath)
        self.save_best_only = save_best_only
        if not isinstance(save_optimizer, (bool, np.bool_)):
            raise TypeError(f"save_optimizer: expected a bool, got {type(save_optimizer).__name__}")
        self.save_optimizer = bool(save_optimizer)
        self.last_saved: str | None = None

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self._settle_direction()
        if self.save_optimizer and not callable(getattr(self.trainer.optimizer, "state_dict", None)):
            raise TypeError("save_optimizer: the optimizer "
                            f"({type(self.trainer.optimizer).__name__}) has no state_dict()")

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        from .. import _io
        logs = logs or {}
        path = self.filepath.format(epoch=epoch + 1, **logs)
        if self.save_best_only:
            current = self._monitored(logs, "skipping")
            if current is None:
                return
            if not (current > self.best if self._sign > 0 else current < self.best):
                return
            self.best = current
        self.last_saved = path
        if not _writes_files(self):
            return
        d = os.path.dirname(path)
        if d:
            os.makedirs(d, exist_ok=True)
        if self.save_optimizer:
            _io.save({"model": self.model.state_dict(), "optimizer": self.trainer.optimizer.state_dict()}, path)
        else:
            _io.save(self.model, path)
        if self.verbose > 0:
            print(f"Epoch {epoch + 1}: saved model to {path}")

    def get_state(self) -> Any:
        return {"best": self.best, "sign": self._sign, "last_saved": self.last_saved}

    def set_state(self, state: Any) -> None:
        self.best, self._sign, self.last_saved = state["best"], state["sign"], state["last_saved"]


def _step_needs_metric(scheduler):
    """True when ``scheduler.step`` requires the monitored value, as ReduceLROnPlateau's ``step(metrics)``."""
    try:
        params = inspect.signature(scheduler.step).parameters.values()
    except (AttributeError, TypeError, ValueError):
        return False
    return any(p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)


class LearningRateScheduler(Callback):
    """Step a learning-rate scheduler at the end of every epoch, or of every batch.

    ``scheduler`` is a ``pydl.optim.lr_scheduler`` object (PyTorch semantics): ``scheduler.step()``
    is called, or ``scheduler.step(logs[monitor])`` when ``step`` requires that value (as
    ``ReduceLROnPlateau``, epochs only). A plain callable
    ``schedule(epoch, lr) -> lr`` (Keras style) is accepted too: it sets the learning rate of every
    parameter group at the beginning of each epoch. The epoch logs gain "learning_rate" (the
    learning rate of the first parameter group when the epoch began).

    Parameters
    ----------
    scheduler : scheduler object or callable
    monitor : str, default "val_loss"
        The value handed to a scheduler whose ``step`` needs one.
    interval : {"epoch", "batch"}, default "epoch"
        "batch" steps the scheduler after every batch, after the optimizer step, as PyTorch
        runs ``OneCycleLR`` or a warmup counted in iterations; the batch logs then gain
        "learning_rate" (the rate that batch was trained with). A scheduler with a
        ``total_steps`` (``OneCycleLR``) is checked at the start of ``fit``: it must last for the
        steps the fit will take, and a schedule sized in batches must step per batch.
    """

    def __init__(self, scheduler: Any, monitor: str = "val_loss", interval: str = "epoch") -> None:
        if interval not in ("epoch", "batch"):
            raise ValueError(f"interval: expected 'epoch' or 'batch', got {interval!r}")
        self.scheduler = scheduler
        self.monitor = monitor
        self.interval = interval
        self._plateau = _step_needs_metric(scheduler)
        self._keras_style = not hasattr(scheduler, "step")
        if self._keras_style and not callable(scheduler):
            raise TypeError("scheduler: expected an optim.lr_scheduler object or a callable "
                            f"schedule(epoch, lr), got {type(scheduler).__name__}")
        if interval == "batch" and (self._plateau or self._keras_style):
            what = "a Keras-style schedule(epoch, lr)" if self._keras_style else type(scheduler).__name__
            raise ValueError(f"interval='batch': {what} steps once per epoch; use interval='epoch' "
                             "(Trainer: scheduler_interval='epoch')")

    def _groups(self):
        return self.trainer.optimizer.param_groups

    def on_train_begin(self, logs: Logs | None = None) -> None:
        total = getattr(self.scheduler, "total_steps", None)
        fit = getattr(self.trainer, "_fit", None)
        if not isinstance(total, int) or not isinstance(fit, dict):
            return
        epochs, steps = fit["epochs"] - fit["initial_epoch"], fit["steps"]
        planned = epochs * steps if self.interval == "batch" else epochs
        left = total - self.scheduler.last_epoch
        name = type(self.scheduler).__name__
        if self.interval == "epoch" and steps > 1 and total == epochs * steps:
            raise ValueError(f"{name}(total_steps={total}) counts the {epochs} x {steps} batches of this fit but "
                             "would step once per epoch: pass scheduler_interval='batch' to the Trainer (or "
                             "interval='batch' to LearningRateScheduler)")
        if planned > left:
            unit = f"batches ({epochs} epochs x {steps})" if self.interval == "batch" else "epochs"
            build = f"epochs={epochs}, steps_per_epoch={steps}" if self.interval == "batch" else f"total_steps={epochs}"
            raise ValueError(f"{name}: {left} of its total_steps={total} are left, this fit steps it {planned} "
                             f"times, once per {self.interval} ({planned} {unit}); build it with {build}")

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        if self._keras_style:
            lr = float(self.scheduler(epoch, float(self._groups()[0]["lr"])))
            for g in self._groups():
                g["lr"] = lr
        self._lr = float(self._groups()[0]["lr"])

    def on_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        if self.interval != "batch":
            return
        if logs is not None:
            logs["learning_rate"] = float(self._groups()[0]["lr"])
        self.scheduler.step()

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        if logs is not None:
            logs["learning_rate"] = self._lr
        if self._keras_style or self.interval == "batch":
            return
        if self._plateau:
            current = (logs or {}).get(self.monitor)
            if current is None:
                raise ValueError(f"LearningRateScheduler: ReduceLROnPlateau needs logs[{self.monitor!r}], "
                                 f"available: {', '.join(logs or {})}")
            self.scheduler.step(current)
        else:
            self.scheduler.step()

    def get_state(self) -> Any:
        sd = getattr(self.scheduler, "state_dict", None)
        return {"lr": getattr(self, "_lr", None),
                "scheduler": sd() if callable(sd) and not self._keras_style else None}

    def set_state(self, state: Any) -> None:
        if state["lr"] is not None:
            self._lr = state["lr"]
        if state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])


class TerminateOnNaN(Callback):
    """Stop training when a batch loss is NaN or infinite, keeping the last finite weights.

    The model state (parameters and buffers) is copied before every training step; when the step's
    loss is not finite, that copy -- the weights that were in place before the failing step -- is
    loaded back and training stops. ``terminated_batch`` holds (epoch, batch) or None.
    """

    def __init__(self, verbose: int = 1) -> None:
        self.verbose = verbose
        self.terminated_batch: tuple[int, int] | None = None
        self._snapshot: dict[str, np.ndarray] = {}
        self._epoch = 0

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.terminated_batch = None
        self._snapshot = _copy_state(self.model)

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        self._epoch = epoch

    def on_batch_begin(self, batch: int, logs: Logs | None = None) -> None:
        for k, v in self.model.state_dict().items():
            np.copyto(self._snapshot[k], v)

    def on_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            self.model.load_state_dict(self._snapshot)
            self.terminated_batch = (self._epoch, batch)
            self.trainer.stop_training = True
            if self.verbose:
                print(f"TerminateOnNaN: non-finite loss ({loss}) at epoch {self._epoch} batch {batch}; "
                      "training stopped, weights from before that step restored.")

    def get_state(self) -> Any:
        return {"terminated_batch": self.terminated_batch, "epoch": self._epoch}

    def set_state(self, state: Any) -> None:
        tb = state["terminated_batch"]
        self.terminated_batch = None if tb is None else tuple(tb)
        self._epoch = state["epoch"]


class CSVLogger(Callback):
    """Write one CSV row per epoch: ``epoch`` (from 0) then the log keys in sorted order (Keras).

    With ``append=True`` rows are added to an existing file (no second header). Every row is
    flushed. A run resumed by :class:`BackupAndRestore` rewrites the file as it was at the
    backup (what preceded this training, then the header and rows written up to the backup), so
    it ends byte-identical to the file of an uninterrupted run.
    """

    def __init__(self, filename: str | os.PathLike[str], separator: str = ",", append: bool = False) -> None:
        self.filename = os.fspath(filename)
        self.separator = separator
        self.append = append
        self._file: Any = None
        self._writer: Any = None
        self._keys: list[str] | None = None
        self._start = 0          # size of the file before this training (append) or 0
        self._text: list[str] = []          # what this training has written, in order
        self._buffer = io.StringIO(newline="")
        self._writes = True      # False on the ranks of a distributed Trainer other than 0

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self._writes = _writes_files(self)
        if not self._writes:
            return
        has_rows = self.append and os.path.exists(self.filename) and os.path.getsize(self.filename) > 0
        self._write_header = not has_rows
        self._start = os.path.getsize(self.filename) if has_rows else 0
        self._text = []
        self._file = open(self.filename, "a" if self.append else "w", newline="")
        self._writer = self._keys = None

    def _new_writer(self):
        self._writer = csv.DictWriter(self._buffer, fieldnames=["epoch"] + self._keys,
                                      delimiter=self.separator)

    def _emit(self):
        """Write what the csv writer put in the buffer to the file (flushed), and remember it."""
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        self._file.write(text)
        self._file.flush()
        self._text.append(text)

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        if not self._writes:
            return
        logs = dict(logs or {})
        if self._keys is None:
            self._keys = sorted(logs)
            self._new_writer()
            if self._write_header:
                self._writer.writeheader()
        row = {"epoch": epoch}
        row.update({k: logs.get(k, "NA") for k in self._keys})
        self._writer.writerow(row)
        self._emit()

    def on_train_end(self, logs: Logs | None = None) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def get_state(self) -> Any:
        return {"start": self._start, "text": "".join(self._text), "keys": self._keys,
                "write_header": self._write_header}

    def set_state(self, state: Any) -> None:
        if not self._writes:
            return
        if self._file is not None:
            self._file.close()
        start, text = int(state["start"]), state["text"]
        with open(self.filename, "a"):
            pass                                   # create it if it is missing
        if os.path.getsize(self.filename) >= start:
            os.truncate(self.filename, start)      # drop rows written after the backup
        self._file = open(self.filename, "a", newline="")
        self._file.write(text)
        self._file.flush()
        self._start, self._text = start, [text]
        self._keys = None if state["keys"] is None else list(state["keys"])
        self._write_header = state["write_header"]
        if self._keys is not None:
            self._new_writer()


class BackupAndRestore(Callback):
    """Back up the training state, and restore it when a killed run is started again (Keras 3).

    A run killed at any moment (SIGKILL mid-epoch, during a backup write, at an epoch end) and
    started again with the same script continues from the last backup and ends with bitwise the
    weights, optimizer state, ``history.history`` and callbacks' outputs of a run that was never
    interrupted.

    Parameters
    ----------
    backup_dir : str or os.PathLike
        Directory of the backup (created when needed). The backup is one file,
        ``<backup_dir>/backup.npz``, written atomically with ``pydl.save`` (a kill during a write
        leaves the previous backup intact). Use one directory per training run.
    save_freq : "epoch" or int >= 1
        "epoch": back up at the end of every epoch. An int k: back up after every k-th training
        batch (counted across epochs, as Keras), and nowhere else; a resumed run continues in the
        middle of the epoch, from the batch after the backup, bitwise as if never interrupted.
    delete_checkpoint : bool, default True
        Delete the backup when training finishes (``on_train_end``: all epochs run, or stopped by
        a callback). A run that raises leaves it in place. Unlike Keras, which removes
        ``backup_dir`` recursively, only the backup file (and temporaries of killed writes) is
        removed, then ``backup_dir`` if it is left empty.

    Attributes
    ----------
    path : str
        The backup file.
    restored : dict or None
        After ``on_train_begin``: ``{"epoch": e, "batch": b}`` when the run was restored from a
        backup (it continues with batch b of epoch e; b = 0 at an epoch boundary), else None.

    Notes
    -----
    The backup holds, in one nested file (no pickle): the position (next epoch, batches of it
    already run, that epoch's sample order and running loss / metric sums), ``stop_training``,
    the model's ``state_dict()`` (parameters and buffers), the optimizer's ``state_dict()``, the
    state of every random stream (pydl's global generator, which also seeds dropout, numpy's
    legacy global state, Python's ``random``, and generators owned by the transform or the loss,
    such as a transform's own seed), the History so far, and the ``get_state()`` of every other
    callback (EarlyStopping with its best weights, LearningRateScheduler with its scheduler,
    ModelCheckpoint, TerminateOnNaN, CSVLogger, and user callbacks that define it).

    The Trainer runs this callback after all others, so a backup sees their state at the end of
    the epoch (or batch), and the restore at ``on_train_begin`` follows their own
    ``on_train_begin``. When a run resumes mid-epoch, ``on_epoch_begin`` is not called again for
    that epoch (it ran before the backup; its effects are in the restored state). The resumed
    run must be the same training: same data size, batch size and callbacks (checked: a
    ValueError names the difference), same model, optimizer and transforms. A run killed before
    its first backup simply starts again from the beginning. Callbacks without ``get_state``
    keep no state across the restart; a CSVLogger with ``append=True`` killed before the first
    backup repeats its rows.
    """

    FILENAME = "backup.npz"
    _FORMAT = "pydl-backup"
    _VERSION = 1

    def __init__(self, backup_dir: str | os.PathLike[str], save_freq: str | int = "epoch",
                 delete_checkpoint: bool = True) -> None:
        if not isinstance(backup_dir, (str, os.PathLike)):
            raise TypeError(f"backup_dir: expected a str or os.PathLike, got {type(backup_dir).__name__}")
        backup_dir = os.fspath(backup_dir)
        if not backup_dir:
            raise ValueError("backup_dir: empty path")
        if save_freq != "epoch" and (isinstance(save_freq, (bool, np.bool_)) or
                                     not isinstance(save_freq, numbers.Integral) or save_freq < 1):
            raise ValueError(f"save_freq: expected 'epoch' or an int >= 1 (batches), got {save_freq!r}")
        if not isinstance(delete_checkpoint, (bool, np.bool_)):
            raise TypeError(f"delete_checkpoint: expected a bool, got {type(delete_checkpoint).__name__}")
        self.backup_dir = backup_dir
        self.save_freq = save_freq if save_freq == "epoch" else int(save_freq)
        self.delete_checkpoint = bool(delete_checkpoint)
        self.path = os.path.join(backup_dir, self.FILENAME)
        self.restored: dict[str, int] | None = None
        self._batches_since_save = 0

    def _trainer_supports_backup(self):
        if not callable(getattr(self.trainer, "_training_state", None)):
            raise TypeError("BackupAndRestore: needs a pydl.train.Trainer, got "
                            f"{type(self.trainer).__name__}")

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self._trainer_supports_backup()
        self.restored = None
        self._batches_since_save = 0
        backup = self._read()
        if backup is None:
            return
        if (not isinstance(backup, dict) or backup.get("format") != self._FORMAT
                or "training" not in backup):
            raise ValueError(f"backup: {self.path!r} is not a BackupAndRestore backup")
        if backup.get("version") != self._VERSION:
            raise ValueError(f"backup: {self.path!r} has version {backup.get('version')!r}; this pydl "
                             f"reads version {self._VERSION}")
        training = backup["training"]
        self.trainer._restore_training_state(training, where=f"backup {self.path!r}")
        self.restored = {"epoch": int(training["epoch"]), "batch": int(training["batch"])}

    def on_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        if isinstance(self.save_freq, str):            # "epoch"
            return
        self._batches_since_save += 1
        if self._batches_since_save >= self.save_freq:
            self._batches_since_save = 0
            self._backup()

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        if self.save_freq == "epoch":
            self._backup()

    def on_train_end(self, logs: Logs | None = None) -> None:
        if self.delete_checkpoint:
            self._delete()

    def _read(self):
        """The backup (nested dict), or None when there is none. A distributed Trainer reads it
        on rank 0 and sends it to the other ranks."""
        from .. import _io
        dist = getattr(self.trainer, "_dist", None)
        backup = None
        if dist is None or dist.root:
            backup = _io.load(self.path) if os.path.exists(self.path) else None
        return backup if dist is None else dist.bcast(backup)

    def _backup(self):
        """Write the trainer's state to :attr:`path`, atomically (rank 0 only when distributed)."""
        from .. import _io
        state = {"format": self._FORMAT, "version": self._VERSION,
                 "training": self.trainer._training_state()}
        if not _writes_files(self):
            return
        os.makedirs(self.backup_dir, exist_ok=True)
        _io.save(state, self.path)

    def _delete(self):
        from .. import _io
        if not _writes_files(self):
            return
        try:
            os.remove(self.path)
        except FileNotFoundError:
            pass
        _io._remove_stale_temporaries(self.backup_dir, self.FILENAME)
        try:
            os.rmdir(self.backup_dir)     # only if empty
        except OSError:
            pass
