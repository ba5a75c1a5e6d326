"""build_mlp: the layers in order, the init draws as a hand-written loop, bad arguments."""
import numpy as np
import pytest

import pydl
from pydl import nn
from pydl.train import build_mlp


def kinds(model):
    return [type(m).__name__ for m in model]


def test_layers_in_order():
    assert kinds(build_mlp(4, (8, 6), 3)) == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    assert kinds(build_mlp(4, [], 3)) == ["Linear"]
    m = build_mlp(16, [8], 2, activation="tanh", dropout=0.2, batchnorm=True, input_noise=0.1, flatten=True,
                  dtype=np.float64)
    assert kinds(m) == ["Flatten", "GaussianNoise", "Linear", "BatchNorm1d", "Tanh", "Dropout", "Linear"]
    assert m[2].weight.data.shape == (8, 16) and m[6].weight.data.shape == (2, 8)
    assert all(p.data.dtype == np.float64 for p in m.parameters())
    assert m(np.ones((5, 4, 4))).shape == (5, 2)


@pytest.mark.parametrize("init", ["default", "he", "xavier"])
@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu"])
def test_init_draws_as_the_command_line_made_them(init, activation):
    """The reference is the loop the CLI ran before build_mlp: build all layers, then walk the
    named parameters and re-draw the Linear weights in order (biases to zero)."""
    pydl.manual_seed(3)
    got = build_mlp(5, [7, 6], 4, activation=activation, batchnorm=True, init=init)
    pydl.manual_seed(3)
    act = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}[activation]
    ref = nn.Sequential(nn.Linear(5, 7), nn.BatchNorm1d(7), act(), nn.Linear(7, 6), nn.BatchNorm1d(6), act(),
                        nn.Linear(6, 4))
    gain = nn.init.calculate_gain("relu" if activation == "gelu" else activation)
    for name, p in ref.named_parameters() if init != "default" else ():
        if not isinstance(ref[int(name.split(".")[0])], nn.Linear):
            continue
        if name.endswith("bias"):
            nn.init.zeros_(p)
        elif init == "he":
            nn.init.kaiming_uniform_(p, nonlinearity="relu")
        else:
            nn.init.xavier_uniform_(p, gain=gain)
    assert list(got.state_dict()) == list(ref.state_dict())
    for k, v in ref.state_dict().items():
        np.testing.assert_array_equal(got.state_dict()[k], v, err_msg=k)


@pytest.mark.parametrize("kw, exc, match", [
    ({"in_features": 0}, ValueError, "in_features: expected a positive int, got 0"),
    ({"out_features": 2.5}, ValueError, "out_features"),
    ({"hidden": 8}, TypeError, "hidden: expected a sequence of ints, got int"),
    ({"hidden": [8, -1]}, ValueError, "hidden: expected a positive int, got -1"),
    ({"activation": "swish"}, ValueError, "activation: expected one of .* got 'swish'"),
    ({"init": "orthogonal"}, ValueError, "init: expected one of"),
    ({"dropout": 1.0}, ValueError, r"dropout: expected a number in \[0, 1.0\), got 1.0"),
    ({"input_noise": -0.1}, ValueError, "input_noise"),
])
def test_bad_arguments(kw, exc, match):
    args = {"in_features": 4, "hidden": [3], "out_features": 2}
    args.update(kw)
    with pytest.raises(exc, match=match):
        build_mlp(**args)
