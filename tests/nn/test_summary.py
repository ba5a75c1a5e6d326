"""pydl.nn.summary: Keras-style rows (name, type, output shape with batch None, parameters) and totals."""
import numpy as np
import pytest

import pydl
from pydl import nn


def table(model, input_shape, **kw):
    out = []
    assert nn.summary(model, input_shape, print_fn=out.append, **kw) is None
    assert len(out) == 1
    return out[0]


def rows(text):
    """(name-and-type, output shape, params) of each layer row."""
    lines = text.splitlines()
    body = lines[lines.index(next(line for line in lines if line.startswith("Layer"))) + 2:]
    body = body[:body.index(next(line for line in body if line.startswith("=")))]
    out = []
    for line in body:
        name, rest = line.split(")", 1)
        shape, params = rest.strip().rsplit(" ", 1)
        out.append((name + ")", shape.strip(), int(params.replace(",", ""))))
    return out


def test_summary_of_an_mlp():
    pydl.manual_seed(0)
    m = nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10), nn.BatchNorm1d(10),
                      nn.Dropout(0.5))
    text = table(m, (8, 8))
    assert text.splitlines()[0] == 'Model: "Sequential"'
    assert rows(text) == [("0 (Flatten)", "(None, 64)", 0), ("1 (Linear)", "(None, 128)", 64 * 128 + 128),
                          ("2 (ReLU)", "(None, 128)", 0), ("3 (Linear)", "(None, 10)", 128 * 10 + 10),
                          ("4 (BatchNorm1d)", "(None, 10)", 40), ("5 (Dropout)", "(None, 10)", 0)]
    trainable = sum(p.size for p in m.parameters())
    assert f"Trainable params: {trainable:,}" in text
    assert "Non-trainable params: 20" in text and f"Total params: {trainable + 20:,}" in text


def test_summary_changes_nothing():
    pydl.manual_seed(0)
    m = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Dropout(0.2), nn.Linear(4, 2))
    m[3].eval()
    sd = m.state_dict()
    modes = [mod.training for mod in m.modules()]
    plan = m.plan()
    table(m, 3)
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v, sd[k])  # running statistics untouched (run in eval mode)
    assert [mod.training for mod in m.modules()] == modes
    assert all(not mod._pending and not mod._forward_hooks for mod in m.modules())
    assert m.plan() == plan


def test_summary_of_a_custom_module_with_a_reused_layer():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4, dtype=np.float64)
            self.act = nn.Tanh()
            self.scale = nn.Parameter(np.ones(4))

        def forward(self, x):
            return self.act(self.fc(self.act(self.fc(x)))) * self.scale.data

    text = table(Twice(), (4,))
    assert rows(text) == [("fc (Linear)", "(None, 4)", 20), ("act (Tanh)", "(None, 4)", 0),
                          ("fc (Linear)", "(None, 4)", 0), ("act (Tanh)", "(None, 4)", 0),
                          ("twice (Twice)", "(None, 4)", 4)]  # shared modules counted once
    assert "Total params: 24" in text


def test_summary_prints_and_checks_its_arguments(capsys):
    assert nn.summary(nn.Linear(3, 2, dtype=np.float64), 3) is None
    assert "(None, 2)" in capsys.readouterr().out
    with pytest.raises(TypeError, match="model"):
        nn.summary("mlp", (3,))
    with pytest.raises(TypeError, match="input_shape"):
        nn.summary(nn.Linear(3, 2), "3")
    with pytest.raises(ValueError, match=r"input_shape\[0\]"):
        nn.summary(nn.Linear(3, 2), (-3,))
    with pytest.raises(TypeError, match="dtype"):
        nn.summary(nn.Linear(3, 2), (3,), dtype=np.int64)
