"""Grad mode: whether a module call keeps what its backward needs.

``with pydl.no_grad():`` (or ``@pydl.no_grad()`` on a function) runs module calls that save
nothing, as ``torch.no_grad``: inference, metrics and evaluation add no pending calls and hold no
activations. The mode is per thread and nests; leaving the block restores the previous mode.
"""
from __future__ import annotations

import functools
import threading
from typing import Any, Callable, TypeVar

_F = TypeVar("_F", bound=Callable[..., Any])


class _GradMode(threading.local):
    enabled = True  # the class-level default: a thread that never entered no_grad reads it at once


_local = _GradMode()


def is_grad_enabled() -> bool:
    """True unless the calling thread is inside ``pydl.no_grad()``."""
    return _local.enabled


class no_grad:
    """Context manager (and decorator) in which module calls save no state for backward."""

    def __enter__(self) -> no_grad:
        self._prev = is_grad_enabled()
        _local.enabled = False
        return self

    def __exit__(self, *exc: object) -> None:
        _local.enabled = self._prev

    def __call__(self, fn: _F) -> _F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with no_grad():
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]
