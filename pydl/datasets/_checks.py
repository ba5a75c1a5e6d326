"""Argument checks shared by the loaders and generators of pydl.datasets."""
import numpy as np

from .._validate import FLOAT_DTYPES


def check_float_dtype(dtype):
    """``dtype`` as a numpy dtype, float32 or float64, else a TypeError naming it."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype: expected float32 or float64, got {dtype!r}") from None
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"dtype: expected float32 or float64, got {dt}")
    return dt
