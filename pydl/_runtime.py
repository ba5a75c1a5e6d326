"""CPU information and the kernel thread count."""
from __future__ import annotations

import os
import warnings
from typing import Any

from . import _C

ISA_NAMES = ("avx512", "avx2", "generic")


def _check_isa_env():
    """Warn (RuntimeWarning, once, at import) when ``PYDL_ISA`` holds a value the kernels ignore.

    ``_C`` reads ``PYDL_ISA`` itself and only understands ``avx512``, ``avx2`` and ``generic``
    (each lowers the detected ISA, never raises it); anything else used to be ignored silently.
    An empty value counts as unset.
    """
    value = os.environ.get("PYDL_ISA")
    if value and value not in ISA_NAMES:
        warnings.warn(
            f"PYDL_ISA={value!r} is not a known ISA and is ignored: expected one of "
            f"{', '.join(repr(n) for n in ISA_NAMES)}; using {_C.active_isa()!r} "
            f"(detected {_C.detected_isa()!r})", RuntimeWarning, stacklevel=3)


_check_isa_env()


def cpu_info() -> dict[str, Any]:
    """Describe the CPU dispatch in use.

    Returns
    -------
    dict
        ``isa``: the kernels in use ("avx512", "avx2" or "generic"; ``PYDL_ISA`` can lower it),
        ``detected_isa``: the best the CPU supports, ``num_threads``: kernel threads,
        ``available_cpus``: CPUs this process may run on.
    """
    return {
        "isa": _C.active_isa(),
        "detected_isa": _C.detected_isa(),
        "num_threads": _C.get_num_threads(),
        "available_cpus": _C.available_cpus(),
    }


def get_num_threads() -> int:
    """Number of threads the kernels use (default: the CPUs available, or ``PYDL_NUM_THREADS``)."""
    return _C.get_num_threads()


def set_num_threads(n: int) -> None:
    """Set the number of kernel threads (``1 <= n <= 1024``). Results do not depend on it, bit for bit."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n: expected an int, got {type(n).__name__}")
    if not 1 <= n <= _C.MAX_THREADS:
        raise ValueError(f"n: expected 1 <= n <= {_C.MAX_THREADS}, got {n}")
    _C.set_num_threads(n)
