"""pydl.save / pydl.load: .npz round trips, exact keys, atomic replace, corrupt and foreign files."""
import errno
import os
import zipfile

import numpy as np
import pytest

import pydl
from pydl import nn


def model():
    pydl.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2, dtype=np.float32), nn.BatchNorm1d(2))


def test_round_trip_module(tmp_path):
    m = model()
    m(np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32))  # running stats move
    path = tmp_path / "ckpt.npz"
    pydl.save(m, path)
    sd = pydl.load(path)
    assert list(sd) == list(m.state_dict())  # dotted keys exactly, in order
    for k, v in m.state_dict().items():
        assert sd[k].dtype == v.dtype and sd[k].shape == v.shape
        np.testing.assert_array_equal(sd[k], v)
    m2 = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2), nn.BatchNorm1d(2))
    m2.load_state_dict(sd)
    x = np.ones((2, 3), np.float32)
    m.eval(), m2.eval()
    np.testing.assert_array_equal(m(x), m2(x))


def test_round_trip_dict_exact_path_and_keys(tmp_path):
    d = {"a.b.c": np.arange(6.0).reshape(2, 3), "x": np.array(3, np.int64), "w": nn.Parameter(np.ones(2))}
    path = str(tmp_path / "plain")  # no extension added
    pydl.save(d, path)
    assert os.listdir(tmp_path) == ["plain"]
    out = pydl.load(path)
    assert set(out) == {"a.b.c", "x", "w"}
    np.testing.assert_array_equal(out["a.b.c"], d["a.b.c"])
    assert out["x"] == 3 and out["w"].dtype == np.float64


def test_save_rejects_objects(tmp_path):
    with pytest.raises(TypeError, match="obj"):
        pydl.save({"a": np.array([{}], dtype=object)}, tmp_path / "x.npz")
    with pytest.raises(TypeError, match="obj"):
        pydl.save([1, 2], tmp_path / "x.npz")
    assert not (tmp_path / "x.npz").exists()


def test_truncated_file(tmp_path):
    path = tmp_path / "ckpt.npz"
    pydl.save(model(), path)
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 10, 10):
        bad = tmp_path / f"cut{cut}.npz"
        bad.write_bytes(data[:cut])
        with pytest.raises(ValueError, match=f"cut{cut}.npz"):
            pydl.load(bad)


def test_corrupt_member(tmp_path):
    path = tmp_path / "ckpt.npz"
    pydl.save({"w": np.arange(1000.0)}, path)
    data = bytearray(path.read_bytes())
    i = data.index(b"\x00\x00\x00\x00\x00\x00\xf0?")  # the bytes of 1.0
    data[i + 7] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="ckpt.npz"):
        pydl.load(path)


def test_foreign_and_pickle_files(tmp_path):
    txt = tmp_path / "notes.npz"
    txt.write_text("hello")
    with pytest.raises(ValueError, match="notes.npz"):
        pydl.load(txt)
    npy = tmp_path / "arr.npy"
    np.save(npy, np.ones(3))
    with pytest.raises(ValueError, match="arr.npy"):
        pydl.load(npy)
    pk = tmp_path / "pickle.npz"
    np.savez(pk, a=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(ValueError, match="pickle"):
        pydl.load(pk)
    zp = tmp_path / "other.zip"
    with zipfile.ZipFile(zp, "w") as z:
        z.writestr("readme.txt", "not an array")
    with pytest.raises(ValueError, match="other.zip"):
        pydl.load(zp)
    with pytest.raises(FileNotFoundError):
        pydl.load(tmp_path / "missing.npz")


def test_save_larger_than_free_space_fails_before_writing(tmp_path):
    """A zero-stride view of petabytes is refused at once (ENOSPC), the previous file intact,
    instead of filling the disk first."""
    path = tmp_path / "ckpt.npz"
    pydl.save({"a": np.ones(3, np.float32)}, path)
    before = path.read_bytes()
    huge = np.lib.stride_tricks.as_strided(np.ones(1, np.float32), (2**31, 2**20), (0, 0))
    with pytest.raises(OSError, match="nothing was written") as info:
        pydl.save({"a": huge}, path)
    assert info.value.errno == errno.ENOSPC
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["ckpt.npz"]


def test_failing_save_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    m = model()
    pydl.save(m, path)
    before = path.read_bytes()

    def exploding_write_array(f, array, **kwargs):
        f.write(b"partial garbage")
        raise OSError("disk full")

    monkeypatch.setattr(np.lib.format, "write_array", exploding_write_array)
    with pytest.raises(OSError, match="disk full"):
        pydl.save(model(), path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["ckpt.npz"]  # no temporary left behind
    np.testing.assert_array_equal(pydl.load(path)["0.weight"], m[0].weight.data)


def test_failing_replace_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    pydl.save({"a": np.ones(3)}, path)

    def boom(src, dst):
        raise OSError("crash before rename")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        pydl.save({"a": np.zeros(3)}, path)
    monkeypatch.undo()
    np.testing.assert_array_equal(pydl.load(path)["a"], np.ones(3))
    assert os.listdir(tmp_path) == ["ckpt.npz"]
