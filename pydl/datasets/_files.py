"""Labelled data sets from files: .npz (arrays ``x``, ``y``) or .csv (features, then the label).

CSV rules (one place, used by :func:`load_file` and by ``python -m pydl train / predict``):

* fields are split by ``delimiter`` with Python's :mod:`csv` (quoted fields may hold the
  delimiter); spaces around a field are dropped; blank lines and lines starting with ``#`` are
  skipped; a UTF-8 byte-order mark is ignored;
* every row has as many fields as the first; the last field is the label (or target);
* **header**: with ``header=None`` the first row is a header when *none* of its feature fields
  (all but the last) is a number, data when all of them are; a first row with some numeric
  and some non-numeric feature fields is an error (a typo in the first sample is never taken
  for a header silently; pass ``header=True`` if it is one). A first row whose features are all
  numbers is a sample even when its label is a word (string labels need no header);
* errors name the 1-based line of the file (the header and skipped lines counted) and the
  1-based column (with its header name when there is one).
"""
from __future__ import annotations

import collections
import csv
import os

import numpy as np

from .._typing import Array, DTypeLike
from .._validate import check_float_dtype

#: What ``read_file`` returns: ``x`` and ``y`` as :func:`load_file`; ``lines`` the file line of
#: each sample (None for .npz); ``feature_names`` / ``target_name`` from a CSV header (else None).
Table = collections.namedtuple("Table", "x y lines feature_names target_name")


def load_file(path: str | os.PathLike[str], dtype: DTypeLike = np.float32, delimiter: str = ",",
              header: bool | None = None) -> tuple[Array, Array]:
    """Load samples and labels from a .npz or .csv file.

    - ``.npz``: arrays ``x`` of shape (N, features) or (N, H, W), and ``y`` of shape (N,)
      (numbers or strings; read with ``allow_pickle=False``).
    - ``.csv``: one sample per line, the features (numbers) then the label (a number or any
      text, e.g. a class name). Header detection, quoting and comments: see the module notes.

    Parameters
    ----------
    path : str or os.PathLike
        The file; its extension (.npz or .csv, any case) tells the format.
    dtype : float32 or float64, default float32
        dtype of the returned ``x``.
    delimiter : str of length 1, default ","
        The CSV field separator (e.g. ``";"`` or ``"\\t"``).
    header : bool or None, default None
        Whether the CSV's first row is a header; None detects it (module notes).

    Returns
    -------
    x : ndarray of shape (N, features) or (N, H, W), ``dtype``
        The samples, all finite.
    y : ndarray of shape (N,)
        The labels as stored: for a .csv float64 when every label is a number, else str
        (map them to class ids yourself, e.g. ``np.unique(y, return_inverse=True)``).

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        An unknown extension, an unreadable file, a missing array, a CSV field that is not a
        number, a row with a different number of fields than the first, mismatched shapes, or
        a NaN / infinite value (the line and column, or the sample, are named).
    """
    table = read_file(path, dtype, delimiter, header)
    return table.x, table.y


def read_file(path, dtype=np.float32, delimiter=",", header=None):
    """:func:`load_file`, returning a :data:`Table` (with the line of each CSV sample and the
    header's names)."""
    path, dtype, ext = check_args(path, dtype, delimiter, header)
    if ext == ".npz":
        x, y = read_npz(path)
        _check_arrays(path, x, y)
        return Table(x.astype(dtype), y, None, None, None)
    rows, lines, names = read_csv_rows(path, delimiter, header)
    if len(rows[0]) < 2:
        raise ValueError(f"{path}: expected at least 2 columns (features, then the label), got 1"
                         + _delimiter_hint(rows[0], delimiter))
    n_features = len(rows[0]) - 1
    x = csv_floats(path, rows, lines, names, n_features).astype(dtype)
    y = csv_labels(path, [r[-1] for r in rows], lines, n_features + 1)
    feature_names, target_name = (None, None) if names is None else (names[:-1], names[-1])
    return Table(x, y, np.asarray(lines), feature_names, target_name)


def check_args(path, dtype, delimiter, header):
    """The arguments of :func:`read_file` checked: (path as str, dtype, extension in lower case)."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a str or os.PathLike, got {type(path).__name__}")
    path = os.fspath(path)
    dtype = check_float_dtype(dtype)
    check_delimiter(delimiter)
    if header is not None and not isinstance(header, (bool, np.bool_)):
        raise TypeError(f"header: expected True, False or None, got {type(header).__name__}")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file: {path}")
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".npz", ".csv"):
        raise ValueError(f"path: expected a .npz or .csv file, got {path}")
    return path, dtype, ext


def check_delimiter(delimiter):
    """``delimiter`` if it is one character other than a quote or a line break; else an error."""
    if not isinstance(delimiter, str):
        raise TypeError(f"delimiter: expected a str of length 1, got {type(delimiter).__name__}")
    if len(delimiter) != 1 or delimiter in "\"\r\n":
        raise ValueError(f"delimiter: expected one character other than a quote or a line break, "
                         f"got {delimiter!r}")
    return delimiter


def _check_arrays(path, x, y):
    if x.dtype.kind not in "fiub" or x.ndim not in (2, 3) or x.shape[0] == 0:
        raise ValueError(f"{path}: x must be a non-empty numeric array (N, features) or (N, H, W), "
                         f"got dtype {x.dtype} shape {x.shape}")
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"{path}: y must have shape ({x.shape[0]},), got {y.shape}")
    if y.dtype.kind not in "fiubUS":
        raise ValueError(f"{path}: y must hold numbers or strings, got dtype {y.dtype}")
    finite = np.isfinite(x).reshape(x.shape[0], -1).all(axis=1)
    if not finite.all():
        raise ValueError(f"{path}: x contains NaN or infinite values, first in sample {int(np.argmin(finite))} "
                         "(counting from 0)")


def read_npz(path, need_y=True):
    """Arrays ``x`` and ``y`` of a .npz (``y`` None when absent and not ``need_y``); no pickle."""
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in ("x", "y")[:2 if need_y else 1] if k not in f.files]
            if missing:
                raise KeyError(missing, f.files)
            return f["x"], (f["y"] if "y" in f.files else None)
    except KeyError as e:
        missing, files = e.args
        raise ValueError(f"{path}: lacks array(s) {', '.join(missing)}; it holds {files}") from None
    except Exception as e:
        raise ValueError(f"{path}: cannot read as .npz: {e}") from None


# ---------------------------------------------------------------- CSV
def is_number(text):
    """Whether ``float(text)`` accepts ``text``."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_csv_rows(path, delimiter=",", header=None, n_features=None, feature_names=None):
    """The rows of a CSV file as stripped strings, their file lines, and the header.

    Parameters
    ----------
    path : str
    delimiter : str of length 1
    header : bool or None
        None: detect (module notes), looking at the first ``n_features`` fields of the first row.
    n_features : int, optional
        How many leading fields are features (default: all but the last).
    feature_names : list of str, optional
        Expected feature names: a first row starting with them is a header (even numeric ones).

    Returns
    -------
    rows : list of list of str
        At least one; every row has as many fields as the first.
    lines : list of int
        The 1-based file line where each row starts.
    names : list of str or None
        The header's fields.
    """
    rows, lines = [], []
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f, delimiter=delimiter, strict=True)
            start = 1
            for fields in reader:
                line, start = start, reader.line_num + 1
                fields = [c.strip() for c in fields]
                if (len(fields) <= 1 and not any(fields)) or fields[0].startswith("#"):
                    continue
                if rows and len(fields) != len(rows[0]):
                    raise ValueError(f"{path}: line {line}: expected {len(rows[0])} fields (as line "
                                     f"{lines[0]}), got {len(fields)}{_delimiter_hint(fields, delimiter)}")
                rows.append(fields)
                lines.append(line)
    except csv.Error as e:
        raise ValueError(f"{path}: line {reader.line_num}: {e}") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not a UTF-8 text file ({e})") from None
    names = None
    if rows and _is_header(path, rows[0], lines[0], header, n_features, feature_names, delimiter):
        names = rows.pop(0)
        lines.pop(0)
    if not rows:
        raise ValueError(f"{path}: no data rows" + (" (only a header)" if names else ""))
    return rows, lines, names


def _delimiter_hint(fields, delimiter):
    return f" (fields are split at {delimiter!r}: pass the file's delimiter)" if len(fields) == 1 else ""


def _is_header(path, first, line, header, n_features, feature_names, delimiter):
    if header is not None:
        return bool(header)
    features = first[:len(first) - 1 if n_features is None else n_features]
    if feature_names is not None and features == list(feature_names):
        return True
    numeric = [is_number(c) for c in features]
    if all(numeric):
        return False
    if not any(numeric):
        return True
    bad = numeric.index(False)
    raise ValueError(f"{path}: line {line}, column {bad + 1}: cannot parse {features[bad]!r} as a number, "
                     f"while other fields of this first row are numbers: a header or a sample with a typo? "
                     f"(pass header=True / --header if it is a header{_delimiter_hint(first, delimiter)})")


def column_name(col, names):
    """'column 3' or 'column 3 (alcohol)' for the 0-based column ``col``."""
    name = names[col] if names is not None and col < len(names) and names[col] else None
    return f"column {col + 1}" + (f" ({name})" if name else "")


def csv_floats(path, rows, lines, names, n_columns):
    """The first ``n_columns`` fields of every row as a finite float64 array (N, n_columns);
    errors name the line and the column."""
    try:
        table = np.array([[float(c) for c in r[:n_columns]] for r in rows], dtype=np.float64)
    except ValueError:
        for r, line in zip(rows, lines):
            for col, c in enumerate(r[:n_columns]):
                if not is_number(c):
                    raise ValueError(f"{path}: line {line}, {column_name(col, names)}: cannot parse "
                                     f"{c!r} as a number") from None
        raise
    table = table.reshape(len(rows), n_columns)
    bad = ~np.isfinite(table)
    if bad.any():
        i, col = (int(v[0]) for v in np.nonzero(bad))
        raise ValueError(f"{path}: line {lines[i]}, {column_name(col, names)}: {rows[i][col]!r} is not "
                         "finite (NaN or infinite values are not accepted)")
    return table


def csv_labels(path, cells, lines, column):
    """A label column: float64 when every cell is a (finite) number, else the str cells; an
    empty cell is an error naming its line."""
    for c, line in zip(cells, lines):
        if not c:
            raise ValueError(f"{path}: line {line}, column {column}: empty label")
    if all(is_number(c) for c in cells):
        y = np.array([float(c) for c in cells], dtype=np.float64)
        bad = ~np.isfinite(y)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"{path}: line {lines[i]}, column {column}: label {cells[i]!r} is not finite")
        return y
    return np.array(cells, dtype=str)
