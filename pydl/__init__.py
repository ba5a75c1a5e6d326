"""pydl: a small deep-learning core for the CPU.

C++ kernels (GEMM, activations, fused softmax-cross-entropy, optimizer steps) with runtime CPU
dispatch, under a Keras-easy, PyTorch-exact Python API. Arrays in and out are numpy arrays.
"""
__version__ = "0.1.0"



def _unbuilt_extensions():
    """The compiled modules missing beside this package's sources (an unbuilt checkout)."""
    import importlib.machinery
    import os
    here = os.path.dirname(os.path.abspath(__file__))
    return [f"pydl.{mod}" for mod, folder in (("_C", here), ("data._augment", os.path.join(here, "data")))
            if not any(os.path.exists(os.path.join(folder, mod.split(".")[-1] + suffix))
                       for suffix in importlib.machinery.EXTENSION_SUFFIXES)]


try:
    from . import _C  # noqa: F401
    from ._runtime import cpu_info, get_num_threads, set_num_threads
    from ._random import manual_seed
    from ._grad_mode import is_grad_enabled, no_grad
    from ._io import load, save
    from . import ops, nn, optim, data, train, model_selection, datasets  # noqa: E402
except ImportError as exc:
    _missing = _unbuilt_extensions()
    if not _missing:
        raise
    raise ImportError(
        f"pydl is imported from {__path__[0]}, where its compiled extensions are not built "
        f"({', '.join(_missing)} missing). Build them in place with `pip install -e .` (or "
        "`python setup.py build_ext --inplace`), or run from outside the checkout so that an "
        "installed pydl is imported.") from exc
from . import distributed  # noqa: E402  (mpi4py is imported by distributed.init() only)



def __getattr__(name):
    # pydl.sklearn and pydl.onnx are imported on first use only (optional extras)
    if name in ("sklearn", "onnx"):
        import importlib
        return importlib.import_module("." + name, __name__)
    raise AttributeError(f"module 'pydl' has no attribute {name!r}")


__all__ = [
    "__version__", "cpu_info", "get_num_threads", "set_num_threads", "manual_seed", "no_grad", "is_grad_enabled", "save", "load",
    "ops", "nn", "optim", "data", "train", "model_selection", "datasets", "distributed",
]
