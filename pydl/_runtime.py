"""CPU information and the kernel thread count."""
from . import _C


def cpu_info():
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


def get_num_threads():
    """Number of threads the kernels use (default: the CPUs available, or ``PYDL_NUM_THREADS``)."""
    return _C.get_num_threads()


def set_num_threads(n):
    """Set the number of kernel threads (``1 <= n <= 1024``). Results do not depend on it, bit for bit."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n: expected an int, got {type(n).__name__}")
    if not 1 <= n <= _C.MAX_THREADS:
        raise ValueError(f"n: expected 1 <= n <= {_C.MAX_THREADS}, got {n}")
    _C.set_num_threads(n)
