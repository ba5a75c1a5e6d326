"""pydl.save / pydl.load: keys, verification of what is read (bit flips, counts, CRCs, methods),
size caps (zip bombs under a memory limit). Every bad file gives a ValueError naming the path."""
import io
import json
import os
import struct
import subprocess
import sys
import textwrap
import zipfile
import zlib

import numpy as np
import pytest

import pydl
from pydl import _checkpoint_format

# -- keys -------------------------------------------------------------------------------------
ODD_KEYS = ["allow_pickle", "file", "a\\b", "é/ü", "/abs", "../up", "a/", "x.npy", "__pydl__.json",
            "__pydl__/0", " ", "\t\n", "k" * 1024, "€" * 341, "arr_0"]


def test_any_key_that_saves_loads_back(tmp_path):
    path = tmp_path / "k.npz"
    state = {k: np.full(2, i) for i, k in enumerate(ODD_KEYS)}
    pydl.save(state, path)
    back = pydl.load(path)
    assert list(back) == ODD_KEYS
    for k in ODD_KEYS:
        np.testing.assert_array_equal(back[k], state[k])
    for k in ODD_KEYS:  # one at a time too (plain keys give an ordinary .npz)
        pydl.save({k: np.ones(1)}, path)
        assert list(pydl.load(path)) == [k]
        if "\\" not in k:
            with np.load(path, allow_pickle=False) as z:
                assert z.files == [k]


@pytest.mark.parametrize("key,error,match", [
    ("", ValueError, "empty"), ("a\0b", ValueError, "NUL"), ("k" * 70_000, ValueError, "bytes long"),
    ("é" * 513, ValueError, "1024"), ("\ud800", ValueError, "surrogate"), (1, TypeError, "str"),
    (b"bytes", TypeError, "str"), (None, TypeError, "str")])
def test_bad_keys_refused_before_touching_the_file(tmp_path, key, error, match):
    path = tmp_path / "ckpt.npz"
    pydl.save({"good": np.arange(3)}, path)
    before = path.read_bytes()
    with pytest.raises(error, match=match):
        pydl.save({"ok": np.ones(1), key: np.ones(2)}, path)
    if not isinstance(key, int):  # nested keys too (nested dicts may also have int keys)
        with pytest.raises(error, match=match):
            pydl.save({"state": {"ok": {key: np.ones(2)}}}, path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["ckpt.npz"]


def test_plain_state_dict_is_an_ordinary_npz(tmp_path):
    path = tmp_path / "m.npz"
    state = {"0.weight": np.ones((2, 3), np.float32), "0.bias": np.zeros(2, np.float32)}
    pydl.save(state, path)
    with zipfile.ZipFile(path) as z:
        assert z.namelist() == ["0.weight.npy", "0.bias.npy"]
        assert all(i.compress_type == zipfile.ZIP_STORED for i in z.infolist())
        assert z.comment.startswith(b"pydl-checkpoint ")
    with np.load(path, allow_pickle=False) as z:
        np.testing.assert_array_equal(z["0.weight"], state["0.weight"])
    pydl.save(state, tmp_path / "again.npz")  # deterministic bytes
    assert (tmp_path / "again.npz").read_bytes() == path.read_bytes()


@pytest.mark.parametrize("array", [
    np.float16([1, 2]), np.complex128([1j]), np.bool_([True, False]), np.int8([-1]),
    np.arange(6, dtype=">f8").reshape(2, 3), np.asfortranarray(np.arange(6.0).reshape(2, 3)),
    np.arange(12.0).reshape(3, 4)[:, ::2], np.array(3.5, np.float32), np.zeros((0, 3)),
    np.array(["ab", "c"]), np.zeros(3, dtype=[("a", "<i4"), ("b", "<f8")])])
def test_dtypes_and_layouts_round_trip(tmp_path, array):
    path = tmp_path / "a.npz"
    pydl.save({"a": array}, path)
    out = pydl.load(path)["a"]
    assert out.dtype == array.dtype and out.shape == array.shape
    np.testing.assert_array_equal(out, array)
    assert out.flags.writeable


# -- verification on load ---------------------------------------------------------------------
def _state():
    return {"0.weight": np.arange(4.0), "1.weight": np.arange(3.0), "1.bias": np.float32([7])}


def _same(a, b):
    return list(a) == list(b) and all(a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]) for k in a)


def _central_directory(data):
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        start = z.start_dir
    end = data.rindex(b"PK\x05\x06")
    return start, end


@pytest.mark.parametrize("nested", [False, True])
def test_every_bit_flip_is_detected_or_harmless(tmp_path, nested):
    state = {"opt": {0: _state()}} if nested else _state()
    path = tmp_path / "ckpt.npz"
    pydl.save(state, path)
    data = path.read_bytes()
    cd_start, eocd = _central_directory(data)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(data)
    fd = os.open(bad, os.O_WRONLY)  # flip bits in place (rewriting whole files is slow)
    try:
        for i in range(len(data)):
            for bit in range(8):
                os.pwrite(fd, bytes([data[i] ^ (1 << bit)]), i)
                try:
                    out = pydl.load(bad)
                except ValueError as e:
                    assert str(bad) in str(e)
                    continue
                finally:
                    os.pwrite(fd, data[i:i + 1], i)
                # only bytes zip readers ignore (local header versions, dates...) may change
                assert i < cd_start, (i, bit, "a central directory / end record flip went unnoticed")
                if nested:
                    assert out.keys() == {"opt"} and _same(out["opt"][0], _state())
                else:
                    assert _same(out, _state()), (i, bit)
    finally:
        os.close(fd)


def test_central_directory_flip_that_renames_a_member(tmp_path):
    # "1.weight" -> "0.weight" is one bit: a duplicate name used to drop a key silently
    for writer in ("pydl", "numpy"):
        path = tmp_path / f"{writer}.npz"
        if writer == "pydl":
            pydl.save(_state(), path)
        else:
            np.savez(path, **_state())
        data = bytearray(path.read_bytes())
        cd_start, _ = _central_directory(bytes(data))
        i = data.index(b"1.weight.npy", cd_start)
        data[i] ^= 0x01
        path.write_bytes(bytes(data))
        with pytest.raises(ValueError, match=f"{writer}.npz"):
            pydl.load(path)


def test_legacy_npz_still_loads_and_is_verified(tmp_path):
    path = tmp_path / "old.npz"
    np.savez(path, **_state())
    assert _same(pydl.load(path), _state())
    comp = tmp_path / "old_compressed.npz"
    np.savez_compressed(comp, **_state())
    assert _same(pydl.load(comp), _state())
    data = bytearray(path.read_bytes())
    eocd = data.rindex(b"PK\x05\x06")
    data[eocd + 8] = data[eocd + 10] = 2  # the end record counts 2 members, the directory lists 3
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="counts 2 members"):
        pydl.load(path)


def _set_method(data, method):
    """Set the compression method of every member, in local headers and central directory."""
    data = bytearray(data)
    for sig, off in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        i = data.find(sig)
        while i >= 0:
            data[i + off:i + off + 2] = struct.pack("<H", method)
            i = data.find(sig, i + 4)
    return bytes(data)


def test_unknown_compression_is_a_value_error(tmp_path):
    path = tmp_path / "m.npz"
    np.savez(path, a=np.ones(3))
    for method in (99, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA):
        path.write_bytes(_set_method(path.read_bytes(), method))
        with pytest.raises(ValueError, match=f"compression method {method}"):
            pydl.load(path)
        np.savez(path, a=np.ones(3))


def _sealed(tmp_path, name, write_members, compression=zipfile.ZIP_STORED):
    """A file sealed as pydl.save seals it, with whatever members ``write_members(zf)`` writes."""
    path = tmp_path / name
    with open(path, "w+b") as f:
        with zipfile.ZipFile(f, "w", compression) as zf:
            write_members(zf)
        _checkpoint_format._seal(f)
    return path


def _npy(a):
    b = io.BytesIO()
    np.lib.format.write_array(b, np.asarray(a), allow_pickle=False)
    return b.getvalue()


def test_compressed_members_refused_in_pydl_files(tmp_path):
    path = _sealed(tmp_path, "deflated.npz", lambda zf: zf.writestr("a.npy", _npy(np.zeros(1000))),
                   zipfile.ZIP_DEFLATED)
    with pytest.raises(ValueError, match="deflated.npz.*compressed"):
        pydl.load(path)


@pytest.mark.parametrize("tree,match", [
    ({"dict": [["a", {"array": "__pydl__/9.npy"}]]}, "missing member"),
    ({"dict": [["a", {"array": "__pydl__/0.npy"}], ["b", {"array": "__pydl__/0.npy"}]]}, "twice"),
    ({"dict": []}, "not referenced"),
    ({"set": []}, "unknown node"),
    ({"list": []}, "top level"),
    ({"dict": [["a", {"array": "__pydl__/0.npy", "scalar": True}]]}, "scalar"),
    ({"dict": [[1.5, None]]}, "malformed"),
    ("[" * 100_000 + "]" * 100_000, "JSON")])
def test_malformed_manifest(tmp_path, tree, match):
    def members(zf):
        zf.writestr("__pydl__/0.npy", _npy(np.ones(2)))
        if isinstance(tree, str):
            text = '{"format": "pydl-checkpoint", "version": 1, "tree": ' + tree + "}"
        else:
            text = json.dumps({"format": "pydl-checkpoint", "version": 1, "tree": tree})
        zf.writestr("__pydl__.json", text)
    path = _sealed(tmp_path, "manifest.npz", members)
    with pytest.raises(ValueError, match=f"manifest.npz.*{match}"):
        pydl.load(path)


def test_newer_format_version_is_named(tmp_path):
    path = tmp_path / "new.npz"
    pydl.save({"a": np.ones(2)}, path)
    data = path.read_bytes()
    path.write_bytes(data.replace(b'{"version": 1,', b'{"version": 9,'))
    with pytest.raises(ValueError, match="newer pydl"):
        pydl.load(path)


def test_trailing_bytes_after_a_pydl_file(tmp_path):
    path = tmp_path / "t.npz"
    pydl.save({"a": np.ones(2)}, path)
    with open(path, "ab") as f:
        f.write(b"junk")
    with pytest.raises(ValueError, match="t.npz"):
        pydl.load(path)


# -- size caps ----------------------------------------------------------------------------------
def _raw_zip(name, method, payload, crc, file_size):
    """A one-member zip written by hand (so sizes and methods can lie)."""
    n = name.encode()
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0x21, crc, len(payload), file_size,
                        len(n), 0) + n
    central = struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0, 0x21, crc, len(payload),
                          file_size, len(n), 0, 0, 0, 0, 0, 0) + n
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(central), len(local) + len(payload), 0)
    return local + payload + central + end


def _npy_header(total):
    """A 128-byte .npy v1.0 header for uint8 data that fills ``total`` bytes with it."""
    body = "{'descr': '|u1', 'fortran_order': False, 'shape': (%d,), }" % (total - 128)
    text = body + " " * (128 - 10 - len(body) - 1) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode()


def _zip_bomb(total=1 << 30):
    """~1 MB of deflate that inflates to a valid .npy of ``total`` bytes of zeros (built in < 1 s:
    after a full flush every 16 MiB block of zeros compresses to the same bytes)."""
    chunk = 1 << 24
    first_block = _npy_header(total) + bytes(chunk - 128)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = c.compress(first_block) + c.flush(zlib.Z_FULL_FLUSH)
    zeros = c.compress(bytes(chunk)) + c.flush(zlib.Z_FULL_FLUSH)
    payload = first + zeros * (total // chunk - 1) + c.flush()
    crc = zlib.crc32(first_block)
    block = bytes(chunk)
    for _ in range(total // chunk - 1):
        crc = zlib.crc32(block, crc)
    return _raw_zip("a.npy", zipfile.ZIP_DEFLATED, payload, crc, total)


def test_zip_bomb_refused_under_a_memory_limit(tmp_path):
    bomb = tmp_path / "bomb.npz"
    bomb.write_bytes(_zip_bomb())
    assert bomb.stat().st_size < 2 << 20
    code = f"""
        import resource, pydl
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        vm = int(open("/proc/self/status").read().split("VmSize:")[1].split()[0]) * 1024
        resource.setrlimit(resource.RLIMIT_AS, (vm + (256 << 20), hard))
        try:
            pydl.load({str(bomb)!r})
        except ValueError as e:
            print("ValueError", e)
    """
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.dirname(pydl.__file__))]
                                                     + sys.path))
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                         timeout=120, env=env, cwd=os.path.dirname(os.path.dirname(pydl.__file__)))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ValueError") and "bomb.npz" in out.stdout and "zip bomb" in out.stdout


def test_declared_sizes_are_capped_before_reading(tmp_path):
    npy = _npy(np.ones(4))
    cases = {
        # deflate cannot inflate 20 bytes to 1 GiB: the header lies
        "liar": _raw_zip("a.npy", zipfile.ZIP_DEFLATED, zlib.compress(npy)[2:-4], zlib.crc32(npy), 1 << 30),
        # a stored member whose sizes disagree
        "stored": _raw_zip("a.npy", zipfile.ZIP_STORED, npy, zlib.crc32(npy), len(npy) + 1000),
        # a stored member that runs past the end of the file
        "past_end": _raw_zip("a.npy", zipfile.ZIP_STORED, npy, zlib.crc32(npy), len(npy))[:-100],
    }
    for name, data in cases.items():
        p = tmp_path / f"{name}.npz"
        p.write_bytes(data)
        with pytest.raises(ValueError, match=f"{name}.npz"):
            pydl.load(p)
    good = tmp_path / "good.npz"
    good.write_bytes(_raw_zip("a.npy", zipfile.ZIP_STORED, npy, zlib.crc32(npy), len(npy)))
    np.testing.assert_array_equal(pydl.load(good)["a"], np.ones(4))
