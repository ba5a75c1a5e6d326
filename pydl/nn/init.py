"""nn.init: PyTorch's initializers, in place on a Parameter or ndarray (returned).

Random draws come from pydl's global generator (``pydl.manual_seed``), in float64, then cast.
Formulas (torch.nn.init): fan_in = shape[1] * receptive field, fan_out = shape[0] * receptive
field; kaiming: std = gain / sqrt(fan), bound = sqrt(3) std; xavier: std = gain sqrt(2 / (fan_in
+ fan_out)), bound = sqrt(3) std.
"""
from __future__ import annotations

import math
from typing import TypeVar

import numpy as np

from .._random import generator
from .parameter import Parameter

#: what the initializers fill in place and return: a Parameter (its data) or an array
_T = TypeVar("_T", Parameter, np.ndarray)


def _array(tensor):
    a = tensor.data if isinstance(tensor, Parameter) else tensor
    if not isinstance(a, np.ndarray):
        raise TypeError(f"tensor: expected an nn.Parameter or numpy.ndarray, got {type(tensor).__name__}")
    if not np.issubdtype(a.dtype, np.floating):
        raise TypeError(f"tensor: expected a floating-point array, got {a.dtype}")
    if not a.flags.writeable:
        raise ValueError("tensor: array is read-only")
    return a


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for a nonlinearity (torch.nn.init.calculate_gain)."""
    linear = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d")
    if nonlinearity in linear or nonlinearity == "sigmoid":
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif not isinstance(param, bool) and isinstance(param, (int, float)):
            slope = param
        else:
            raise ValueError(f"param: negative_slope {param!r} is not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"nonlinearity: unsupported {nonlinearity!r}")


def _calculate_fan_in_and_fan_out(a):
    if a.ndim < 2:
        raise ValueError(f"tensor: fan in and fan out cannot be computed for fewer than 2 dimensions, got shape {a.shape}")
    receptive = int(np.prod(a.shape[2:])) if a.ndim > 2 else 1
    return a.shape[1] * receptive, a.shape[0] * receptive


def _fan(a, mode):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode: expected 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(a)
    return fan_in if mode == "fan_in" else fan_out


def _fill(tensor, values):
    a = _array(tensor)
    a[...] = values
    return tensor


def uniform_(tensor: _T, a: float = 0.0, b: float = 1.0) -> _T:
    """Fill with U(a, b)."""
    arr = _array(tensor)
    if not a <= b:
        raise ValueError(f"a, b: expected a <= b, got a={a}, b={b}")
    return _fill(tensor, generator().uniform(a, b, arr.shape))


def normal_(tensor: _T, mean: float = 0.0, std: float = 1.0) -> _T:
    """Fill with N(mean, std^2)."""
    arr = _array(tensor)
    if not std >= 0:
        raise ValueError(f"std: expected a non-negative float, got {std}")
    return _fill(tensor, generator().normal(mean, std, arr.shape))


def constant_(tensor: _T, val: float) -> _T:
    return _fill(tensor, val)


def zeros_(tensor: _T) -> _T:
    return _fill(tensor, 0)


def ones_(tensor: _T) -> _T:
    return _fill(tensor, 1)


def kaiming_uniform_(tensor: _T, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> _T:
    """U(-bound, bound), bound = sqrt(3) * gain / sqrt(fan) (He et al. 2015)."""
    arr = _array(tensor)
    fan = _fan(arr, mode)
    if arr.size == 0:
        return tensor
    bound = math.sqrt(3.0) * calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return _fill(tensor, generator().uniform(-bound, bound, arr.shape))


def kaiming_normal_(tensor: _T, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> _T:
    """N(0, std^2), std = gain / sqrt(fan) (He et al. 2015)."""
    arr = _array(tensor)
    fan = _fan(arr, mode)
    if arr.size == 0:
        return tensor
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return _fill(tensor, generator().normal(0.0, std, arr.shape))


def xavier_uniform_(tensor: _T, gain: float = 1.0) -> _T:
    """U(-bound, bound), bound = gain sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010)."""
    arr = _array(tensor)
    fan_in, fan_out = _calculate_fan_in_and_fan_out(arr)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return _fill(tensor, generator().uniform(-bound, bound, arr.shape))


def xavier_normal_(tensor: _T, gain: float = 1.0) -> _T:
    """N(0, std^2), std = gain sqrt(2 / (fan_in + fan_out)) (Glorot & Bengio 2010)."""
    arr = _array(tensor)
    fan_in, fan_out = _calculate_fan_in_and_fan_out(arr)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return _fill(tensor, generator().normal(0.0, std, arr.shape))
