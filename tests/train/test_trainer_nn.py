"""The Trainer with the real pydl.nn / pydl.optim / pydl.data pieces."""
import numpy as np
import pytest

import pydl
from pydl import data, nn, optim
from pydl.testing import assert_close
from pydl.train import L2, Trainer
from pydl.train.callbacks import EarlyStopping, LearningRateScheduler, ModelCheckpoint, TerminateOnNaN


def blobs(n=120, d=6, k=3, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    x = rng.normal(0, 1, (n, d)) + 2.5 * np.eye(k, d)[y]
    return x.astype(dtype), y


def mlp(d=6, h=16, k=3, dtype=np.float32, extra=()):
    return nn.Sequential(nn.Linear(d, h, dtype=dtype), *extra, nn.ReLU(), nn.Linear(h, k, dtype=dtype))


def test_minibatch_sgd_equals_hand_loop():
    x, y = blobs(dtype=np.float64)
    pydl.manual_seed(0)
    model = mlp(dtype=np.float64)
    ref = mlp(dtype=np.float64)
    ref.load_state_dict(model.state_dict())
    loss_ref = nn.CrossEntropyLoss()
    opt_ref = optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    trainer = Trainer(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                      regularizers=[L2(1e-3)])
    pydl.manual_seed(5)
    trainer.fit(x, y, epochs=2, batch_size=25, verbose=0)
    pydl.manual_seed(5)
    gen = pydl._random.generator()
    weights = [p for name, p in ref.named_parameters() if name.endswith("weight")]
    for _ in range(2):
        order = gen.permutation(len(y))
        for s in range(0, len(y), 25):
            idx = order[s:s + 25]
            opt_ref.zero_grad()
            loss_ref(ref(x[idx]), y[idx])
            ref.backward(loss_ref.backward())
            for w in weights:
                w.grad += 2e-3 * w.data
            opt_ref.step()
    for (name, a), b in zip(model.state_dict().items(), ref.state_dict().values()):
        assert_close(a, b, rtol=1e-12, atol=1e-14, err_msg=name)


def test_learns_and_predicts():
    x, y = blobs()
    pydl.manual_seed(1)
    model = mlp(extra=(nn.BatchNorm1d(16),))
    trainer = Trainer(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=1e-2))
    hist = trainer.fit(x, y, epochs=15, batch_size=16, validation_split=0.25, verbose=0)
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    assert trainer.evaluate(x, y)["accuracy"] > 0.9
    p = trainer.predict(x, batch_size=7)
    assert p.shape == (120, 3) and p.dtype == np.float32
    assert_close(p, trainer.predict(x), rtol=1e-5, atol=1e-6)


def test_early_stopping_restores_parameters_and_buffers():
    x, y = blobs()
    pydl.manual_seed(2)
    model = mlp(extra=(nn.BatchNorm1d(16),))
    snaps = []

    class Snap(pydl.train.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            snaps.append({k: v.copy() for k, v in self.model.state_dict().items()})

    es = EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    trainer = Trainer(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=0.05),
                      callbacks=[Snap(), es])
    trainer.fit(x, y, epochs=12, batch_size=8, validation_split=0.3, verbose=0)
    best = snaps[es.best_epoch]
    assert any(k.endswith("running_mean") for k in best)
    for k, v in model.state_dict().items():
        assert np.array_equal(v, best[k]), k


def test_model_checkpoint_roundtrip(tmp_path):
    x, y = blobs()
    pydl.manual_seed(3)
    model = mlp()
    ck = ModelCheckpoint(tmp_path / "best.npz", monitor="val_accuracy", save_best_only=True)
    trainer = Trainer(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=1e-2), callbacks=[ck])
    hist = trainer.fit(x, y, epochs=4, batch_size=16, validation_split=0.25, verbose=0)
    assert ck.best == max(hist.history["val_accuracy"])
    sd = pydl.load(str(tmp_path / "best.npz"))
    assert set(sd) == set(model.state_dict())


def test_lr_schedulers():
    x, y = blobs()
    model = mlp()
    opt = optim.SGD(model.parameters(), lr=0.1)
    sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    trainer = Trainer(model, nn.CrossEntropyLoss(), opt, callbacks=[LearningRateScheduler(sched)])
    hist = trainer.fit(x, y, epochs=5, batch_size=32, verbose=0)
    assert hist.history["learning_rate"] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])
    opt = optim.SGD(model.parameters(), lr=0.1)
    plateau = optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=0)
    trainer = Trainer(model, nn.CrossEntropyLoss(), opt, callbacks=[LearningRateScheduler(plateau, "loss")])
    vals = iter([1.0, 2.0, 3.0, 0.5])

    class Fake(pydl.train.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["loss"] = next(vals)

    trainer.callbacks.insert(0, Fake())
    hist = trainer.fit(x, y, epochs=4, batch_size=32, verbose=0)
    # patience 0: epochs 1 and 2 do not improve on 1.0 -> lr halves after each
    assert hist.history["learning_rate"] == pytest.approx([0.1, 0.1, 0.05, 0.025])


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")
def test_terminate_on_nan_real_model():
    x, y = blobs()
    pydl.manual_seed(4)
    model = nn.Sequential(nn.Linear(6, 1))
    trainer = Trainer(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=1e18), metrics=("mse",),
                      callbacks=[TerminateOnNaN(verbose=0)])
    trainer.fit(x, y.astype(np.float32), epochs=50, batch_size=120, verbose=0)
    assert all(np.all(np.isfinite(v)) for v in model.state_dict().values())
    assert trainer.callbacks[0].terminated_batch is not None


def test_mixup_soft_targets_and_bce_accuracy():
    x, y = blobs()
    pydl.manual_seed(6)
    model = mlp()
    trainer = Trainer(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=1e-2),
                      transform=data.Mixup(0.4, num_classes=3))
    hist = trainer.fit(x, y, epochs=10, batch_size=16, verbose=0)
    assert 0 < hist.history["accuracy"][-1] <= 1 and trainer.evaluate(x, y)["accuracy"] > 0.85
    # one logit output with BCEWithLogitsLoss: accuracy thresholds the logit at 0
    yb = (y == 0).astype(np.float32)
    model = nn.Sequential(nn.Linear(6, 1))
    trainer = Trainer(model, nn.BCEWithLogitsLoss(), optim.SGD(model.parameters(), lr=0.5))
    trainer.fit(x, yb, epochs=20, batch_size=16, verbose=0)
    logits = trainer.predict(x)[:, 0]
    assert trainer.evaluate(x, yb)["accuracy"] == pytest.approx(np.mean((logits > 0) == (yb > 0.5)))


def test_label_out_of_range_real_model():
    x, y = blobs()
    trainer = Trainer(mlp(), nn.CrossEntropyLoss(), optim.SGD(mlp().parameters()))
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        trainer.fit(x, y + 1, verbose=0)


def test_float_labels_name_the_cast():
    x, y = blobs()
    trainer = Trainer(mlp(), nn.CrossEntropyLoss(), optim.SGD(mlp().parameters()))
    with pytest.raises(TypeError, match=r"y: float labels of shape \(120,\) \(dtype float64\), but CrossEntropyLoss "
                                        r"takes int class indices or class probabilities of shape \(N, 3\): cast them "
                                        r"to class indices with y.astype\(np.int64\)"):
        trainer.fit(x, y.astype(np.float64), verbose=0)
    with pytest.raises(TypeError, match=r"validation_data\[1\]: float labels"):
        trainer.fit(x, y, validation_data=(x, y.astype(np.float32)), epochs=1, verbose=0)
