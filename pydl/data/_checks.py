"""Argument checks and random-state handling shared by pydl.data, pydl.datasets, pydl.model_selection."""
import math
import numbers

import numpy as np

from .. import _random


def check_int(value, name, low=None, allow_none=False):
    """An int (not bool) >= ``low``, or None when ``allow_none``."""
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an int{' or None' if allow_none else ''}, "
                        f"got {type(value).__name__}")
    if low is not None and value < low:
        raise ValueError(f"{name}: expected an int >= {low}, got {value}")
    return int(value)


def check_float(value, name, low=None, high=None, low_open=False, high_open=False):
    """A finite real number in [low, high] (ends open where asked)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{name}: expected a number {'>' if low_open else '>='} {low}, got {value}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ValueError(f"{name}: expected a number {'<' if high_open else '<='} {high}, got {value}")
    return value


def check_bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected a bool, got {type(value).__name__}")
    return bool(value)


def make_rng(seed, name="seed"):
    """A numpy Generator for ``seed``: None -> None (meaning: use pydl's global generator at
    draw time), an int >= 0 -> ``np.random.default_rng(seed)``, a Generator -> itself."""
    if seed is None or isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(check_int(seed, name, low=0))


def rng_or_global(rng):
    """``rng``, or pydl's global generator (looked up now, so a later pydl.manual_seed counts)."""
    return rng if rng is not None else _random.generator()
