"""Checkpoints: pydl.save / pydl.load as .npz (numpy arrays only, never pickle).

save writes a temporary file in the destination's directory, fsyncs it and renames it over the
destination (os.replace is atomic on POSIX and Windows), so a crash or error mid-save leaves any
previous checkpoint intact.
"""
import os
import tempfile
import tokenize
import zipfile
import zlib

import numpy as np


def _state_of(obj):
    from .nn.module import Module
    from .nn.parameter import Parameter

    if isinstance(obj, Module):
        return obj.state_dict()
    if not hasattr(obj, "items"):
        raise TypeError(f"obj: expected an nn.Module or a dict of arrays, got {type(obj).__name__}")
    out = {}
    for k, v in obj.items():
        if not isinstance(k, str):
            raise TypeError(f"obj: keys must be str, got {type(k).__name__} ({k!r})")
        if isinstance(v, Parameter):
            v = v.data
        a = np.asarray(v)
        if a.dtype.hasobject:
            raise TypeError(f"obj[{k!r}]: expected a numeric array, got dtype {a.dtype} (would need pickle)")
        out[k] = a
    return out


def save(obj, path):
    """Save a Module's state_dict (or a dict name -> array) to ``path`` as .npz, atomically.

    Keys are kept exactly (dotted names such as ``"0.weight"``). The file is written to exactly
    ``path`` (no extension is added).
    """
    state = _state_of(obj)
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        os.chmod(tmp, os.stat(path).st_mode & 0o777 if os.path.exists(path) else 0o644)
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **state)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename durable
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def _check_member_size(zf, info):
    """A member's .npy header must not claim more data than the member holds (a corrupt header
    would otherwise make np.load try to allocate its claimed size)."""
    with zf.open(info) as f:
        try:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                return  # np.load reports unsupported versions itself
        except (ValueError, SyntaxError, tokenize.TokenError, EOFError) as e:
            raise ValueError(f"member {info.filename!r} has a corrupt "
                             f".npy header ({e})") from None
        header_len = f.tell()
    if dtype.hasobject:
        return  # reported as pickled below
    need = dtype.itemsize
    for s in shape:
        need *= int(s)
    if need > info.file_size - header_len:
        raise ValueError(f"member {info.filename!r} claims shape "
                         f"{tuple(shape)} of {dtype} ({need} bytes) but holds {info.file_size - header_len} bytes "
                         "(truncated or corrupt)")


def load(path):
    """Load a checkpoint written by :func:`save`: dict name -> ndarray (keys as saved).

    Raises ValueError naming ``path`` for a truncated or corrupt file, a file that is not an
    .npz archive, or one holding pickled objects (never unpickled). FileNotFoundError if absent.
    """
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"path: expected a str or os.PathLike, got {type(path).__name__}")
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"path: no such checkpoint file: {path!r}")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path!r} is not a pydl checkpoint (.npz archive): truncated or foreign file")
    try:
        with zipfile.ZipFile(path) as zf:
            foreign = [n for n in zf.namelist() if not n.endswith(".npy")]
            if foreign:
                raise ValueError(f"it holds non-array members {foreign[:3]}")
            for info in zf.infolist():
                _check_member_size(zf, info)
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except ValueError as e:
        if "allow_pickle" in str(e) or "Object arrays" in str(e):
            raise ValueError(f"{path!r} holds pickled objects, which pydl never loads") from None
        raise ValueError(f"{path!r} is not a valid pydl checkpoint: {e}") from None
    except (zipfile.BadZipFile, OSError, EOFError, KeyError, SyntaxError, tokenize.TokenError, zlib.error,
            MemoryError, OverflowError) as e:
        raise ValueError(f"{path!r} is not a valid pydl checkpoint (truncated or corrupt): {e}") from None
