"""pydl.datasets: a small real data set bundled with the package, and synthetic generators.

- :func:`load_digits`: the UCI optical handwritten digits (1797 images 8x8, 10 classes),
  read from a copy inside the package (no network, no scikit-learn needed).
- :func:`load_mnist1d`: MNIST-1D (Greydanus 2020), built locally by the optional ``mnist1d``
  package (``pip install 'pydl[mnist1d]'``).
- :func:`make_moons`, :func:`make_spirals`: 2-D classification toys.
- :func:`make_regression_1d`: y = sin(2 pi x) + noise, for bias-variance and over-fitting demos.
- :func:`load_file`: samples and labels (numbers or names) from a .npz (arrays ``x``, ``y``)
  or a .csv (last column the label; delimiter, header detection, errors naming line and column).
"""
from ._digits import Bunch, load_digits
from ._files import load_file
from ._mnist1d import load_mnist1d
from ._synthetic import make_moons, make_regression_1d, make_spirals

__all__ = ["Bunch", "load_digits", "load_file", "load_mnist1d", "make_moons", "make_spirals", "make_regression_1d"]
