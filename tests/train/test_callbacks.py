"""Callbacks: EarlyStopping against hand-worked monitored sequences (Keras 3 semantics), and
TerminateOnNaN, ModelCheckpoint, CSVLogger, LearningRateScheduler inside real fits."""
import csv
import math

import numpy as np
import pytest

import pydl
from pydl.train import Trainer
from pydl.train.callbacks import (Callback, CSVLogger, EarlyStopping, LearningRateScheduler,
                                  ModelCheckpoint, TerminateOnNaN)


class StubModel:
    """A model whose single 'weight' records the epoch at whose end it was read."""

    def __init__(self):
        self.w = np.zeros(1)

    def state_dict(self):
        return {"w": self.w}

    def load_state_dict(self, sd):
        self.w = np.array(sd["w"], copy=True)


class StubTrainer:
    def __init__(self):
        self.model = StubModel()
        self.stop_training = False
        self.metric_fns = []


def drive(cb, values, monitor="val_loss"):
    """Feed ``values`` as logs[monitor] epoch by epoch like Trainer.fit; returns (trainer, epochs run)."""
    tr = StubTrainer()
    cb.set_trainer(tr)
    cb.on_train_begin({})
    run = 0
    for epoch, v in enumerate(values):
        tr.model.w = np.array([float(epoch)])      # "weights after epoch e" = e
        cb.on_epoch_end(epoch, {monitor: v})
        run += 1
        if tr.stop_training:
            break
    cb.on_train_end({})
    return tr, run


@pytest.mark.parametrize("kwargs, values, stopped, best, best_epoch", [
    # patience 0: the first epoch without improvement stops (but never epoch 0)
    (dict(), [1.0, 0.9, 0.95, 0.8], 2, 0.9, 1),
    # patience 2: wait counts 1, 2 after the best at epoch 1
    (dict(patience=2), [1.0, 0.9, 0.95, 0.92, 0.85, 0.7], 3, 0.9, 1),
    # equal is no improvement (strict)
    (dict(patience=1), [1.0, 1.0, 0.5], 1, 1.0, 0),
    # min_delta 0.1: 0.85 improves on 1.0 by 0.15; 0.8 improves on 0.85 by only 0.05
    (dict(min_delta=0.1, patience=1), [1.0, 0.85, 0.8, 0.5], 2, 0.85, 1),
    # min_delta is taken as |min_delta|
    (dict(min_delta=-0.1, patience=1), [1.0, 0.95, 0.5], 1, 1.0, 0),
    # never stops while improving
    (dict(patience=0), [5.0, 4.0, 3.0, 2.0], 0, 2.0, 3),
])
def test_early_stopping_min(kwargs, values, stopped, best, best_epoch):
    cb = EarlyStopping(**kwargs)
    _, run = drive(cb, values)
    assert cb.stopped_epoch == stopped
    assert run == (stopped + 1 if stopped else len(values))
    assert cb.best == best and cb.best_epoch == best_epoch


def test_early_stopping_max_and_auto():
    cb = EarlyStopping(monitor="val_accuracy", mode="max", patience=1, min_delta=0.05)
    drive(cb, [0.5, 0.6, 0.62, 0.9], "val_accuracy")       # 0.62 - 0.05 > 0.6 is false -> stop at 2
    assert cb.stopped_epoch == 2 and cb.best == 0.6
    auto = EarlyStopping(monitor="val_accuracy", patience=1)  # auto: accuracy is maximized
    drive(auto, [0.5, 0.6, 0.55, 0.9], "val_accuracy")
    assert auto.stopped_epoch == 2 and auto.best == 0.6
    loss = EarlyStopping(monitor="loss", mode="auto", patience=1)  # auto: loss is minimized
    drive(loss, [0.5, 0.6, 0.4], "loss")
    assert loss.stopped_epoch == 1
    forced_min = EarlyStopping(monitor="val_accuracy", mode="min", patience=1)
    drive(forced_min, [0.5, 0.6, 0.4], "val_accuracy")
    assert forced_min.stopped_epoch == 1
    with pytest.raises(ValueError, match="mode='max' or mode='min'"):
        drive(EarlyStopping(monitor="val_f1"), [0.5], "val_f1")
    with pytest.raises(ValueError, match="mode"):
        EarlyStopping(mode="up")


def test_early_stopping_baseline():
    # improving but never beating the baseline: wait is not reset, stops once patience is exceeded
    cb = EarlyStopping(baseline=0.5, patience=2)
    drive(cb, [1.0, 1.1, 1.2, 0.1])
    assert cb.stopped_epoch == 1 and cb.best == 1.0
    plain = EarlyStopping(patience=2)
    drive(plain, [1.0, 1.1, 1.2, 0.1])
    assert plain.stopped_epoch == 2
    # an improvement returns before the patience check, even above the baseline
    cb = EarlyStopping(baseline=0.5, patience=1)
    _, run = drive(cb, [1.0, 0.9, 0.8, 0.7])
    assert run == 4 and cb.stopped_epoch == 0 and cb.wait == 4
    # beating the baseline resets wait
    cb = EarlyStopping(baseline=0.5, patience=2)
    drive(cb, [0.4, 0.45, 0.46, 0.47])
    assert cb.stopped_epoch == 2 and cb.best == 0.4


def test_early_stopping_restore_best_weights():
    # with early stop: best epoch 1
    cb = EarlyStopping(patience=1, restore_best_weights=True)
    tr, _ = drive(cb, [1.0, 0.5, 0.7, 0.4])
    assert cb.stopped_epoch == 2 and tr.model.w[0] == 1.0
    # without early stop: restored anyway at the end of training (Keras 3)
    cb = EarlyStopping(patience=5, restore_best_weights=True)
    tr, run = drive(cb, [1.0, 0.5, 0.7, 0.6])
    assert run == 4 and cb.stopped_epoch == 0 and tr.model.w[0] == 1.0
    # no restore requested: the last weights stay
    cb = EarlyStopping(patience=1)
    tr, _ = drive(cb, [1.0, 0.5, 0.7, 0.4])
    assert tr.model.w[0] == 2.0 and cb.best_weights is None


def test_early_stopping_start_from_epoch():
    cb = EarlyStopping(patience=1, start_from_epoch=2, restore_best_weights=True)
    tr, _ = drive(cb, [0.1, 0.2, 1.0, 1.1, 1.2])
    assert cb.stopped_epoch == 3 and cb.best == 1.0 and tr.model.w[0] == 2.0
    plain = EarlyStopping(patience=1)
    drive(plain, [0.1, 0.2, 1.0, 1.1, 1.2])
    assert plain.stopped_epoch == 1


def test_early_stopping_missing_monitor_warns():
    cb = EarlyStopping(monitor="val_loss")
    with pytest.warns(RuntimeWarning, match="val_loss"):
        tr, run = drive(cb, [1.0, 2.0, 3.0], monitor="loss")
    assert run == 3 and not tr.stop_training


def test_early_stopping_reusable():
    cb = EarlyStopping(patience=1)
    drive(cb, [0.1, 0.2])
    drive(cb, [5.0, 4.0, 4.5])
    assert cb.stopped_epoch == 2 and cb.best == 4.0


def test_early_stopping_in_fit(stubs, blobs):
    x, y = blobs
    model = stubs.LinearModel(4, 3)
    losses = iter([1.0, 0.8, 0.9, 0.95, 0.5, 0.4])

    class FakeVal(Callback):          # overrides val_loss with a given sequence before EarlyStopping
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = next(losses)

    es = EarlyStopping(patience=2, restore_best_weights=True)
    keep = []

    class Snap(Callback):
        def on_epoch_end(self, epoch, logs=None):
            keep.append(self.model.state_dict())

    tr = Trainer(model, stubs.CrossEntropyLoss(), stubs.SGD(model.parameters()),
                 callbacks=[FakeVal(), Snap(), es])
    hist = tr.fit(x, y, epochs=6, batch_size=20, verbose=0)
    assert hist.epoch == [0, 1, 2, 3] and es.stopped_epoch == 3 and es.best_epoch == 1
    assert np.array_equal(model.weight.data, keep[1]["weight"])


def test_terminate_on_nan_keeps_last_finite_weights(stubs, blobs):
    x, y = blobs
    model = stubs.LinearModel(4, 3)
    inner = stubs.CrossEntropyLoss()
    calls = {"n": 0}

    class FlakyLoss:
        reduction = "mean"

        def __call__(self, pred, target):
            calls["n"] += 1
            v = inner(pred, target)
            return math.nan if calls["n"] == 5 else v

        def backward(self):
            return inner.backward() * np.nan if calls["n"] == 5 else inner.backward()

    before = []

    class Record(Callback):
        def on_batch_begin(self, batch, logs=None):
            before.append(self.model.state_dict())

    term = TerminateOnNaN(verbose=0)
    tr = Trainer(model, FlakyLoss(), stubs.SGD(model.parameters()), callbacks=[Record(), term])
    hist = tr.fit(x, y, epochs=3, batch_size=20, shuffle=False, verbose=0)
    # 3 batches per epoch: the 5th step is epoch 1, batch 1
    assert term.terminated_batch == (1, 1) and len(before) == 5
    assert np.array_equal(model.weight.data, before[4]["weight"])
    assert np.all(np.isfinite(model.weight.data)) and len(hist.epoch) == 2
    assert math.isnan(hist.history["loss"][1])


def test_csv_logger(stubs, blobs, tmp_path):
    x, y = blobs
    path = tmp_path / "log.csv"
    model = stubs.LinearModel(4, 3)
    tr = Trainer(model, stubs.CrossEntropyLoss(), stubs.SGD(model.parameters()),
                 callbacks=[CSVLogger(path)])
    hist = tr.fit(x, y, epochs=3, batch_size=20, validation_split=0.25, verbose=0)
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["epoch", "accuracy", "gap", "loss", "val_accuracy", "val_loss"]
    assert [r[0] for r in rows[1:]] == ["0", "1", "2"]
    assert [float(r[3]) for r in rows[1:]] == pytest.approx(hist.history["loss"], rel=1e-12)
    tr2 = Trainer(model, stubs.CrossEntropyLoss(), stubs.SGD(model.parameters()),
                  callbacks=[CSVLogger(path, separator=";", append=True)])
    tr2.fit(x, y, epochs=2, batch_size=20, validation_split=0.25, verbose=0)
    lines = path.read_text().splitlines()
    assert len(lines) == 6 and lines[4].startswith("0;") and lines[5].startswith("1;")


def test_model_checkpoint(stubs, blobs, tmp_path, monkeypatch):
    x, y = blobs
    saved = []
    monkeypatch.setattr(pydl._io, "save", lambda obj, path: saved.append((path, obj.state_dict())))
    model = stubs.LinearModel(4, 3)
    vals = iter([1.0, 0.5, 0.7, 0.4, 0.6])

    class FakeVal(Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = next(vals)

    best = ModelCheckpoint(str(tmp_path / "best-{epoch:02d}-{val_loss:.1f}.npz"), save_best_only=True)
    every = ModelCheckpoint(tmp_path / "sub" / "e{epoch}.npz")
    tr = Trainer(model, stubs.CrossEntropyLoss(), stubs.SGD(model.parameters()),
                 callbacks=[FakeVal(), best, every])
    tr.fit(x, y, epochs=5, batch_size=30, verbose=0)
    best_paths = [p for p, _ in saved if "best-" in p]
    assert [p.rsplit("/", 1)[1] for p in best_paths] == ["best-01-1.0.npz", "best-02-0.5.npz", "best-04-0.4.npz"]
    assert [p.rsplit("/", 1)[1] for p, _ in saved if "/sub/" in p] == [f"e{i}.npz" for i in range(1, 6)]
    assert best.best == 0.4 and best.last_saved == best_paths[-1]
    assert np.array_equal(saved[-1][1]["weight"], model.weight.data)


class FakeStepLR:
    """lr *= gamma every step() (the protocol of optim.lr_scheduler)."""

    def __init__(self, optimizer, gamma):
        self.optimizer, self.gamma, self.calls = optimizer, gamma, 0

    def step(self):
        self.calls += 1
        for g in self.optimizer.param_groups:
            g["lr"] *= self.gamma


class ReduceLROnPlateau:
    def __init__(self):
        self.seen = []

    def step(self, metrics):
        self.seen.append(metrics)


def test_learning_rate_scheduler(stubs, blobs):
    x, y = blobs
    model = stubs.LinearModel(4, 3)
    opt = stubs.SGD(model.parameters(), lr=0.1)
    sched = FakeStepLR(opt, 0.5)
    tr = Trainer(model, stubs.CrossEntropyLoss(), opt, callbacks=[LearningRateScheduler(sched)])
    hist = tr.fit(x, y, epochs=3, batch_size=30, verbose=0)
    assert sched.calls == 3 and hist.history["learning_rate"] == pytest.approx([0.1, 0.05, 0.025])
    plateau = ReduceLROnPlateau()
    tr = Trainer(model, stubs.CrossEntropyLoss(), opt,
                 callbacks=[LearningRateScheduler(plateau, monitor="val_loss")])
    hist = tr.fit(x, y, epochs=2, batch_size=30, validation_split=0.5, verbose=0)
    assert plateau.seen == hist.history["val_loss"]
    keras_style = LearningRateScheduler(lambda epoch, lr: 0.2 / (epoch + 1))
    tr = Trainer(model, stubs.CrossEntropyLoss(), opt, callbacks=[keras_style])
    hist = tr.fit(x, y, epochs=2, batch_size=30, verbose=0)
    assert hist.history["learning_rate"] == pytest.approx([0.2, 0.1]) and opt.param_groups[0]["lr"] == 0.1
    with pytest.raises(ValueError, match="ReduceLROnPlateau needs"):
        Trainer(model, stubs.CrossEntropyLoss(), opt,
                callbacks=[LearningRateScheduler(ReduceLROnPlateau())]).fit(x, y, epochs=1, verbose=0)
