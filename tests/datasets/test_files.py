"""pydl.datasets.load_file: .npz and .csv parsing, and errors naming the path and the line / sample."""
import pathlib

import numpy as np
import pytest

from pydl.datasets import load_file
from pydl.datasets._files import read_file


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
    ("text.csv", _text("a,b,c\n1,2,0\n3,x,1\n"), ValueError, r"text.csv: line 3, column 2 \(b\): cannot parse 'x' as a number"),
    ("ragged.csv", _text("1,2,0\n3,4,1\n5,1\n"), ValueError, r"ragged.csv: line 3: expected 3 fields \(as line 1\), got 2"),
    ("one.csv", _text("1\n2\n"), ValueError, "one.csv: expected at least 2 columns"),
    ("empty.csv", _text("a,b\n"), ValueError, r"empty.csv: no data rows \(only a header\)"),
    ("typo.csv", _text("1,2x,0\n3,4,1\n"), ValueError, "typo.csv: line 1, column 2: cannot parse '2x' as a number, while"),
    ("nan.csv", _text("# c\na,b,y\n\n1,2,0\n3,nan,1\n"), ValueError, r"nan.csv: line 5, column 2 \(b\): 'nan' is not finite"),
    ("nolabel.csv", _text("1,2,0\n3,4,\n"), ValueError, "nolabel.csv: line 2, column 3: empty label"),
    ("inflabel.csv", _text("1,2,0\n3,4,inf\n"), ValueError, "inflabel.csv: line 2, column 3: label 'inf' is not finite"),
    ("semi.csv", _text("1;2;0\n3;4;1\n"), ValueError, "semi.csv: expected at least 2 columns .*split at ','"),
    ("quote.csv", _text('1,2,"a\n'), ValueError, "quote.csv: line 1: unexpected end of data"),
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


def write(path, text):
    path.write_text(text)
    return path


def test_csv_string_labels_and_a_headerless_first_sample(tmp_path):
    """A first row whose features are numbers is a sample even when its label is a word."""
    path = write(tmp_path / "t.csv", "1.5,2,class_b\n3,4,class_a\n5,6,class_b\n")
    x, y = load_file(path)
    np.testing.assert_array_equal(x, np.array([[1.5, 2], [3, 4], [5, 6]], np.float32))
    assert y.dtype.kind == "U" and y.tolist() == ["class_b", "class_a", "class_b"]
    x, y = load_file(write(tmp_path / "n.csv", "1,2,1\n3,4,1.0\n5,6,2\n"))      # numbers: float64
    assert y.dtype == np.float64 and y.tolist() == [1.0, 1.0, 2.0]


def test_csv_header_detection_and_forcing(tmp_path):
    table = read_file(write(tmp_path / "h.csv", "# made by hand\n\nwidth,height,kind\n1,2,a\n3,4,b\n"))
    assert table.feature_names == ["width", "height"] and table.target_name == "kind"
    assert table.lines.tolist() == [4, 5] and table.x.shape == (2, 2)
    numeric_header = write(tmp_path / "num.csv", "0,1,label\n1,2,a\n3,4,b\n")
    assert load_file(numeric_header)[0].shape == (3, 2)          # detected as data: names are numbers
    table = read_file(numeric_header, header=True)
    assert table.feature_names == ["0", "1"] and table.x.shape == (2, 2)
    with pytest.raises(ValueError, match="line 1, column 1: cannot parse 'width' as a number"):
        load_file(write(tmp_path / "f.csv", "width,height,kind\n1,2,a\n"), header=False)
    with pytest.raises(ValueError, match="line 1, column 1: cannot parse 'id'.*header=True"):
        load_file(write(tmp_path / "m.csv", "id,2020,label\n1,2,a\n"))
    assert read_file(tmp_path / "m.csv", header=True).feature_names == ["id", "2020"]
    with pytest.raises(TypeError, match="header: expected True, False or None, got str"):
        load_file(tmp_path / "m.csv", header="yes")


def test_csv_delimiter_quotes_bom_and_multiline_fields(tmp_path):
    x, y = load_file(write(tmp_path / "s.csv", "a;b;c\n1.5;2;x\n3;4;y\n"), delimiter=";")
    np.testing.assert_array_equal(x, np.array([[1.5, 2], [3, 4]], np.float32))
    assert y.tolist() == ["x", "y"]
    path = tmp_path / "t.csv"
    path.write_bytes("\ufeffa\tb\tc\n1\t2\t\"x, y\"\n 3 \t 4 \t z \n".encode("utf-8"))
    table = read_file(path, delimiter="\t")
    assert table.feature_names == ["a", "b"] and table.y.tolist() == ["x, y", "z"]
    np.testing.assert_array_equal(table.x, np.array([[1, 2], [3, 4]], np.float32))
    # a quoted label spanning two lines: the next sample starts on line 4
    path = write(tmp_path / "q.csv", 'a,b,c\n1,2,"two\nlines"\n3,oops,z\n')
    with pytest.raises(ValueError, match="line 4, column 2 \\(b\\): cannot parse 'oops'"):
        load_file(path)
    for bad in ("", ";;", '"', "\n", 3):
        with pytest.raises((TypeError, ValueError), match="delimiter: expected"):
            load_file(path, delimiter=bad)


def test_npz_string_labels(tmp_path):
    x, _ = blobs()
    names = np.array(["b", "a", "c"] * 4)
    np.savez(tmp_path / "s.npz", x=x, y=names)
    xs, ys = load_file(tmp_path / "s.npz")
    assert ys.dtype.kind == "U" and ys.tolist() == names.tolist() and xs.shape == (12, 3)
