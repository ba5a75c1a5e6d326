"""cross_validate, bias_variance_decomp and the data transforms with the real pydl Trainer."""
import numpy as np
import pytest

import pydl
from pydl import nn, optim
from pydl.data import transforms as T
from pydl.datasets import load_digits, make_moons, make_regression_1d
from pydl.model_selection import bias_variance_decomp, cross_validate, train_test_split
from pydl.train import Trainer, build_mlp


def _classifier(n_in, n_out, lr=0.02):
    model = build_mlp(n_in, [16], n_out)
    return Trainer(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=lr),
                   metrics=("accuracy",))


def test_cross_validate_mlp_on_moons_and_n_jobs_independence():
    pytest.importorskip("joblib")
    X, y = make_moons(120, noise=0.1, random_state=0)
    fit_kwargs = {"epochs": 60, "batch_size": 16, "verbose": 0}
    pydl.manual_seed(0)
    res = cross_validate(lambda: _classifier(2, 2), X, y, cv=3, fit_kwargs=fit_kwargs)
    assert res["test_score"].shape == (3,)
    np.testing.assert_array_equal(res["test_score"], res["test_accuracy"])
    assert res["test_score"].mean() > 0.8 and res["train_score"].mean() > 0.8
    pydl.manual_seed(0)
    par = cross_validate(lambda: _classifier(2, 2), X, y, cv=3, fit_kwargs=fit_kwargs, n_jobs=2)
    np.testing.assert_array_equal(par["test_score"], res["test_score"])
    np.testing.assert_array_equal(par["test_loss"], res["test_loss"])


def test_bias_variance_mlp_regression():
    X, y = make_regression_1d(60, noise=0.2, random_state=0)
    Xt, yt = make_regression_1d(40, noise=0.0, random_state=1)

    def build():
        model = build_mlp(1, [16], 1, activation="tanh")
        return Trainer(model, nn.MSELoss(), optim.Adam(model.parameters(), lr=0.02), metrics=())

    pydl.manual_seed(1)
    exp, bias, var = bias_variance_decomp(build, X, y, Xt, yt, num_rounds=4, random_seed=0,
                                          fit_kwargs={"epochs": 10, "batch_size": 16, "verbose": 0})
    assert exp == pytest.approx(bias + var, rel=1e-6)
    assert bias > 0 and var > 0


def test_trainer_with_augmentation_and_mixup_on_digits():
    digits = load_digits()
    X = (digits.images / 16.0).reshape(-1, 64)
    X_tr, X_te, y_tr, y_te = train_test_split(X, digits.target, test_size=0.3, stratify=digits.target,
                                              random_state=0)

    def augment(x, y):   # rotate the 8x8 images, then mix the batch
        x = T.RandomRotation(10, seed=None)(x.reshape(-1, 8, 8)).reshape(-1, 64)
        return T.Mixup(0.2, num_classes=10)(x, y)

    pydl.manual_seed(2)
    model = build_mlp(64, [32], 10)
    trainer = Trainer(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=0.01),
                      metrics=("accuracy",), transform=augment)
    trainer.fit(X_tr, y_tr, epochs=8, batch_size=64, verbose=0)
    assert trainer.evaluate(X_te, y_te)["accuracy"] > 0.8
