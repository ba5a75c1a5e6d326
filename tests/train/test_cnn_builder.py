"""build_cnn: the layers in order, shapes, fusion, the init draws, bad arguments, it learns."""
import numpy as np
import pytest

import pydl
from pydl import nn, optim
from pydl.train import build_cnn


def kinds(model):
    return [type(m).__name__ for m in model]


def test_layers_in_order_and_shapes():
    m = build_cnn(1, 10)
    assert kinds(m) == ["Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "AdaptiveAvgPool2d", "Flatten", "Linear"]
    assert m[0].weight.data.shape == (16, 1, 3, 3) and m[3].weight.data.shape == (32, 16, 3, 3)
    assert m[0].padding == (1, 1) and m[7].weight.data.shape == (10, 32 * 16)
    assert m(np.zeros((2, 1, 8, 8), np.float32)).shape == (2, 10)
    assert m(np.zeros((2, 1, 28, 28), np.float32)).shape == (2, 10)   # the adaptive pool takes any size


def test_options():
    m = build_cnn(3, 4, channels=(8, 8, 12), kernel_size=5, pool_size=1, activation="tanh", batchnorm=True,
                  dropout=0.2, input_noise=0.1, dtype=np.float64)
    assert kinds(m) == ["GaussianNoise", "Conv2d", "BatchNorm2d", "Tanh", "MaxPool2d", "Conv2d", "BatchNorm2d",
                        "Tanh", "MaxPool2d", "Conv2d", "BatchNorm2d", "Tanh", "AdaptiveAvgPool2d", "Flatten",
                        "Dropout", "Linear"]
    convs = [layer for layer in m if isinstance(layer, nn.Conv2d)]
    assert all(c.bias is None and c.kernel_size == (5, 5) and c.padding == (2, 2) for c in convs)
    assert all(p.data.dtype == np.float64 for p in m.parameters())
    assert m(np.zeros((2, 3, 16, 16))).shape == (2, 4)


def test_conv_relu_pairs_run_fused():
    assert build_cnn(1, 10).plan()[:2] == [("0", "1"), ("2",)]


@pytest.mark.parametrize("init", ["he", "xavier"])
def test_init_redraws_in_layer_order(init):
    pydl.manual_seed(5)
    got = build_cnn(1, 3, channels=(4, 6), init=init)
    pydl.manual_seed(5)
    ref = build_cnn(1, 3, channels=(4, 6))
    for layer in (ref[0], ref[3], ref[7]):
        if init == "he":
            nn.init.kaiming_uniform_(layer.weight, nonlinearity="relu")
        else:
            nn.init.xavier_uniform_(layer.weight, gain=nn.init.calculate_gain("relu"))
        nn.init.zeros_(layer.bias)
    for k, v in ref.state_dict().items():
        np.testing.assert_array_equal(got.state_dict()[k], v, err_msg=k)


@pytest.mark.parametrize("kw, exc, match", [
    ({"in_channels": 0}, ValueError, "in_channels: expected a positive int, got 0"),
    ({"out_features": 2.5}, ValueError, "out_features"),
    ({"channels": 8}, TypeError, "channels: expected a sequence of ints, got int"),
    ({"channels": []}, ValueError, "channels: expected at least one convolution stage"),
    ({"channels": [8, 0]}, ValueError, "channels: expected a positive int, got 0"),
    ({"kernel_size": 4}, ValueError, "kernel_size: expected an odd int"),
    ({"pool_size": 0}, ValueError, "pool_size: expected a positive int, got 0"),
    ({"activation": "swish"}, ValueError, "activation: expected one of .* got 'swish'"),
    ({"init": "orthogonal"}, ValueError, "init: expected one of"),
    ({"dropout": 1.0}, ValueError, r"dropout: expected a number in \[0, 1.0\), got 1.0"),
    ({"input_noise": -0.1}, ValueError, "input_noise"),
])
def test_bad_arguments(kw, exc, match):
    args = {"in_channels": 1, "out_features": 10, **kw}
    with pytest.raises(exc, match=match):
        build_cnn(**args)


@pytest.mark.parametrize("batchnorm", [False, True])
def test_loss_goes_down_on_digits(batchnorm):
    d = pydl.datasets.load_digits(as_images=True)
    x, y = d.data[:256] / 16.0, d.target[:256]
    pydl.manual_seed(0)
    model = build_cnn(1, 10, channels=(8, 16), batchnorm=batchnorm)
    loss_fn = nn.CrossEntropyLoss()
    opt = optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for step in range(60):
        i = step % 4 * 64
        opt.zero_grad()
        losses.append(loss_fn(model(x[i:i + 64]), y[i:i + 64]))
        model.backward(loss_fn.backward(), input_grad=False)
        opt.step()
    assert np.mean(losses[-8:]) < 0.5 * np.mean(losses[:4])
