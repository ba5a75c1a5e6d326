"""Trainer semantics against hand-written loops, with the float64 test doubles of conftest.py."""
import numpy as np
import pytest

import pydl
from pydl.testing import assert_close, numerical_grad
from pydl.train import L1, L2, Trainer
from pydl.train.callbacks import Callback


class Counter(Callback):
    def __init__(self):
        self.batches, self.epochs, self.sizes = 0, 0, []

    def on_batch_end(self, batch, logs=None):
        self.batches += 1
        self.sizes.append(logs["size"])

    def on_epoch_end(self, epoch, logs=None):
        self.epochs += 1


def make(stubs, n_in=4, n_out=3, lr=0.1, loss=None, **kw):
    model = stubs.LinearModel(n_in, n_out)
    opt = stubs.SGD(model.parameters(), lr=lr)
    return Trainer(model, loss or stubs.CrossEntropyLoss(), opt, **kw), model, opt


@pytest.mark.parametrize("batch_size, steps, sizes", [(1, 10, [1] * 10), (3, 4, [3, 3, 3, 1]),
                                                      (None, 1, [10]), (32, 1, [10]), (5, 2, [5, 5])])
def test_steps_per_epoch(stubs, blobs, batch_size, steps, sizes):
    x, y = blobs[0][:10], blobs[1][:10]
    count = Counter()
    tr, _, opt = make(stubs, callbacks=[count])
    hist = tr.fit(x, y, epochs=3, batch_size=batch_size, verbose=0)
    assert opt.steps == 3 * steps and count.batches == 3 * steps and count.epochs == 3
    assert count.sizes == sizes * 3
    assert hist.params["steps"] == steps and len(hist.history["loss"]) == 3


def test_validation_split_takes_last_samples(stubs, blobs):
    x, y = blobs
    tr, model, _ = make(stubs)
    hist = tr.fit(x, y, epochs=2, batch_size=8, validation_split=0.25, verbose=0)
    # split_at = floor(60 * 0.75) = 45: training saw exactly rows 0..44, validation is rows 45..59.
    seen = np.concatenate([a for a, m in zip(model.forward_inputs, model.modes) if m])
    assert seen.shape[0] == 2 * 45
    assert np.array_equal(np.unique(seen, axis=0), np.unique(x[:45], axis=0))
    val = tr.evaluate(x[45:], y[45:])
    assert hist.history["val_loss"][-1] == pytest.approx(val["loss"], rel=1e-12)
    assert hist.history["val_accuracy"][-1] == pytest.approx(val["accuracy"])


def test_shuffling_reproducible_with_manual_seed(stubs, blobs):
    x, y = blobs

    def run(seed):
        pydl.manual_seed(seed)
        tr, model, _ = make(stubs)
        tr.fit(x, y, epochs=2, batch_size=7, verbose=0)
        return model.weight.data.copy(), np.concatenate(model.forward_inputs[1:])

    w0, order0 = run(3)
    w1, order1 = run(3)
    w2, order2 = run(4)
    assert np.array_equal(w0, w1) and np.array_equal(order0, order1)
    assert not np.array_equal(order0, order2)
    # each epoch visits every sample once, in a new order
    first = order0[:60]
    assert not np.array_equal(first, x) and np.array_equal(np.unique(first, axis=0), np.unique(x, axis=0))


def test_no_shuffle_keeps_order(stubs, blobs):
    x, y = blobs
    tr, model, _ = make(stubs)
    tr.fit(x, y, epochs=1, batch_size=7, shuffle=False, verbose=0)
    assert np.array_equal(np.concatenate(model.forward_inputs[1:]), x)


def test_full_batch_gd_equals_hand_loop(stubs, blobs):
    x, y = blobs
    tr, model, _ = make(stubs, lr=0.3)
    ref = stubs.LinearModel(4, 3)
    loss_fn, opt = stubs.CrossEntropyLoss(), stubs.SGD(ref.parameters(), lr=0.3)
    losses = []
    for _ in range(5):
        opt.zero_grad()
        losses.append(loss_fn(ref(x), y))
        ref.backward(loss_fn.backward())
        opt.step()
    hist = tr.fit(x, y, epochs=5, batch_size=None, verbose=0)
    assert_close(model.weight.data, ref.weight.data, rtol=1e-14, atol=1e-15)
    assert_close(model.bias.data, ref.bias.data, rtol=1e-14, atol=1e-15)
    assert_close(hist.history["loss"], losses, rtol=1e-14)


def test_epoch_loss_is_sample_weighted_mean_of_batches(stubs, blobs):
    x, y = blobs[0][:10], blobs[1][:10]
    tr, model, _ = make(stubs, lr=0.2)
    ref = stubs.LinearModel(4, 3)
    loss_fn, opt = stubs.CrossEntropyLoss(), stubs.SGD(ref.parameters(), lr=0.2)
    total = 0.0
    for s in (0, 4, 8):                       # batch_size 4: sizes 4, 4, 2
        xb, yb = x[s:s + 4], y[s:s + 4]
        opt.zero_grad()
        total += len(xb) * loss_fn(ref(xb), yb)
        ref.backward(loss_fn.backward())
        opt.step()
    hist = tr.fit(x, y, epochs=1, batch_size=4, shuffle=False, verbose=0)
    assert hist.history["loss"][0] == pytest.approx(total / 10, rel=1e-13)
    assert_close(model.weight.data, ref.weight.data, rtol=1e-14, atol=1e-15)


class GradRecorder:
    """Optimizer double that records the gradients it is asked to apply."""

    def __init__(self, params):
        self.params = list(params)
        self.param_groups = [{"params": self.params, "lr": 0.0}]
        self.grads = []

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def step(self):
        self.grads.append([p.grad.copy() for p in self.params])


@pytest.mark.parametrize("regs", [[L2(0.05)], [L1(0.03)], [L1(0.02), L2(0.04)],
                                  [L2(0.1, params=["weight", "bias"])]])
def test_regularizer_gradients_match_finite_differences(stubs, blobs, regs):
    x, y = blobs
    model = stubs.LinearModel(4, 3)
    loss_fn = stubs.CrossEntropyLoss()
    opt = GradRecorder(model.parameters())
    tr = Trainer(model, loss_fn, opt, regularizers=regs)
    hist = tr.fit(x, y, epochs=1, batch_size=None, verbose=0)

    def objective():
        return loss_fn(model(x), y) + sum(r.penalty() for r in regs)

    assert hist.history["loss"][0] == pytest.approx(objective(), rel=1e-13)
    for p, g in zip(model.parameters(), opt.grads[0]):
        assert_close(g, numerical_grad(objective, p.data), rtol=1e-6, atol=1e-8)


def test_regularizers_default_to_weights_only(stubs, blobs):
    x, y = blobs
    model = stubs.LinearModel(4, 3)
    r = L2(0.5).bind(model)
    assert r.penalty() == pytest.approx(0.5 * np.sum(model.weight.data ** 2))
    with pytest.raises(ValueError, match="no parameter named 'nope'"):
        L1(0.1, params=["nope"]).bind(model)
    with pytest.raises(ValueError, match="coef"):
        L2(-1.0)


def test_weight_noise_gradient_at_perturbed_weights(stubs, blobs):
    x, y = blobs
    std = 0.3
    model = stubs.LinearModel(4, 3)
    w0, b0 = model.weight.data.copy(), model.bias.data.copy()
    loss_fn = stubs.CrossEntropyLoss()
    opt = GradRecorder(model.parameters())
    pydl.manual_seed(11)
    Trainer(model, loss_fn, opt, weight_noise=std).fit(x, y, epochs=1, batch_size=None, verbose=0)
    # the weights are restored exactly (GradRecorder does not move them), biases never perturbed
    assert np.array_equal(model.weight.data, w0) and np.array_equal(model.bias.data, b0)
    pydl.manual_seed(11)
    eps = pydl._random.generator().standard_normal(w0.shape) * std
    ref = stubs.LinearModel(4, 3)
    ref.weight.data[...] = w0 + eps
    loss_fn(ref(x), y)
    ref.backward(loss_fn.backward())
    assert_close(opt.grads[0][0], ref.weight.grad, rtol=1e-12, atol=1e-14)
    assert_close(opt.grads[0][1], ref.bias.grad, rtol=1e-12, atol=1e-14)


def test_modes_train_during_fit_eval_for_validation_and_predict(stubs, blobs):
    x, y = blobs
    tr, model, _ = make(stubs)
    model.eval()
    tr.fit(x, y, epochs=1, batch_size=30, validation_data=(x[:10], y[:10]), shuffle=False, verbose=0)
    # probe (eval) for train and for validation data, 2 training batches, 1 validation batch
    assert model.modes == [False, False, True, True, False]
    model.modes.clear()
    model.train()
    tr.predict(x)
    tr.evaluate(x, y)
    assert model.modes == [False, False, False] and model.training


def test_grad_mode_off_for_probe_validation_evaluate_and_predict(stubs, blobs):
    x, y = blobs

    class Recording(stubs.LinearModel):
        def __call__(self, x):
            self.grad_modes.append(pydl.is_grad_enabled())
            return super().__call__(x)

    model = Recording(4, 3)
    model.grad_modes = []
    tr = Trainer(model, stubs.CrossEntropyLoss(), stubs.SGD(model.parameters()))
    tr.fit(x, y, epochs=1, batch_size=30, validation_data=(x[:10], y[:10]), shuffle=False, verbose=0)
    # probes of train and validation data, 2 training batches, 1 validation batch
    assert model.grad_modes == [False, False, True, True, False]
    model.grad_modes.clear()
    tr.predict(x)
    tr.evaluate(x, y)
    assert model.grad_modes == [False, False, False] and pydl.is_grad_enabled()


def test_target_checks_read_the_loss_target_kinds(stubs):
    x = np.random.default_rng(0).normal(size=(6, 4))
    y = np.array([0, 1, 0, 1, 1, 0])

    class ClassIndexLoss(stubs.MSELoss):      # any name: the declared kinds decide
        target_kinds = ("class_index",)

    tr, _, _ = make(stubs, n_out=1, loss=ClassIndexLoss())
    with pytest.raises(ValueError, match=r"class labels must lie in \[0, 1\)"):
        tr.evaluate(x, y)                      # int labels are class indices: 1 is out of range
    tr, _, _ = make(stubs, n_out=1, loss=stubs.MSELoss(), metrics=())
    assert set(tr.evaluate(x, y)) == {"loss"}  # without the kinds: regression targets


def test_history_keys_and_gap(stubs, blobs):
    x, y = blobs
    tr, _, _ = make(stubs)
    hist = tr.fit(x, y, epochs=3, batch_size=16, validation_split=0.2, verbose=0)
    assert set(hist.history) == {"loss", "accuracy", "val_loss", "val_accuracy", "gap"}
    assert_close(np.array(hist.history["gap"]),
                 np.array(hist.history["val_loss"]) - np.array(hist.history["loss"]))
    assert hist.epoch == [0, 1, 2] and tr.history is hist
    assert hist.history["accuracy"][-1] > 0.7


def test_regression_metrics_and_targets(stubs):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    y = x @ np.array([1.0, -2.0, 0.5]) + 0.3            # (N,) targets, model output (N, 1)
    model = stubs.LinearModel(3, 1)
    tr = Trainer(model, stubs.MSELoss(), stubs.SGD(model.parameters(), lr=0.1), metrics=("mse", "mae"))
    hist = tr.fit(x, y, epochs=40, batch_size=8, verbose=0)
    assert hist.history["mse"][-1] < 1e-3
    ev = tr.evaluate(x, y)
    pred = tr.predict(x)[:, 0]
    assert ev["mse"] == pytest.approx(np.mean((pred - y) ** 2), rel=1e-10)
    assert ev["mae"] == pytest.approx(np.mean(np.abs(pred - y)), rel=1e-10)
    assert ev["loss"] == pytest.approx(ev["mse"], rel=1e-10)


def test_callable_metric_and_predict_batches(stubs, blobs):
    x, y = blobs

    def top_logit(y_true, y_pred):
        return float(np.mean(y_pred.max(1)))

    tr, _, _ = make(stubs, metrics=["accuracy", top_logit])
    ev = tr.evaluate(x, y, batch_size=7)
    assert set(ev) == {"loss", "accuracy", "top_logit"}
    p = tr.predict(x, batch_size=7)
    assert_close(p, tr.predict(x, batch_size=256), rtol=1e-15, atol=0)
    assert ev["top_logit"] == pytest.approx(np.mean(p.max(1)), rel=1e-12)
    assert ev["accuracy"] == pytest.approx(np.mean(p.argmax(1) == y))


def test_transform_applies_to_training_batches_only(stubs, blobs):
    x, y = blobs
    calls = []

    def flip(xb, yb=None):
        calls.append(len(xb))
        return (-xb, yb) if yb is not None else -xb

    tr, model, _ = make(stubs, transform=flip)
    tr.fit(x, y, epochs=1, batch_size=20, validation_split=0.5, shuffle=False, verbose=0)
    assert calls == [20, 10]
    train_inputs = [a for a, m in zip(model.forward_inputs, model.modes) if m]
    assert np.array_equal(np.concatenate(train_inputs), -x[:30])


def test_stop_training_from_batch_hook(stubs, blobs):
    x, y = blobs

    class StopAt(Callback):
        def on_batch_end(self, batch, logs=None):
            if batch == 2:
                self.trainer.stop_training = True

    count = Counter()
    tr, _, opt = make(stubs, callbacks=[StopAt(), count])
    hist = tr.fit(x, y, epochs=5, batch_size=10, verbose=0)
    assert opt.steps == 3 and count.epochs == 1 and len(hist.history["loss"]) == 1


def test_verbose_output(stubs, blobs, capsys):
    x, y = blobs
    tr, _, _ = make(stubs)
    tr.fit(x, y, epochs=2, batch_size=30, verbose=0)
    assert capsys.readouterr().out == ""
    tr.fit(x, y, epochs=2, batch_size=30, validation_split=0.5, verbose=2)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[1].startswith("Epoch 2/2") and "val_accuracy" in lines[1]


def test_verbose_1_progress_bar_or_lines(stubs, blobs, capsys, monkeypatch):
    x, y = blobs
    tr, _, _ = make(stubs)
    pytest.importorskip("tqdm")
    tr.fit(x, y, epochs=2, batch_size=30, verbose=1)
    cap = capsys.readouterr()
    assert cap.out == "" and "Epoch 2/2" in cap.err and "loss:" in cap.err
    monkeypatch.setattr("pydl.train.trainer._tqdm", lambda: None)      # as if tqdm were not installed
    tr.fit(x, y, epochs=2, batch_size=30, verbose=1)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("Epoch 1/2") and "loss:" in lines[0]


@pytest.mark.parametrize("xs, ys, match", [
    ((10, 4), (9,), "different numbers of samples: x has 10, y has 9"),
    ((0, 4), (0,), "empty"),
])
def test_bad_shapes(stubs, xs, ys, match):
    tr, _, _ = make(stubs)
    with pytest.raises(ValueError, match=match):
        tr.fit(np.zeros(xs), np.zeros(ys, dtype=np.int64), verbose=0)


def test_bad_inputs(stubs, blobs):
    x, y = blobs
    tr, _, _ = make(stubs)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\).*from 0 to 3"):
        tr.fit(x, np.where(y == 2, 3, y), verbose=0)
    with pytest.raises(ValueError, match="from -1"):
        tr.evaluate(x, y - 1)
    bad = x.copy()
    bad[5, 2] = np.nan
    with pytest.raises(ValueError, match="x: contains 1 NaN"):
        tr.fit(bad, y, verbose=0)
    with pytest.raises(ValueError, match="validation_data\\[0\\]: contains"):
        tr.fit(x, y, validation_data=(bad, y), verbose=0)
    with pytest.raises(ValueError, match="batch_size"):
        tr.fit(x, y, batch_size=0, verbose=0)
    with pytest.raises(ValueError, match="validation_split"):
        tr.fit(x, y, validation_split=1.0, verbose=0)
    with pytest.raises(ValueError, match="validation_split"):
        tr.fit(x[:10], y[:10], validation_split=0.95, verbose=0)
    with pytest.raises(ValueError, match="expected 3 columns"):
        tr.fit(x, np.ones((60, 2)), verbose=0)
    with pytest.raises(TypeError, match="x: expected a numpy.ndarray"):
        tr.fit("abc", y, verbose=0)
    with pytest.raises(ValueError, match="unknown metric 'f1'"):
        make(stubs, metrics=("f1",))
    with pytest.raises(ValueError, match="weight_noise"):
        make(stubs, weight_noise=-0.1)


def test_history_plot(stubs, blobs, tmp_path):
    pytest.importorskip("matplotlib")
    x, y = blobs
    tr, _, _ = make(stubs)
    hist = tr.fit(x, y, epochs=2, batch_size=30, validation_split=0.5, verbose=0)
    path = hist.plot(tmp_path / "curves.png")
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_numeric_inputs_are_converted_to_the_model_dtype():
    """fit / evaluate / predict take any numeric x (uint8 images, bools, float64) as Keras does:
    the same run as with x already of the model's dtype."""
    from pydl import nn, optim
    rng = np.random.default_rng(3)
    x8 = rng.integers(0, 17, (90, 8)).astype(np.uint8)
    y = rng.integers(0, 3, 90)
    runs = []
    for x in (x8, x8.astype(np.float32), x8.astype(np.float64), x8.astype(np.int64)):
        pydl.manual_seed(0)
        m = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
        tr = Trainer(m, nn.CrossEntropyLoss(), optim.Adam(m.parameters(), lr=1e-2))
        hist = tr.fit(x, y, epochs=2, batch_size=16, verbose=0).history
        runs.append((hist, tr.evaluate(x, y), tr.predict(x)))
    for hist, ev, pred in runs[1:]:
        assert hist == runs[0][0] and ev == runs[0][1]
        assert pred.dtype == np.float32 and np.array_equal(pred, runs[0][2])
    with pytest.raises(TypeError, match="input: expected dtype float32"):
        m(x8)  # a module call takes its dtype only


def test_progress_bar_counts_the_batches_of_epoch_calls(capsys):
    """With tqdm, verbose=1 keeps the whole-epoch C++ calls: the bar advances by a call's batches
    and ends at every batch of the epoch; the run is the one verbose=0 gives."""
    pytest.importorskip("tqdm")
    from pydl import nn, optim
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((100, 6)).astype(np.float32), rng.integers(0, 3, 100)
    runs = []
    for verbose in (1, 0):
        pydl.manual_seed(0)
        m = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
        tr = Trainer(m, nn.CrossEntropyLoss(), optim.Adam(m.parameters(), lr=1e-2))
        runs.append((tr.fit(x, y, epochs=2, batch_size=10, verbose=verbose).history,
                     [p.data.copy() for p in m.parameters()]))
        assert tr._step_fn().fused
        if verbose:
            err = capsys.readouterr().err
            assert "Epoch 2/2" in err and "10/10" in err
    assert runs[0][0] == runs[1][0]
    assert all(np.array_equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))
