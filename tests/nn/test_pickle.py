"""A model and its optimizer pickle by value (what joblib, Dask and Ray send to their workers):
numpy arrays and pydl's Python classes, no object of the C++ extension, and the copy trains on
exactly as the original."""
import io
import pickle

import numpy as np

import pydl
from pydl import nn, optim


def _model():
    pydl.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(16, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.2),
                         nn.Linear(8, 3))


def _step(model, opt, x, y, seed):
    pydl.manual_seed(seed)                   # the dropout mask
    loss_fn = nn.CrossEntropyLoss()
    opt.zero_grad()
    loss_fn(model(x), y)
    model.backward(loss_fn.backward())
    opt.step()


class _Recorder(pickle.Unpickler):
    """Unpickles, recording the (module, name) of every class or function it imports."""

    def __init__(self, blob):
        super().__init__(io.BytesIO(blob))
        self.refs = set()

    def find_class(self, module, name):
        self.refs.add((module, name))
        return super().find_class(module, name)


def test_model_and_optimizer_pickle_by_value_and_train_on_identically():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 1, 4, 4)).astype(np.float32)
    y = rng.integers(0, 3, 6)
    model = _model()
    opt = optim.Adam(model.parameters(), lr=1e-2)
    _step(model, opt, x, y, seed=1)          # state in the optimizer, running statistics moved

    blob = pickle.dumps((model, opt))
    loader = _Recorder(blob)
    model2, opt2 = loader.load()
    modules = {m for m, _ in loader.refs}
    assert all(m.startswith(("pydl.nn.", "pydl.optim.", "numpy", "collections")) for m in modules), loader.refs
    assert ("pydl.nn.parameter", "Parameter") in loader.refs and "numpy" in modules
    a, b = model.state_dict(), model2.state_dict()
    assert list(a) == list(b) and all(a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]) for k in a)
    s, s2 = opt.state_dict(), opt2.state_dict()
    assert s["param_groups"] == s2["param_groups"]
    assert all(np.array_equal(s["state"][i][k], s2["state"][i][k]) for i in s["state"] for k in s["state"][i])
    # the optimizer's state belongs to the copy's parameters, not to the original's
    own = {id(p) for p in model2.parameters()}
    assert set(map(id, opt2.state)) == own and {id(p) for g in opt2.param_groups for p in g["params"]} == own

    for seed in (2, 3):
        _step(model, opt, x, y, seed)
        _step(model2, opt2, x, y, seed)
    a, b = model.state_dict(), model2.state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["0.weight"], pickle.loads(blob)[0].state_dict()["0.weight"])   # it trained
