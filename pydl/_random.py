"""The global random state behind weight init, dropout, shuffling and augmentation.

``pydl.manual_seed(seed)`` resets it. Components draw from ``generator()`` (a numpy
Generator) or take a fresh 64-bit seed for a C++ RNG from ``next_seed()``.
"""
from __future__ import annotations

import numpy as np

from ._typing import SeedLike
from ._validate import check_int as _check_int

_generator = np.random.default_rng()


def manual_seed(seed: int) -> None:
    """Seed pydl's global random state (init, dropout, shuffling, augmentation)."""
    global _generator
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed: expected an int, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed: expected a non-negative int, got {seed}")
    _generator = np.random.default_rng(int(seed))


def generator() -> np.random.Generator:
    """The global numpy Generator."""
    return _generator


def next_seed() -> int:
    """A fresh 64-bit seed drawn from the global generator (for the C++ RNGs)."""
    return int(_generator.integers(0, 2**63 - 1))


def make_rng(seed: SeedLike, name: str = "seed") -> np.random.Generator | None:
    """A numpy Generator for ``seed``: None -> None (meaning: use pydl's global generator at
    draw time), an int >= 0 -> ``np.random.default_rng(seed)``, a Generator -> itself."""
    if seed is None or isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(_check_int(seed, name, low=0))


def rng_or_global(rng: np.random.Generator | None) -> np.random.Generator:
    """``rng``, or pydl's global generator (looked up now, so a later pydl.manual_seed counts)."""
    return rng if rng is not None else generator()
