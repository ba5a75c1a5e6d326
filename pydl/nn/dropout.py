"""nn.Dropout (inverted, C++ counter-based RNG) and nn.GaussianNoise."""
from __future__ import annotations

import numpy as np

from .. import ops
from .._random import generator, next_seed
from .._typing import Array
from .._validate import check_input, check_real
from .module import Module


class Dropout(Module):
    """Inverted dropout: in training y = x * m / (1 - p) with m ~ Bernoulli(1 - p) per element
    (p = 1 gives zeros); identity in eval. Each training forward draws a fresh seed from
    pydl's global generator (so ``pydl.manual_seed`` reproduces the masks); backward reuses that
    call's mask: dx = dy * m / (1 - p).
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = check_real(p, "p", 0.0, 1.0)

    def forward(self, x: Array) -> Array:
        check_input(x)
        if not self.training or self.p == 0.0:
            return self._save_for_backward(x, None, 0.0)
        y, mask = ops.dropout(x, self.p, next_seed())
        return self._save_for_backward(y, mask, self.p)

    def backward(self, grad_out: Array) -> Array:
        mask, p = self._saved_for_backward(grad_out)
        return grad_out if mask is None else ops.dropout_backward(grad_out, mask, p)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class GaussianNoise(Module):
    """y = x + std * n, n ~ N(0, 1) from pydl's global generator, in training; identity in eval.
    The noise does not depend on x, so dx = dy.
    """

    def __init__(self, std: float) -> None:
        super().__init__()
        self.std = check_real(std, "std", 0.0)

    def forward(self, x: Array) -> Array:
        check_input(x)
        if not self.training or self.std == 0.0:
            return self._save_for_backward(x)
        noise = generator().standard_normal(x.shape, dtype=x.dtype)
        noise *= self.std
        noise += x
        return self._save_for_backward(noise)

    def backward(self, grad_out: Array) -> Array:
        self._saved_for_backward(grad_out)
        return grad_out

    def extra_repr(self) -> str:
        return f"std={self.std}"
