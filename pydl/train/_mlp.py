"""build_mlp: the multilayer perceptron of the command line and the examples, in one place."""
import numbers

import numpy as np

from .. import nn

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU}
INITS = ("default", "he", "xavier")


def _positive_int(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name}: expected a positive int, got {value!r}")
    return int(value)


def _fraction(value, name, high):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not 0.0 <= value < high:
        raise ValueError(f"{name}: expected a number in [0, {high}), got {value!r}")
    return float(value)


def build_mlp(in_features, hidden, out_features, activation="relu", dropout=0.0, batchnorm=False,
              init="default", input_noise=0.0, flatten=False, dtype=np.float32):
    """A Sequential multilayer perceptron.

    Layers, in order: ``Flatten`` (if ``flatten``), ``GaussianNoise(input_noise)`` (if > 0), then
    for each hidden width h: ``Linear``, ``BatchNorm1d(h)`` (if ``batchnorm``), the activation,
    ``Dropout(dropout)`` (if > 0); last a ``Linear`` to ``out_features`` (no activation: logits).

    Parameters
    ----------
    in_features : int
        Features per sample (after flattening).
    hidden : sequence of int
        Hidden layer widths, e.g. ``(128, 64)``; empty for a linear model.
    out_features : int
        Outputs (classes for a classifier).
    activation : {"relu", "tanh", "sigmoid", "gelu"}
    dropout : float in [0, 1)
    batchnorm : bool
    init : {"default", "he", "xavier"}
        "default" keeps PyTorch's Linear init; "he" re-draws every Linear weight with
        ``nn.init.kaiming_uniform_(w, nonlinearity="relu")`` and "xavier" with
        ``nn.init.xavier_uniform_(w, gain)`` (the activation's gain, ReLU's for GELU), in layer
        order after all layers are built; both set the Linear biases to zero.
    input_noise : float >= 0
        Standard deviation of a GaussianNoise layer on the inputs (training only).
    flatten : bool
        Start with ``nn.Flatten()``, for inputs of shape (N, H, W).
    dtype : float32 or float64
        dtype of the Linear and BatchNorm1d parameters.

    Returns
    -------
    nn.Sequential
        Maps (N, in_features) (or (N, ...) when ``flatten``) to (N, out_features).
    """
    in_features = _positive_int(in_features, "in_features")
    out_features = _positive_int(out_features, "out_features")
    if isinstance(hidden, (str, bytes)) or not hasattr(hidden, "__iter__"):
        raise TypeError(f"hidden: expected a sequence of ints, got {type(hidden).__name__}")
    hidden = [_positive_int(h, "hidden") for h in hidden]
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation: expected one of {sorted(ACTIVATIONS)}, got {activation!r}")
    if init not in INITS:
        raise ValueError(f"init: expected one of {INITS}, got {init!r}")
    dropout = _fraction(dropout, "dropout", 1.0)
    input_noise = _fraction(input_noise, "input_noise", float("inf"))

    layers = [nn.Flatten()] if flatten else []
    if input_noise > 0:
        layers.append(nn.GaussianNoise(input_noise))
    linears = []
    width = in_features
    for h in hidden:
        linears.append(nn.Linear(width, h, dtype=dtype))
        layers.append(linears[-1])
        if batchnorm:
            layers.append(nn.BatchNorm1d(h, dtype=dtype))
        layers.append(ACTIVATIONS[activation]())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = h
    linears.append(nn.Linear(width, out_features, dtype=dtype))
    model = nn.Sequential(*layers, linears[-1])
    if init != "default":
        gain = nn.init.calculate_gain("relu" if activation == "gelu" else activation)
        for lin in linears:
            if init == "he":
                nn.init.kaiming_uniform_(lin.weight, nonlinearity="relu")
            else:
                nn.init.xavier_uniform_(lin.weight, gain=gain)
            nn.init.zeros_(lin.bias)
    return model
