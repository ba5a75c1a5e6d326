"""Minimal float64 test doubles for the Trainer's collaborators (model, losses, optimizer).

They implement the pydl.nn / pydl.optim protocols (docs/API.md §1) in a few lines of numpy, so the
Trainer's own semantics (steps, batching, splits, regularization, callbacks) are tested in
isolation from the C++ layers; tests with the real pydl.nn / pydl.optim live beside them.
"""
import types

import numpy as np
import pytest

from pydl.nn import Parameter


class LinearModel:
    """y = x W^T + b with explicit backward; records the mode of every forward pass."""

    def __init__(self, n_in, n_out, seed=0):
        rng = np.random.default_rng(seed)
        self.weight = Parameter(rng.normal(0, 0.5, (n_out, n_in)))
        self.bias = Parameter(rng.normal(0, 0.1, (n_out,)))
        self.training = True
        self.modes = []
        self.forward_inputs = []

    def named_parameters(self):
        return [("weight", self.weight), ("bias", self.bias)]

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def __call__(self, x):
        self.modes.append(self.training)
        self.forward_inputs.append(np.array(x))
        self._x = x.reshape(x.shape[0], -1)
        return self._x @ self.weight.data.T + self.bias.data

    def backward(self, g):
        for p, v in ((self.weight, g.T @ self._x), (self.bias, g.sum(0))):
            p.grad = v if p.grad is None else p.grad + v
        return g @ self.weight.data

    def train(self, mode=True):
        self.training = mode
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None

    def state_dict(self):
        return {k: p.data.copy() for k, p in self.named_parameters()}

    def load_state_dict(self, sd):
        for k, p in self.named_parameters():
            p.data[...] = sd[k]


class MSELoss:
    reduction = "mean"

    def __call__(self, pred, target):
        self._d = pred - target.reshape(pred.shape)
        return float(np.mean(self._d ** 2))

    def backward(self):
        return 2.0 * self._d / self._d.size


class CrossEntropyLoss:
    """Softmax cross-entropy on logits; class-index or probability targets; mean over samples."""
    reduction = "mean"

    def __call__(self, logits, target):
        z = logits - logits.max(1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(1, keepdims=True))
        if target.ndim == 1:
            t = np.zeros_like(logits)
            t[np.arange(len(target)), target] = 1.0
        else:
            t = target
        self._p, self._t = np.exp(logp), t
        return float(-(t * logp).sum() / len(logits))

    def backward(self):
        return (self._p - self._t) / len(self._p)


class SGD:
    """p -= lr * grad; counts its steps."""

    def __init__(self, params, lr=0.1):
        self.param_groups = [{"params": list(params), "lr": lr}]
        self.steps = 0

    def zero_grad(self):
        for g in self.param_groups:
            for p in g["params"]:
                p.grad = None

    def step(self):
        self.steps += 1
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is not None:
                    p.data -= g["lr"] * p.grad


@pytest.fixture
def stubs():
    return types.SimpleNamespace(LinearModel=LinearModel, MSELoss=MSELoss,
                                 CrossEntropyLoss=CrossEntropyLoss, SGD=SGD)


@pytest.fixture
def blobs():
    """60 samples, 4 features, 3 well-separated classes (float64)."""
    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(3), 20)
    x = rng.normal(0, 1, (60, 4)) + 3.0 * np.eye(3, 4)[y]
    return x, y
