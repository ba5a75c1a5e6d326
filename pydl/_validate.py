"""Input checks shared by the Python API: errors name the argument, what was expected and what came."""
import math
import numbers

import operator

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
    x = np.ascontiguousarray(x)
    return x if x.flags.aligned else x.copy()  # the kernels read aligned elements only


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


# ----------------------------------------------------------------- semantic checks of pydl.nn
def check_input(x, dtype=None, name="input"):
    """A layer's input: an ndarray of float32/float64, or of the layer's ``dtype`` when given."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(x).__name__}")
    if dtype is not None:
        if x.dtype != dtype:
            raise TypeError(f"{name}: expected dtype {dtype} (the layer's dtype), got {x.dtype}: "
                            + dtype_fix(x.dtype, dtype))
    elif x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name}: expected dtype float32 or float64, got {x.dtype}: "
                        "cast it with x.astype(np.float32)")


def dtype_fix(got, layer_dtype):
    """How to make data of dtype ``got`` meet a layer of ``layer_dtype``: cast the data, or (for
    the other float dtype) convert the model, as PyTorch's ``.double()`` / ``.float()``."""
    layer_dtype = np.dtype(layer_dtype)
    cast = f"cast the data with x.astype(np.{layer_dtype.name})"
    if got in FLOAT_DTYPES and got != layer_dtype:
        convert = "model.double()" if got == np.float64 else "model.float()"
        return f"{cast}, or convert the model to {got} with {convert}"
    return cast


def check_array(x, name="input"):
    """Any numpy array (layers that only reshape or pass their input through)."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(x).__name__}")


def check_min_ndim(x, ndim, name="input"):
    if x.ndim < ndim:
        raise ValueError(f"{name}: expected at least {ndim} dimension(s), got shape {shape_str(x.shape)}")


def check_batch_stats(x, name="input"):
    """Batch statistics (BatchNorm in training) need more than one value per channel."""
    if x.shape[0] < 2:
        raise ValueError(f"{name}: expected more than 1 value per channel when training, got shape "
                         f"{shape_str(x.shape)}")


def flatten_dims(shape, start_dim, end_dim, name="input"):
    """The axes ``start_dim..end_dim`` (negative from the end) of ``shape`` as non-negative (s, e)."""
    nd = len(shape)
    s = start_dim + nd if start_dim < 0 else start_dim
    e = end_dim + nd if end_dim < 0 else end_dim
    if nd == 0 or not (0 <= s < nd and 0 <= e < nd) or s > e:
        raise ValueError(f"{name}: cannot flatten dims {start_dim}..{end_dim} of shape {shape_str(shape)}")
    return s, e


def check_shape(value, name, ndim):
    """A shape argument: a sequence of ``ndim`` non-negative ints; returned as a tuple. The length is
    checked before the entries are read, so a huge array passed by mistake fails at once."""
    try:
        n = len(value)
    except TypeError:
        raise TypeError(f"{name}: expected a sequence of {ndim} ints, got {type(value).__name__}") from None
    if n != ndim:
        raise ValueError(f"{name}: expected {ndim} dimensions, got {n}")
    try:
        out = tuple(operator.index(e) if not isinstance(e, bool) else -1 for e in value)
    except TypeError:
        raise TypeError(f"{name}: expected a sequence of {ndim} ints, got {tuple(value)}") from None
    if any(e < 0 for e in out):
        raise ValueError(f"{name}: expected non-negative ints, got {tuple(value)}")
    return out


def check_same_shape(y, ref, what, name="module"):
    """A Residual's branch output ``y`` must be an array shaped like ``ref`` (described by ``what``)."""
    if not isinstance(y, np.ndarray) or not isinstance(ref, np.ndarray) or y.shape != ref.shape:
        got = shape_str(y.shape) if isinstance(y, np.ndarray) else type(y).__name__
        expected = shape_str(ref.shape) if isinstance(ref, np.ndarray) else type(ref).__name__
        raise ValueError(f"{name}: Residual needs an output shaped like {what} {expected}, got {got}")


def check_features(x, n, layer, ndim=None):
    """The last axis of ``x`` holds ``n`` features (and ``x`` has ``ndim`` dims when given).

    ``layer`` is the layer's short repr used in the message, e.g. "Linear(64, 10)".
    """
    shape = x.shape
    if not shape or shape[-1] != n or (ndim is not None and len(shape) != ndim):
        expected = "(N, " + str(n) + ")" if ndim == 2 else "(*, " + str(n) + ")"
        raise ValueError(f"input: expected shape {expected} for {layer}, got {shape_str(shape)}")


def check_grad(grad_out, out_shape, dtype, name="grad_out"):
    """``grad_out`` must match the shape and dtype of the forward output it is the gradient of."""
    if not isinstance(grad_out, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(grad_out).__name__}")
    if grad_out.shape != out_shape:
        raise ValueError(f"{name}: expected shape {shape_str(out_shape)} (the pending forward call's output), "
                         f"got {shape_str(grad_out.shape)}")
    if grad_out.dtype != dtype:
        raise TypeError(f"{name}: expected dtype {dtype} (the pending forward call's output), got {grad_out.dtype}")


def no_pending_call(module):
    """The error of a backward with no unconsumed forward call to take gradients through."""
    return RuntimeError(f"{type(module).__name__}.backward called before forward: no pending forward call "
                        "(each backward consumes one call, last in first out; calls inside pydl.no_grad() "
                        "save nothing, and zero_grad() drops unconsumed ones; a layer that ran fused in a "
                        "Sequential's call is backpropagated by the Sequential's backward)")


def check_float_dtype(dtype, name="dtype"):
    """Return ``np.dtype(dtype)`` if it is float32 or float64, else raise TypeError."""
    try:  # (np.dtype(None) would be float64)
        dt = None if dtype is None else np.dtype(dtype)
    except TypeError:  # not a dtype at all: reported as given
        dt = None
    if dt is None or dt not in FLOAT_DTYPES:  # (None == float64 for numpy: test it first)
        raise TypeError(f"{name}: expected float32 or float64, got {repr(dtype) if dt is None else dt}")
    return dt


def check_int(value, name, low=0, allow_none=False):
    """An int (not bool) >= ``low`` (no bound when ``low`` is None), or None when ``allow_none``;
    returns it as a Python int."""
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an int{' or None' if allow_none else ''}, got {type(value).__name__}")
    if low is not None and value < low:
        kind = {0: "a non-negative int", 1: "a positive int"}.get(low, f"an int >= {low}")
        raise ValueError(f"{name}: expected {kind}, got {value}")
    return int(value)


def check_real(value, name, low=None, high=None, low_open=False):
    """A real number (not bool) in [low, high] (``low_open``: (low, high]); returns a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected a float, got {type(value).__name__}")
    v = float(value)
    bad_low = low is not None and (v <= low if low_open else v < low)
    if v != v or bad_low or (high is not None and v > high):
        lo = "" if low is None else ("(" if low_open else "[") + f"{low}, "
        hi = "inf)" if high is None else f"{high}]"
        raise ValueError(f"{name}: expected a float in {lo or '(-inf, '}{hi}, got {value}")
    return v


# ----------------------------------------------------------------- scalar arguments
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
