"""Trainer: Keras's sample_weight / class_weight (sum_over_batch_size of weighted per-sample
losses), checked against hand-computed losses and gradients; default metrics follow the loss."""
import numpy as np
import pytest

import pydl
from pydl import nn, optim
from pydl.train import Trainer


def linear_case(k=2, n=6, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3))
    y = rng.standard_normal((n, k))
    model = nn.Linear(3, k, dtype=np.float64)
    return model, x, y


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_sample_weight_loss_and_step_by_hand(reduction):
    model, x, y = linear_case()
    w = np.array([0.0, 1.0, 2.0, 0.5, 3.0, 1.0])
    W0, b0 = model.weight.data.copy(), model.bias.data.copy()
    lr = 0.1
    tr = Trainer(model, nn.MSELoss(reduction=reduction), optim.SGD(model.parameters(), lr=lr))
    hist = tr.fit(x, y, epochs=1, batch_size=None, shuffle=False, verbose=0, sample_weight=w)
    pred = x @ W0.T + b0
    per = (pred - y) ** 2                                   # (N, k) per-element losses
    wsum = (w[:, None] * per).sum()
    expected = wsum / per.size if reduction == "mean" else wsum / len(x)
    assert hist.history["loss"][0] == pytest.approx(expected, rel=1e-12)
    dpred = 2 * w[:, None] * (pred - y) / (per.size if reduction == "mean" else 1)
    np.testing.assert_allclose(model.weight.data, W0 - lr * dpred.T @ x, rtol=1e-12)
    np.testing.assert_allclose(model.bias.data, b0 - lr * dpred.sum(0), rtol=1e-12)


def test_class_weight_cross_entropy_by_hand():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((8, 4))
    y = np.array([0, 1, 2, 1, 0, 2, 2, 1])
    model = nn.Linear(4, 3, dtype=np.float64)
    W0, b0 = model.weight.data.copy(), model.bias.data.copy()
    sw = np.linspace(0.5, 2.0, 8)
    cw = {0: 2.0, 2: 0.25}                                   # class 1 not listed: weight 1 (Keras)
    tr = Trainer(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.0))
    hist = tr.fit(x, y, epochs=1, batch_size=None, verbose=0, class_weight=cw, sample_weight=sw)
    z = x @ W0.T + b0
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    w = sw * np.array([cw.get(c, 1.0) for c in y])
    assert hist.history["loss"][0] == pytest.approx((w * -logp[np.arange(8), y]).sum() / 8, rel=1e-12)


def test_unit_weights_change_nothing_and_class_weight_equals_sample_weight():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((40, 5)).astype(np.float32)
    y = rng.integers(0, 3, 40)

    def run(**kw):
        pydl.manual_seed(0)
        m = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3))
        Trainer(m, nn.CrossEntropyLoss(), optim.Adam(m.parameters())).fit(x, y, epochs=3, batch_size=8,
                                                                          verbose=0, **kw)
        return m[0].weight.data

    np.testing.assert_allclose(run(sample_weight=np.ones(40)), run(), rtol=1e-6, atol=1e-7)
    cw = {0: 0.5, 1: 2.0, 2: 1.5}
    np.testing.assert_allclose(run(class_weight=cw), run(sample_weight=np.vectorize(cw.get)(y).astype(float)),
                               rtol=1e-6)


def test_class_weight_from_one_hot_and_binary_targets():
    tr = Trainer(nn.Linear(2, 3), nn.CrossEntropyLoss(), optim.SGD(nn.Linear(2, 3).parameters()))
    onehot = np.eye(3)[[2, 0, 1]]
    np.testing.assert_array_equal(tr._sample_weights(onehot, 3, None, {2: 5.0}), [5.0, 1.0, 1.0])
    binary = np.array([[1.0], [0.0], [1.0]])
    np.testing.assert_array_equal(tr._sample_weights(binary, 3, None, {1: 3.0}), [3.0, 1.0, 3.0])


def test_weights_errors_and_validation_split():
    model, x, y = linear_case()
    tr = Trainer(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.0))
    with pytest.raises(ValueError, match=r"sample_weight.*\(6,\)"):
        tr.fit(x, y, verbose=0, sample_weight=np.ones(5))
    with pytest.raises(ValueError, match="sample_weight"):
        tr.fit(x, y, verbose=0, sample_weight=-np.ones(6))
    with pytest.raises(TypeError, match="class_weight"):
        tr.fit(x, y, verbose=0, class_weight=[1.0, 2.0])
    w = np.array([1.0, 1.0, 1.0, 1.0, 100.0, 100.0])          # held-out tail: its weights are dropped
    h = tr.fit(x, y, epochs=1, batch_size=None, verbose=0, sample_weight=w, validation_split=1 / 3)
    pred = x[:4] @ model.weight.data.T + model.bias.data
    assert h.history["loss"][0] == pytest.approx(((pred - y[:4]) ** 2).mean(), rel=1e-12)

    def plain(pred, target):
        return 0.0
    plain.backward = lambda: None
    with pytest.raises(TypeError, match="reduction='none'"):
        Trainer(model, plain, optim.SGD(model.parameters())).fit(x, y, verbose=0, sample_weight=np.ones(6))


@pytest.mark.parametrize("loss, target, expect", [
    (nn.CrossEntropyLoss(), "index", True), (nn.BCEWithLogitsLoss(), "binary", True),
    (nn.MSELoss(), "real", False), (nn.L1Loss(), "real", False), (nn.MSELoss(), "onehot", True)])
def test_default_metrics_follow_the_loss(loss, target, expect):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((20, 4)).astype(np.float32)
    n_out = 1 if target == "binary" else 3
    y = {"index": lambda: rng.integers(0, 3, 20), "binary": lambda: (rng.random((20, 1)) > 0.5).astype(np.float32),
         "real": lambda: rng.standard_normal((20, 3)).astype(np.float32),
         "onehot": lambda: np.eye(3, dtype=np.float32)[rng.integers(0, 3, 20)]}[target]()
    model = nn.Linear(4, n_out)
    tr = Trainer(model, loss, optim.SGD(model.parameters(), lr=0.01))
    h = tr.fit(x, y, epochs=1, verbose=0, validation_split=0.25)
    assert ("accuracy" in h.history and "val_accuracy" in h.history) is expect
    assert ("accuracy" in tr.evaluate(x, y)) is expect
    for metrics in ((), ("accuracy",)):                     # an explicit choice is kept
        explicit = Trainer(model, loss, optim.SGD(model.parameters()), metrics=metrics)
        assert set(explicit.fit(x, y, epochs=1, verbose=0).history) == {"loss", *metrics}
