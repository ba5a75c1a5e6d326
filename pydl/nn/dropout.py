"""nn.Dropout (inverted, C++ counter-based RNG) and nn.GaussianNoise."""
import numpy as np

from .. import _C
from .._random import generator, next_seed
from .module import Module, check_grad, check_input, no_forward


def _check_p(p):
    if isinstance(p, bool) or not isinstance(p, (int, float, np.floating, np.integer)):
        raise TypeError(f"p: expected a float, got {type(p).__name__}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p: expected a probability in [0, 1], got {p}")
    return float(p)


class Dropout(Module):
    """Inverted dropout: in training y = x * m / (1 - p) with m ~ Bernoulli(1 - p) per element
    (p = 1 gives zeros); identity in eval. Each training forward draws a fresh seed from
    pydl's global generator (so ``pydl.manual_seed`` reproduces the masks); backward reuses the
    forward's mask: dx = dy * m / (1 - p).
    """

    def __init__(self, p=0.5):
        super().__init__()
        self.p = _check_p(p)
        self._mask = None
        self._shape = None

    def forward(self, x):
        check_input(x)
        self._shape, self._dtype = x.shape, x.dtype
        if not self.training or self.p == 0.0:
            self._mask = None
            return x
        x = np.ascontiguousarray(x)
        y = np.empty_like(x)
        mask = np.empty(x.shape, np.uint8)
        _C.dropout_forward(x, y, mask, self.p, next_seed())
        self._mask = mask
        return y

    def backward(self, grad_out):
        if self._shape is None:
            raise no_forward(self)
        check_grad(grad_out, self._shape, self._dtype)
        if self._mask is None:
            return grad_out
        g = np.ascontiguousarray(grad_out)
        gx = np.empty_like(g)
        _C.dropout_backward(g, self._mask, gx, self.p)
        return gx

    def extra_repr(self):
        return f"p={self.p}"


class GaussianNoise(Module):
    """y = x + std * n, n ~ N(0, 1) from pydl's global generator, in training; identity in eval.
    The noise does not depend on x, so dx = dy.
    """

    def __init__(self, std):
        super().__init__()
        if isinstance(std, bool) or not isinstance(std, (int, float, np.floating, np.integer)):
            raise TypeError(f"std: expected a float, got {type(std).__name__}")
        if not std >= 0:
            raise ValueError(f"std: expected a non-negative float, got {std}")
        self.std = float(std)
        self._shape = None

    def forward(self, x):
        check_input(x)
        self._shape, self._dtype = x.shape, x.dtype
        if not self.training or self.std == 0.0:
            return x
        noise = generator().standard_normal(x.shape, dtype=x.dtype)
        noise *= self.std
        noise += x
        return noise

    def backward(self, grad_out):
        if self._shape is None:
            raise no_forward(self)
        check_grad(grad_out, self._shape, self._dtype)
        return grad_out

    def extra_repr(self):
        return f"std={self.std}"
