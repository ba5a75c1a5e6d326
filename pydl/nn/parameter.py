"""nn.Parameter: an ndarray the optimizers update, with its gradient."""
from __future__ import annotations

from typing import Any

import numpy as np

from .._typing import Array
from .._validate import FLOAT_DTYPES, shape_str


class Parameter:
    """A trainable array.

    Attributes
    ----------
    data : ndarray
        The values (float32 or float64, C-contiguous). Optimizers update it in place.
    grad : ndarray or None
        d loss / d data, same shape and dtype as ``data``; None until a backward pass writes it.
        Backward passes write it when None and add to it otherwise (PyTorch accumulation).
    """

    __slots__ = ("data", "_grad")
    data: Array
    _grad: Array | None

    def __init__(self, data: Array | Parameter) -> None:
        if isinstance(data, Parameter):
            data = data.data
        if not isinstance(data, np.ndarray):
            raise TypeError(f"data: expected a numpy.ndarray, got {type(data).__name__}")
        if data.dtype not in FLOAT_DTYPES:
            raise TypeError(f"data: expected dtype float32 or float64, got {data.dtype}")
        self.data = np.ascontiguousarray(data)
        self._grad = None

    @property
    def grad(self) -> Array | None:
        return self._grad

    @grad.setter
    def grad(self, value: Array | None) -> None:
        if value is not None:
            if not isinstance(value, np.ndarray):
                raise TypeError(f"grad: expected a numpy.ndarray or None, got {type(value).__name__}")
            if value.shape != self.data.shape:
                raise ValueError(f"grad: expected shape {shape_str(self.data.shape)}, got {shape_str(value.shape)}")
            if value.dtype != self.data.dtype:
                raise TypeError(f"grad: expected dtype {self.data.dtype}, got {value.dtype}")
            value = np.ascontiguousarray(value)
        self._grad = value

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.data.dtype

    @property
    def size(self) -> int:
        return self.data.size

    def zero_grad(self) -> None:
        self._grad = None

    def __repr__(self) -> str:
        return f"Parameter(shape={shape_str(self.data.shape)}, dtype={self.data.dtype})"
