"""pydl.save / pydl.load and what is at the path: regular files only, no hangs, atomic replace,
stale temporaries removed. Never writes outside tmp_path (device files are only ever read)."""
import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import pydl
from pydl import _io

# "python -c" puts its working directory first on sys.path: subprocesses run beside the pydl
# this test imported (the installed copy, or an editable checkout), never a source tree without _C
PYDL_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(pydl.__file__)))

pytestmark = pytest.mark.skipif(os.name != "posix", reason="FIFOs, symlinks and pids are POSIX")



def run_python(code, timeout=60):
    """Run ``code`` in a fresh interpreter that imports the same pydl; a hang fails the test."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.dirname(pydl.__file__))]
                                                     + sys.path))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=PYDL_PARENT)


# -- save: only create or replace regular files ------------------------------------------------
def test_save_refuses_fifo_symlinks_directories(tmp_path):
    state = {"w": np.ones(3)}
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match=r"pipe.*FIFO"):
        pydl.save(state, fifo)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)

    target = tmp_path / "real.npz"
    pydl.save({"w": np.zeros(2)}, target)
    before = target.read_bytes()
    cases = {"to_file": target, "to_fifo": fifo, "to_devnull": "/dev/null", "dangling": tmp_path / "absent"}
    for name, points_to in cases.items():
        link = tmp_path / name
        os.symlink(points_to, link)
        with pytest.raises(ValueError, match=rf"{name}.*symbolic link"):
            pydl.save(state, link)
        assert os.path.islink(link) and os.readlink(link) == str(points_to)
    assert target.read_bytes() == before
    assert not (tmp_path / "absent").exists()
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)

    d = tmp_path / "dir"
    d.mkdir()
    with pytest.raises(ValueError, match="dir.*directory"):
        pydl.save(state, d)
    with pytest.raises(ValueError, match="directory"):
        pydl.save(state, str(tmp_path / "newdir") + "/")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["pipe", "real.npz", "dir", *cases])


def test_save_refuses_socket(tmp_path):
    short = str(tmp_path / "s")
    if len(os.fsencode(short)) > 100:
        pytest.skip("tmp_path too long for an AF_UNIX socket address")
    s = socket.socket(socket.AF_UNIX)
    try:
        s.bind(short)
        with pytest.raises(ValueError, match="socket"):
            pydl.save({"w": np.ones(1)}, short)
        assert stat.S_ISSOCK(os.lstat(short).st_mode)
        with pytest.raises(ValueError, match="socket"):
            pydl.load(short)
    finally:
        s.close()
        if os.path.exists(short):
            os.unlink(short)


def test_save_keeps_mode_and_replaces_atomically(tmp_path):
    path = tmp_path / "ckpt.npz"
    pydl.save({"a": np.ones(3)}, path)
    os.chmod(path, 0o600)
    inode = os.stat(path).st_ino
    pydl.save({"a": np.zeros(3)}, path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert os.stat(path).st_ino != inode  # a new file renamed over the old one
    np.testing.assert_array_equal(pydl.load(path)["a"], np.zeros(3))
    assert os.listdir(tmp_path) == ["ckpt.npz"]


def test_save_into_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="nodir"):
        pydl.save({"a": np.ones(1)}, tmp_path / "nodir" / "x.npz")
    assert os.listdir(tmp_path) == []


def test_save_type_errors(tmp_path):
    with pytest.raises(TypeError, match="path"):
        pydl.save({"a": np.ones(1)}, 3)
    with pytest.raises(TypeError, match="path"):
        pydl.load(3.5)


# -- load: reject non-regular files before opening them ----------------------------------------
def test_load_refuses_fifo_and_devices_without_hanging(tmp_path):
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    link = tmp_path / "link.npz"
    os.symlink(fifo, link)
    code = f"""
        import resource, pydl
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        vm = int(open("/proc/self/status").read().split("VmSize:")[1].split()[0]) * 1024
        resource.setrlimit(resource.RLIMIT_AS, (vm + (512 << 20), hard))
        for p in [{str(fifo)!r}, {str(link)!r}, "/dev/zero", "/dev/null"]:
            try:
                pydl.load(p)
                print("LOADED", p)
            except ValueError as e:
                print("ValueError", e)
    """
    out = run_python(code, timeout=60)  # a regression hangs (FIFO) or dies (/dev/zero): fails here
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 4, out.stdout
    assert "FIFO" in lines[0] and str(fifo) in lines[0]
    assert "FIFO" in lines[1] and str(link) in lines[1]
    assert "character device" in lines[2] and "/dev/zero" in lines[2]
    assert "character device" in lines[3] and "/dev/null" in lines[3]


def test_load_directory_and_symlink_to_regular_file(tmp_path):
    with pytest.raises(ValueError, match="directory"):
        pydl.load(tmp_path)
    path = tmp_path / "real.npz"
    pydl.save({"a": np.arange(3)}, path)
    link = tmp_path / "link.npz"
    os.symlink(path, link)
    np.testing.assert_array_equal(pydl.load(link)["a"], np.arange(3))  # load follows symlinks


# -- temporaries: recognisable, cleaned up after a kill ----------------------------------------
def _tmp_name(base, pid, host=None):
    return f".{base}.{pid}@{host or _io._host_tag()}.{'ab' * 8}.pydl-tmp"


def _dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stale_temporaries_removed_on_next_save(tmp_path):
    path = tmp_path / "ckpt.npz"
    dead = _dead_pid()
    stale = tmp_path / _tmp_name("ckpt.npz", dead)
    live = tmp_path / _tmp_name("ckpt.npz", os.getppid())  # a live process (our parent) is writing
    old = tmp_path / _tmp_name("ckpt.npz", os.getppid(), host="0123abcd")
    other_host = tmp_path / _tmp_name("ckpt.npz", dead, host="0123abcd")  # pid means nothing here
    other_file = tmp_path / _tmp_name("other.npz", dead)
    unrelated = tmp_path / ".ckpt.npz.notes"
    for p in (stale, live, old, other_host, other_file, unrelated):
        p.write_bytes(b"partial")
    os.utime(old, (time.time() - 2 * _io.STALE_TMP_SECONDS,) * 2)
    os.mkdir(tmp_path / _tmp_name("ckpt.npz", dead).replace("abab", "cdcd"))  # not a file: kept
    pydl.save({"a": np.ones(2)}, path)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert stale.name not in left and old.name not in left
    for p in (live, other_host, other_file, unrelated):
        assert p.name in left
    assert "ckpt.npz" in left and len(left) == 6


def test_killed_save_leaves_previous_file_and_next_save_cleans_up(tmp_path):
    path = tmp_path / "ckpt.npz"
    pydl.save({"w": np.arange(10.0)}, path)
    before = path.read_bytes()
    ready = tmp_path / "ready"
    code = f"""
        import os, time, numpy as np, pydl
        real = np.lib.format.write_array
        def slow(f, a, **kw):
            f.write(b"x" * 1000)
            open({str(ready)!r}, "w").close()
            time.sleep(120)
        np.lib.format.write_array = slow
        pydl.save({{"w": np.zeros(10)}}, {str(path)!r})
    """
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.dirname(pydl.__file__))]
                                                     + sys.path))
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=PYDL_PARENT)
    try:
        deadline = time.time() + 60
        while not ready.exists():
            assert proc.poll() is None and time.time() < deadline, "the writer did not start"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    ready.unlink()
    temps = [p.name for p in tmp_path.iterdir() if p.name.endswith(".pydl-tmp")]
    assert len(temps) == 1 and temps[0].startswith(f".ckpt.npz.{proc.pid}@")
    assert path.read_bytes() == before
    np.testing.assert_array_equal(pydl.load(path)["w"], np.arange(10.0))
    pydl.save({"w": np.ones(10)}, path)
    assert os.listdir(tmp_path) == ["ckpt.npz"]


def test_long_file_name(tmp_path):
    name = "n" * 240 + ".npz"  # the temporary's name must still fit NAME_MAX (255)
    pydl.save({"a": np.ones(2)}, tmp_path / name)
    pydl.save({"a": np.zeros(2)}, tmp_path / name)
    assert os.listdir(tmp_path) == [name]
    np.testing.assert_array_equal(pydl.load(tmp_path / name)["a"], np.zeros(2))
