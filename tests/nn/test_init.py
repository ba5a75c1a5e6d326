"""nn.init: PyTorch's formulas (bounds, standard deviations, gains), in place, seeded."""
import math

import numpy as np
import pytest

import pydl
from pydl import nn
from pydl.nn import init


def test_calculate_gain_matches_torch():
    torch = pytest.importorskip("torch")
    for nl, p in [("linear", None), ("sigmoid", None), ("tanh", None), ("relu", None), ("leaky_relu", None),
                  ("leaky_relu", 0.2), ("selu", None), ("conv2d", None)]:
        assert init.calculate_gain(nl, p) == pytest.approx(torch.nn.init.calculate_gain(nl, p))
    with pytest.raises(ValueError, match="nonlinearity"):
        init.calculate_gain("swish")


@pytest.mark.parametrize("shape", [(300, 200), (64, 8, 3, 3)])
def test_kaiming_and_xavier_spread(shape):
    pydl.manual_seed(0)
    rf = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    fan_in, fan_out = shape[1] * rf, shape[0] * rf
    a = np.empty(shape, np.float32)
    assert init.kaiming_uniform_(a, a=math.sqrt(5)) is a
    bound = math.sqrt(3) * math.sqrt(2 / 6) / math.sqrt(fan_in)
    assert np.abs(a).max() <= bound and np.abs(a).max() > 0.98 * bound
    init.kaiming_normal_(a, mode="fan_out", nonlinearity="relu")
    np.testing.assert_allclose(a.std(), math.sqrt(2) / math.sqrt(fan_out), rtol=0.03)
    init.xavier_uniform_(a, gain=2.0)
    b = 2.0 * math.sqrt(6 / (fan_in + fan_out))
    assert np.abs(a).max() <= b and np.abs(a).max() > 0.98 * b
    init.xavier_normal_(a)
    np.testing.assert_allclose(a.std(), math.sqrt(2 / (fan_in + fan_out)), rtol=0.03)


def test_simple_fills_and_parameter():
    p = nn.Parameter(np.empty((3, 4)))
    assert init.zeros_(p) is p and np.all(p.data == 0)
    assert np.all(init.ones_(p).data == 1)
    pydl.manual_seed(0)
    init.uniform_(p, -2, 3)
    assert p.data.min() >= -2 and p.data.max() <= 3
    big = np.empty(100000)
    init.normal_(big, 1.0, 0.5)
    np.testing.assert_allclose([big.mean(), big.std()], [1.0, 0.5], rtol=0.02)
    pydl.manual_seed(7)
    a = init.normal_(np.empty(5))
    pydl.manual_seed(7)
    np.testing.assert_array_equal(init.normal_(np.empty(5)), a)


def test_init_errors():
    with pytest.raises(ValueError, match="fewer than 2"):
        init.kaiming_uniform_(np.empty(3))
    with pytest.raises(ValueError, match="mode"):
        init.kaiming_normal_(np.empty((2, 2)), mode="fan")
    with pytest.raises(TypeError, match="tensor"):
        init.zeros_([1, 2])
    with pytest.raises(TypeError, match="tensor"):
        init.ones_(np.zeros(3, np.int64))
