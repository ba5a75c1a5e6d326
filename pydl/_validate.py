"""Input checks shared by the Python API: errors name the argument, what was expected and what came."""
import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def shape_str(shape):
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def as_float_array(x, name, ndim=None, min_ndim=None, dtype=None):
    """Return ``x`` as a C-contiguous float32/float64 ndarray, or raise.

    Parameters
    ----------
    x : array_like
    name : str
        Argument name for error messages.
    ndim, min_ndim : int, optional
        Required (minimum) number of dimensions.
    dtype : numpy dtype, optional
        Required dtype; otherwise float32 and float64 are accepted as they are.

    Raises
    ------
    TypeError
        ``x`` is not a numpy array of float32/float64 (or of ``dtype``).
    ValueError
        Wrong number of dimensions.
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(x).__name__}")
    if dtype is not None:
        if x.dtype != np.dtype(dtype):
            raise TypeError(f"{name}: expected dtype {np.dtype(dtype)}, got {x.dtype}")
    elif x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name}: expected dtype float32 or float64, got {x.dtype}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array, got shape {shape_str(x.shape)}")
    if min_ndim is not None and x.ndim < min_ndim:
        raise ValueError(f"{name}: expected at least {min_ndim} dimensions, got shape {shape_str(x.shape)}")
    return np.ascontiguousarray(x)


def check_out(out, name, shape, dtype):
    """Check a caller-provided output array: exact shape and dtype, C-contiguous, writeable."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != np.dtype(dtype):
        raise TypeError(f"{name}: expected dtype {np.dtype(dtype)}, got {out.dtype}")
    if tuple(out.shape) != tuple(shape):
        raise ValueError(f"{name}: expected shape {shape_str(shape)}, got {shape_str(out.shape)}")
    if not out.flags.c_contiguous:
        raise ValueError(f"{name}: expected a C-contiguous array")
    if not out.flags.writeable:
        raise ValueError(f"{name}: array is read-only")
    return out
