"""Typed stub of pydl.data._augment (the Cython kernels of pydl/data/_augment.pyx; keep in step)."""
from typing import Any

import numpy.typing as npt

_Array = npt.NDArray[Any]

def rotate_bilinear(out: _Array, x: _Array, cos_t: _Array, sin_t: _Array, fill: float) -> None:
    """out, x are (N, C, H, W); cos_t, sin_t are (N,): bilinear rotation of each image about its centre."""

def crop_pad(out: _Array, x: _Array, top: _Array, left: _Array, padding: int, fill: float) -> None:
    """out is (N, C, h, w), x is (N, C, H, W); top, left are (N,): crop of x padded with ``fill``."""

def fill_boxes(out: _Array, y1: _Array, y2: _Array, x1: _Array, x2: _Array, fill: float) -> None:
    """out is (N, C, H, W), modified in place: out[n, :, y1[n]:y2[n], x1[n]:x2[n]] = fill (Cutout)."""
