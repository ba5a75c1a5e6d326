"""pydl.datasets.load_file: .npz and .csv parsing, and errors naming the path and the line / sample."""
import pathlib

import numpy as np
import pytest

from pydl.datasets import load_file


def blobs(n=12, d=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), np.arange(n) % 3


def test_npz_flat_and_images(tmp_path):
    x, y = blobs()
    np.savez(tmp_path / "a.npz", x=x, y=y)
    xa, ya = load_file(str(tmp_path / "a.npz"))
    assert xa.dtype == np.float32 and xa.shape == (12, 3)
    np.testing.assert_array_equal(xa, x.astype(np.float32))
    np.testing.assert_array_equal(ya, y)
    images = np.arange(2 * 4 * 4, dtype=np.uint8).reshape(2, 4, 4)
    with open(tmp_path / "IMG.NPZ", "wb") as f:         # the extension in any case
        np.savez(f, x=images, y=np.array([0, 1]))
    xi, _ = load_file(pathlib.Path(tmp_path / "IMG.NPZ"), dtype=np.float64)
    assert xi.shape == (2, 4, 4) and xi.dtype == np.float64
    np.testing.assert_array_equal(xi, images)


def test_csv_header_comments_and_blank_lines(tmp_path):
    x, y = blobs()
    path = tmp_path / "t.csv"
    np.savetxt(path, np.column_stack([x, y]), delimiter=",", header="a,b,c,label", comments="")
    with open(path, "a") as f:
        f.write("\n# a comment line\n")
    xc, yc = load_file(path)
    np.testing.assert_array_equal(xc, x.astype(np.float32))
    assert yc.dtype == np.float64
    np.testing.assert_array_equal(yc, y)
    np.testing.assert_array_equal(load_file(path)[0], np.loadtxt(path, delimiter=",", skiprows=1)[:, :-1]
                                  .astype(np.float32))


def _npz(**arrays):
    return lambda path: np.savez(path, **arrays)


def _text(text):
    return lambda path: path.write_text(text)


X, Y = blobs()
X_INF = X.copy()
X_INF[4, 1] = np.inf
BAD_FILES = [  # (file name, how to write it (None: no file), exception, message)
    ("missing.npz", None, FileNotFoundError, "no such file: .*missing.npz"),
    ("noy.npz", _npz(x=X), ValueError, r"noy.npz: lacks array\(s\) y; it holds \['x'\]"),
    ("junk.npz", lambda path: path.write_bytes(b"not a zip"), ValueError, "junk.npz: cannot read as .npz"),
    ("data.txt", _text("1,2\n"), ValueError, "path: expected a .npz or .csv file, got .*data.txt"),
    ("text.csv", _text("a,b\n1,2\n3,x\n"), ValueError, "text.csv: line 3: cannot parse 'x' as a number"),
    ("ragged.csv", _text("1,2,0\n3,4,1\n5,1\n"), ValueError, "ragged.csv: line 3: expected 3 values .*got 2"),
    ("one.csv", _text("1\n2\n"), ValueError, "one.csv: expected at least 2 columns"),
    ("empty.csv", _text("a,b\n"), ValueError, "empty.csv: no rows of numbers"),
    ("inf.npz", _npz(x=X_INF, y=Y), ValueError, "inf.npz: x contains NaN or infinite values, first in sample 4"),
    ("short.npz", _npz(x=X, y=Y[:-1]), ValueError, r"short.npz: y must have shape \(12,\), got \(11,\)"),
    ("flat.npz", _npz(x=X[:, 0], y=Y), ValueError, r"flat.npz: x must be a non-empty numeric array .* shape \(12,\)"),
]


@pytest.mark.parametrize("name, write, exc, match", BAD_FILES, ids=[case[0] for case in BAD_FILES])
def test_errors_name_the_path_and_the_line(tmp_path, name, write, exc, match):
    if write is not None:
        write(tmp_path / name)
    with pytest.raises(exc, match=match):
        load_file(tmp_path / name)


def test_bad_arguments(tmp_path):
    with pytest.raises(TypeError, match="path: expected a str or os.PathLike, got int"):
        load_file(3)
    with pytest.raises(TypeError, match="dtype: expected float32 or float64, got int32"):
        load_file(tmp_path / "a.npz", dtype=np.int32)
