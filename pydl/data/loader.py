"""DataLoader: mini-batches over in-memory numpy arrays."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .._random import make_rng, rng_or_global
from .._typing import Array, SeedLike
from .._validate import check_bool, check_int


def shard_range(n, rank, world_size):
    """The samples [lo, hi) of ``n`` that rank ``rank`` of ``world_size`` takes: contiguous,
    lo = n * rank // world_size, hi = n * (rank + 1) // world_size (sizes differ by at most one)."""
    return n * rank // world_size, n * (rank + 1) // world_size


def _check_shard(shard):
    if shard is None:
        return None
    if (not isinstance(shard, (tuple, list)) or len(shard) != 2
            or any(isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) for v in shard)):
        raise TypeError(f"shard: expected a pair of ints (rank, world_size), got {shard!r}")
    r, k = int(shard[0]), int(shard[1])
    if k < 1 or not 0 <= r < k:
        raise ValueError(f"shard: expected (rank, world_size) with world_size >= 1 and 0 <= rank < "
                         f"world_size, got {shard!r}")
    return r, k


def _as_array(a, name):
    try:
        return np.asarray(a)
    except ValueError as e:  # ragged nested lists
        raise ValueError(f"{name}: cannot be made an array: {e}") from None


class DataLoader:
    """Iterate over ``(x_batch, y_batch)`` mini-batches of in-memory arrays.

    Parameters
    ----------
    x : ndarray of shape (n_samples, ...)
    y : ndarray of shape (n_samples, ...), optional
        Targets; when None the loader yields ``x_batch`` alone.
    batch_size : int or None, default 32
        Samples per batch; None means one batch holding every sample (full-batch GD).
    shuffle : bool, default False
        Draw a new permutation at the start of every epoch (every ``iter()``).
    drop_last : bool, default False
        Drop the last batch when it is smaller than ``batch_size``.
    transform : callable, optional
        Called on every batch as ``transform(x_batch, y_batch)`` (returns ``(x, y)``), or
        ``transform(x_batch)`` when ``y`` is None (returns ``x``). See :mod:`pydl.data.transforms`.
        Without shuffling the batches are views into ``x``/``y``: a transform must return new
        arrays rather than write into its inputs (every pydl transform does).
    seed : int, optional
        Seed of the loader's own Generator (``np.random.default_rng(seed)``, created once, so
        successive epochs differ but the sequence is reproducible). When None, shuffling draws
        from pydl's global generator, which ``pydl.manual_seed`` resets.
    shard : (rank, world_size), optional
        Data-parallel training (:mod:`pydl.distributed`): ``batch_size`` is the global batch,
        and this loader yields rank ``rank``'s slice of each global batch, the samples
        ``[nb * rank // world_size, nb * (rank + 1) // world_size)`` of a global batch of nb
        (sizes differ by at most one). Every rank builds the loader on the same x, y with the same
        ``seed`` (or seeds pydl alike, when ``seed`` is None), so all draw the same permutation and
        the K slices of each batch are disjoint and cover it. A last global batch with fewer than
        ``world_size`` samples joins the batch before it, so no rank gets an empty batch.

    ``len(loader)`` is the number of batches per epoch: ceil(n / batch_size), or
    floor(n / batch_size) with ``drop_last`` (one fewer when a small last batch joins the one
    before it under ``shard``).
    """

    def __init__(self, x: Array, y: Array | None = None, batch_size: int | None = 32, shuffle: bool = False,
                 drop_last: bool = False, transform: Callable[..., Any] | None = None, seed: SeedLike = None,
                 shard: tuple[int, int] | None = None) -> None:
        if not isinstance(x, np.ndarray):
            x = _as_array(x, "x")
        if x.ndim == 0:
            raise ValueError("x: expected an array of samples (at least 1-D), got a scalar")
        n = x.shape[0]
        if n == 0:
            raise ValueError("x: expected at least one sample, got an empty array")
        if y is not None:
            if not isinstance(y, np.ndarray):
                y = _as_array(y, "y")
            if y.ndim == 0 or y.shape[0] != n:
                ny = "a scalar" if y.ndim == 0 else f"{y.shape[0]} samples"
                raise ValueError(f"x and y: expected the same number of samples, got x with {n} "
                                 f"samples and y with {ny}")
        self.batch_size = check_int(batch_size, "batch_size", low=1, allow_none=True)
        self.shuffle = check_bool(shuffle, "shuffle")
        self.drop_last = check_bool(drop_last, "drop_last")
        if transform is not None and not callable(transform):
            raise TypeError(f"transform: expected a callable or None, got {type(transform).__name__}")
        self.x, self.y = x, y
        self.transform = transform
        self._rng = make_rng(seed)
        self.shard = _check_shard(shard)

    @property
    def n_samples(self) -> int:
        return self.x.shape[0]

    def _effective_batch(self) -> int:
        return self.n_samples if self.batch_size is None else self.batch_size

    def _bounds(self) -> list[int]:
        """Start of every global batch, then n (the end of the last)."""
        n, b = self.n_samples, self._effective_batch()
        ends = list(range(0, n, b)) + [n]
        if self.drop_last and n % b:
            ends.pop()
        if self.shard is not None and len(ends) > 2 and ends[-1] - ends[-2] < self.shard[1]:
            del ends[-2]                          # a last batch smaller than world_size joins the one before
        return ends

    def __len__(self) -> int:
        return len(self._bounds()) - 1

    def __iter__(self) -> Iterator[Any]:
        bounds = self._bounds()
        order = rng_or_global(self._rng).permutation(self.n_samples) if self.shuffle else None
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            if self.shard is not None:
                a, b = shard_range(hi - lo, *self.shard)
                lo, hi = lo + a, lo + b
            if order is None:
                xb = self.x[lo:hi]
                yb = None if self.y is None else self.y[lo:hi]
            else:
                idx = order[lo:hi]
                xb = self.x[idx]
                yb = None if self.y is None else self.y[idx]
            if self.y is None:
                yield xb if self.transform is None else self.transform(xb)
            elif self.transform is None:
                yield xb, yb
            else:
                yield self.transform(xb, yb)
