"""Grad mode: whether a module call keeps what its backward needs.

``with pydl.no_grad():`` (or ``@pydl.no_grad()`` on a function) runs module calls that save
nothing, as ``torch.no_grad``: inference, metrics and evaluation add no pending calls and hold no
activations. The mode is per thread and nests; leaving the block restores the previous mode.
"""
import functools
import threading

class _GradMode(threading.local):
    enabled = True  # the class-level default: a thread that never entered no_grad reads it at once


_local = _GradMode()


def is_grad_enabled():
    """True unless the calling thread is inside ``pydl.no_grad()``."""
    return _local.enabled


class no_grad:
    """Context manager (and decorator) in which module calls save no state for backward."""

    def __enter__(self):
        self._prev = is_grad_enabled()
        _local.enabled = False
        return self

    def __exit__(self, *exc):
        _local.enabled = self._prev
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with no_grad():
                return fn(*args, **kwargs)

        return wrapper
