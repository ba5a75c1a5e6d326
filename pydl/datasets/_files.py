"""Labelled data sets from files: .npz (arrays ``x``, ``y``) or .csv (the last column the label)."""
from __future__ import annotations

import os

import numpy as np

from .._typing import Array, DTypeLike
from .._validate import check_float_dtype


def load_file(path: str | os.PathLike[str], dtype: DTypeLike = np.float32) -> tuple[Array, Array]:
    """Load samples and labels from a .npz or .csv file.

    - ``.npz``: arrays ``x`` of shape (N, features) or (N, H, W), and ``y`` of shape (N,).
    - ``.csv``: comma-separated numbers, one sample per line, the label in the last column.
      The first line may be a header (it is skipped when it is not numeric); blank lines and
      ``#`` comments are ignored.

    Parameters
    ----------
    path : str or os.PathLike
        The file; its extension (.npz or .csv, any case) tells the format.
    dtype : float32 or float64, default float32
        dtype of the returned ``x``.

    Returns
    -------
    x : ndarray of shape (N, features) or (N, H, W), ``dtype``
        The samples, all finite.
    y : ndarray of shape (N,)
        The labels as stored (float64 for a .csv); map them to class ids yourself.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        An unknown extension, an unreadable file, a missing array, a CSV line that is not
        numbers or has a different number of values than the others (its line number is
        named), mismatched shapes, or a NaN / infinite sample (its row is named).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a str or os.PathLike, got {type(path).__name__}")
    path = os.fspath(path)
    dtype = check_float_dtype(dtype)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file: {path}")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npz":
        x, y = _read_npz(path)
    elif ext == ".csv":
        table = _read_csv(path)
        x, y = table[:, :-1], table[:, -1]
    else:
        raise ValueError(f"path: expected a .npz or .csv file, got {path}")
    if x.dtype.kind not in "fiub" or x.ndim not in (2, 3) or x.shape[0] == 0:
        raise ValueError(f"{path}: x must be a non-empty numeric array (N, features) or (N, H, W), "
                         f"got dtype {x.dtype} shape {x.shape}")
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"{path}: y must have shape ({x.shape[0]},), got {y.shape}")
    finite = np.isfinite(x).reshape(x.shape[0], -1).all(axis=1)
    if not finite.all():
        raise ValueError(f"{path}: x contains NaN or infinite values, first in sample {int(np.argmin(finite))} "
                         "(counting from 0)")
    return x.astype(dtype), y


def _read_npz(path):
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in ("x", "y") if k not in f.files]
            if missing:
                raise KeyError(missing, f.files)
            return f["x"], f["y"]
    except KeyError as e:
        missing, files = e.args
        raise ValueError(f"{path}: lacks array(s) {', '.join(missing)}; it holds {files}") from None
    except Exception as e:
        raise ValueError(f"{path}: cannot read as .npz: {e}") from None


def _read_csv(path):
    """The numbers of a CSV file as a float64 table (rows, columns), at least 2 columns."""
    rows = []
    with open(path, newline="") as f:
        for lineno, line in enumerate(f, 1):
            cells = line.split("#", 1)[0].strip()
            if not cells:
                continue
            cells = cells.split(",")
            try:
                row = [float(c) for c in cells]
            except ValueError:
                if lineno == 1:          # a header
                    continue
                bad = next(c for c in cells if not _is_number(c))
                raise ValueError(f"{path}: line {lineno}: cannot parse {bad.strip()!r} as a number") from None
            if rows and len(row) != len(rows[0]):
                raise ValueError(f"{path}: line {lineno}: expected {len(rows[0])} values (as the first "
                                 f"row), got {len(row)}")
            rows.append(row)
    if not rows:
        raise ValueError(f"{path}: no rows of numbers")
    if len(rows[0]) < 2:
        raise ValueError(f"{path}: expected at least 2 columns (features, then the label), got 1")
    return np.array(rows, dtype=np.float64)


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True
