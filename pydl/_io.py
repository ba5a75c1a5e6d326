"""Checkpoints: ``pydl.save`` / ``pydl.load`` as .npz files (numpy arrays and JSON, never pickle).

What is promised (docs/RELIABILITY.md lists the test of each promise):

* **Atomic replace.** ``save`` writes a temporary file in the destination's directory (created
  with ``O_EXCL``), fsyncs it and renames it over the destination (``os.replace``), then fsyncs
  the directory: a crash or an error mid-save leaves the previous checkpoint intact.
* **Regular files only.** ``save`` creates or replaces only regular files: it refuses a FIFO, a
  device, a socket, a directory or a symbolic link at ``path`` (ValueError naming it; symbolic
  links are not followed: pass the target path to write there). ``load`` follows symbolic links
  but refuses anything that is not a regular file *before* opening it, and opens with
  ``O_NONBLOCK``, so a FIFO or ``/dev/zero`` cannot make it hang or exhaust memory.
* **Validated keys.** Keys are checked before the file system is touched; every key that saves
  loads back (see :mod:`pydl._checkpoint_tree`).
* **Verified contents.** Files carry a seal (member count and SHA-256 of the zip central
  directory); every member's CRC-32, size and .npy header are checked; errors are ValueError
  naming the path (see :mod:`pydl._checkpoint_format`).
* **Bounded reads.** Declared sizes are checked before anything is allocated.
* **No orphans.** Temporaries are named ``.<name>.<pid>@<host>.<random>.pydl-tmp``; the next save
  to the same path removes those left by dead processes (or older than a day).
"""
from __future__ import annotations

import errno
import hashlib
import os
import re
import secrets
import shutil
import socket
import stat
import time
from typing import Any

from . import _checkpoint_format, _checkpoint_tree

_TMP_SUFFIX = ".pydl-tmp"
_TMP_TAIL = re.compile(r"(\d{1,10})@([0-9a-f]{8})\.[0-9a-f]{16}" + re.escape(_TMP_SUFFIX) + r"\Z")
#: A temporary older than this is stale even if its pid looks alive (pids are reused).
STALE_TMP_SECONDS = 24 * 3600


def _fspath(path: Any) -> str:
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"path: expected a str or os.PathLike, got {type(path).__name__}")
    path = os.fsdecode(os.fspath(path))
    if not path:
        raise ValueError("path: empty path")
    if "\0" in path:
        raise ValueError(f"path: {path!r} holds a NUL character")
    return path


def _kind(mode):
    """Name of the kind of file ``mode`` (from stat) describes."""
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISLNK, "a symbolic link"),
                       (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def _check_target(path):
    """lstat ``path``: None if absent, its stat if it is a regular file, else ValueError."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISREG(st.st_mode):
        return st
    what = _kind(st.st_mode)
    if stat.S_ISLNK(st.st_mode):
        try:
            what += f" (to {os.readlink(path)!r})"
        except OSError:
            pass
        raise ValueError(f"path: {path!r} is {what}; pydl.save does not follow or replace symbolic "
                         "links: pass the target's path to write there")
    raise ValueError(f"path: {path!r} is {what}; pydl.save only creates or replaces regular files")


def _tmp_prefix(base):
    """``.<base>.`` (shortened with a hash for long names, so the temporary fits NAME_MAX)."""
    raw = os.fsencode(base)
    if len(raw) > 120:
        base = os.fsdecode(raw[:80]) + "~" + hashlib.sha1(raw).hexdigest()[:16]
    return "." + base + "."


def _host_tag():
    return hashlib.sha1(socket.gethostname().encode("utf-8", "surrogateescape")).hexdigest()[:8]


def _pid_alive(pid):
    if pid == os.getpid():
        return True
    if os.name == "nt":  # os.kill would terminate it; rely on the age alone
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True
    return True


def _remove_stale_temporaries(directory, base):
    """Remove the temporaries of ``base`` in ``directory`` left behind by killed saves.

    A temporary is stale when it was made on this host by a process that no longer exists, or
    when it is older than :data:`STALE_TMP_SECONDS`. Only regular files are removed; errors are
    ignored (cleaning up is best effort and never makes a save fail).
    """
    prefix, host, now = _tmp_prefix(base), _host_tag(), time.time()
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        if not entry.name.startswith(prefix):
            continue
        m = _TMP_TAIL.match(entry.name, len(prefix))
        if m is None or len(prefix) + len(m.group(0)) != len(entry.name):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode):
                continue
            dead = m.group(2) == host and not _pid_alive(int(m.group(1)))
            if dead or now - st.st_mtime > STALE_TMP_SECONDS:
                os.unlink(entry.path)
        except OSError:
            pass


def _fsync_directory(directory):
    try:  # make the rename durable
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def _check_space(directory: str, members: list[tuple[str, Any]]) -> None:
    """OSError(ENOSPC) before any write when the arrays alone exceed the free space of
    ``directory`` (a broadcast view of petabytes would otherwise fill the disk first)."""
    need = sum(int(a.nbytes) for _, a in members)
    try:
        free = shutil.disk_usage(directory).free
    except OSError:
        return                                  # unknown: the write itself reports a full disk
    if need > free:
        raise OSError(errno.ENOSPC, f"path: the arrays need {need} bytes, {directory!r} has {free} free; "
                                    "nothing was written")


def save(obj: Any, path: str | os.PathLike[str]) -> None:
    """Save a module's state, a dict of arrays or a nested state to ``path``, atomically.

    Parameters
    ----------
    obj : nn.Module or dict
        A module (its ``state_dict()`` is saved); a flat dict str -> array (keys kept exactly,
        e.g. ``"0.weight"``; the file is then an ordinary ``.npz``); or a nested state such as
        ``Optimizer.state_dict()``: a dict with str keys whose values are arrays, numpy scalars,
        None, bools, ints, floats, strs, or lists / tuples / dicts (str or int keys) of those.
        Arrays become ``.npy`` members, the structure JSON; :func:`load` gives it back.
    path : str or os.PathLike
        Where to write, exactly (no extension is added). If it exists it must be a regular file.

    Raises
    ------
    TypeError
        If ``obj`` or ``path`` has the wrong type, or ``obj`` holds an unsupported value (an
        object array, a set, ...), named by its place in ``obj``.
    ValueError
        If a key is invalid (empty, holds NUL, longer than 1024 bytes in UTF-8, a lone
        surrogate), or ``path`` names something other than a regular file (a FIFO, a device, a
        socket, a directory, a symbolic link). Nothing has been written then.
    OSError
        If writing fails (disk full, permissions); the previous file at ``path`` is intact and
        the temporary is removed.

    Notes
    -----
    The checkpoint is written to a temporary ``.<name>.<pid>@<host>.<random>.pydl-tmp`` in the
    same directory (``O_EXCL``), fsynced and renamed over ``path``; the directory is fsynced.
    Temporaries of earlier saves to ``path`` whose process is gone are removed first.
    """
    path = _fspath(path)
    members, tree = _checkpoint_tree.split(obj)  # every key and value checked before any I/O
    directory, base = os.path.split(os.path.abspath(path))
    if not base or path.endswith(("/", os.sep)):
        raise ValueError(f"path: {path!r} names a directory, not a file")
    existing = _check_target(path)
    _remove_stale_temporaries(directory, base)
    _check_space(directory, members)
    tmp = os.path.join(directory, f"{_tmp_prefix(base)}{os.getpid()}@{_host_tag()}."
                                  f"{secrets.token_hex(8)}{_TMP_SUFFIX}")
    flags = (os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
             | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
    try:
        fd = os.open(tmp, flags, 0o600)
    except FileNotFoundError:
        raise FileNotFoundError(f"path: the directory of {path!r} does not exist") from None
    try:
        with os.fdopen(fd, "w+b") as f:
            mode = stat.S_IMODE(existing.st_mode) if existing is not None else 0o644
            if hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), mode)
            _checkpoint_format.write(f, members, tree)
            f.flush()
            os.fsync(f.fileno())
        _check_target(path)  # again, just before the rename: still absent or a regular file
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_directory(directory)


def load(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save` (or an array-only ``.npz``).

    Parameters
    ----------
    path : str or os.PathLike
        A regular file (symbolic links to one are followed).

    Returns
    -------
    dict
        What was saved: name -> ndarray for a module or flat dict (keys as saved, in order), or
        the nested structure (tuples as tuples, int keys as ints, numpy scalars as numpy
        scalars), e.g. for ``Optimizer.load_state_dict``.

    Raises
    ------
    TypeError
        If ``path`` is not a str or os.PathLike.
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        Naming ``path``: if it is not a regular file (FIFO, device, directory, socket: refused
        before opening), or is truncated, corrupt (a flipped bit anywhere in the zip structure or
        data), foreign, holds pickled objects (never unpickled), compressed members in a pydl
        file, or members whose declared sizes exceed the caps.
    """
    path = _fspath(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"path: no such checkpoint file: {path!r}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{path!r} is {_kind(st.st_mode)}, not a regular file: not a pydl checkpoint")
    flags = (os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
             | getattr(os, "O_BINARY", 0))
    fd = os.open(path, flags)
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):  # replaced between stat and open
            raise ValueError(f"{path!r} is {_kind(st.st_mode)}, not a regular file: not a pydl checkpoint")
        try:
            return _checkpoint_format.read(f, st.st_size)
        except ValueError as e:
            raise ValueError(f"{path!r} is not a valid pydl checkpoint: {e}") from None
        except Exception as e:  # zipfile, zlib, struct, json, OS read errors: all mean a bad file
            raise ValueError(f"{path!r} is not a valid pydl checkpoint (truncated or corrupt): "
                             f"{type(e).__name__}: {e}") from None
