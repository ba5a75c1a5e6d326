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


def test_errors_name_the_path_and_the_line(tmp_path):
    x, y = blobs()
    with pytest.raises(FileNotFoundError, match="no such file: .*missing.npz"):
        load_file(tmp_path / "missing.npz")
    np.savez(tmp_path / "noy.npz", x=x)
    with pytest.raises(ValueError, match=r"noy.npz: lacks array\(s\) y; it holds \['x'\]"):
        load_file(tmp_path / "noy.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="junk.npz: cannot read as .npz"):
        load_file(tmp_path / "junk.npz")
    (tmp_path / "data.txt").write_text("1,2\n")
    with pytest.raises(ValueError, match="path: expected a .npz or .csv file, got .*data.txt"):
        load_file(tmp_path / "data.txt")
    (tmp_path / "text.csv").write_text("a,b\n1,2\n3,x\n")
    with pytest.raises(ValueError, match="text.csv: line 3: cannot parse 'x' as a number"):
        load_file(tmp_path / "text.csv")
    (tmp_path / "ragged.csv").write_text("1,2,0\n3,4,1\n5,1\n")
    with pytest.raises(ValueError, match=r"ragged.csv: line 3: expected 3 values .*got 2"):
        load_file(tmp_path / "ragged.csv")
    (tmp_path / "one.csv").write_text("1\n2\n")
    with pytest.raises(ValueError, match="one.csv: expected at least 2 columns"):
        load_file(tmp_path / "one.csv")
    (tmp_path / "empty.csv").write_text("a,b\n")
    with pytest.raises(ValueError, match="empty.csv: no rows of numbers"):
        load_file(tmp_path / "empty.csv")
    bad = x.copy()
    bad[4, 1] = np.inf
    np.savez(tmp_path / "nan.npz", x=bad, y=y)
    with pytest.raises(ValueError, match="nan.npz: x contains NaN or infinite values, first in sample 4"):
        load_file(tmp_path / "nan.npz")
    np.savez(tmp_path / "short.npz", x=x, y=y[:-1])
    with pytest.raises(ValueError, match=r"short.npz: y must have shape \(12,\), got \(11,\)"):
        load_file(tmp_path / "short.npz")
    np.savez(tmp_path / "flat.npz", x=x[:, 0], y=y)
    with pytest.raises(ValueError, match=r"flat.npz: x must be a non-empty numeric array .* shape \(12,\)"):
        load_file(tmp_path / "flat.npz")


def test_bad_arguments(tmp_path):
    with pytest.raises(TypeError, match="path: expected a str or os.PathLike, got int"):
        load_file(3)
    with pytest.raises(TypeError, match="dtype: expected float32 or float64, got int32"):
        load_file(tmp_path / "a.npz", dtype=np.int32)
