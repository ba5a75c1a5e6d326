"""The checkpoint archive: writing, sealing, verifying and reading (.npz, zip, never pickle).

Layout of a file written by ``pydl.save`` (format version 1):

* one zip member per array, ``<name>.npy`` in ``.npy`` format, **stored** (never compressed),
  written with ``zipfile`` and ``np.lib.format.write_array(allow_pickle=False)``;
* for nested state (or keys that are not plain member names), a member ``__pydl__.json``: the
  JSON structure (see :mod:`pydl._checkpoint_tree`);
* a **seal** in the zip archive comment: ``pydl-checkpoint {"version": 1, "entries": N,
  "cd_offset": ..., "cd_size": ..., "cd_sha256": ...}``: the member count and a SHA-256 of the
  raw bytes of the central directory (every member's name, CRC-32, sizes, method and offset).

A flat state with plain keys has no manifest member, so the file stays an ordinary ``.npz`` that
``np.load`` lists with the same keys. Files without a seal (written by older pydl versions or
``np.savez``) still load: then the member count of the end record, unique names, sizes and the
CRC-32 of every member are checked, and deflated members are accepted up to a size cap.
"""
import hashlib
import json
import math
import struct
import zipfile

import numpy as np

from . import _checkpoint_tree as tree_mod

FORMAT_VERSION = 1
SEAL_MAGIC = b"pydl-checkpoint "

#: Total declared uncompressed size accepted for the *compressed* members of a file without a
#: seal (pydl never writes compressed members; ``np.savez_compressed`` files up to this size load).
MAX_INFLATED_BYTES = 256 << 20

#: Largest manifest member accepted.
MAX_MANIFEST_BYTES = 64 << 20

_DEFLATE_MAX_RATIO = 1032  # deflate cannot expand one byte into more than ~1032
_DATE = (1980, 1, 1, 0, 0, 0)  # fixed: the same state gives the same bytes
_CHUNK = 1 << 24
_EOCD = struct.Struct("<4s4H2LH")  # end of central directory record
_EOCD_SIG = b"PK\x05\x06"
_Z64_LOCATOR = struct.Struct("<4sLQL")
_Z64_EOCD = struct.Struct("<4sQ2H2L4Q")
_LOCAL_HEADER_SIZE = 30


# -- writing --------------------------------------------------------------------------------------
def write(f, members, tree):
    """Write a sealed archive to ``f``.

    Parameters
    ----------
    f : binary file object
        Empty, opened for reading and writing (the seal is computed from what was written).
    members : list of (str, ndarray)
        Member names and arrays, from :func:`pydl._checkpoint_tree.split`.
    tree : object or None
        The JSON structure of a nested state, written as the manifest member.
    """
    with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, array in members:
            info = _member_info(name)
            info.file_size = array.nbytes + 65536  # an upper bound: decides whether zip64 is needed
            with zf.open(info, "w") as out:
                np.lib.format.write_array(out, array, allow_pickle=False)
        if tree is not None:
            manifest = {"format": "pydl-checkpoint", "version": FORMAT_VERSION, "tree": tree}
            zf.writestr(_member_info(tree_mod.MANIFEST_NAME), json.dumps(manifest).encode("ascii"))
    _seal(f)


def _member_info(name):
    info = zipfile.ZipInfo(name, _DATE)
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    return info


def _seal(f):
    """Put the seal (count and SHA-256 of the central directory) into the archive comment."""
    f.flush()
    size = f.seek(0, 2)
    end = _end_record(f, size)
    if end["comment_len"] != 0 or end["pos"] + _EOCD.size != size:
        raise AssertionError("zipfile wrote an unexpected end record")
    f.seek(end["cd_offset"])
    cd = f.read(end["cd_size"])
    seal = SEAL_MAGIC + json.dumps({
        "version": FORMAT_VERSION, "entries": end["entries"], "cd_offset": end["cd_offset"],
        "cd_size": end["cd_size"], "cd_sha256": hashlib.sha256(cd).hexdigest()}).encode("ascii")
    f.seek(end["pos"] + _EOCD.size - 2)
    f.write(struct.pack("<H", len(seal)) + seal)
    f.flush()


# -- reading --------------------------------------------------------------------------------------
def read(f, size):
    """Verify and read the archive in ``f`` (a regular file of ``size`` bytes).

    Returns
    -------
    dict
        The saved state: a flat dict name -> ndarray, or the nested structure.

    Raises
    ------
    ValueError
        For anything but an intact checkpoint; other exceptions (zipfile's, zlib's, struct's)
        are turned into ValueError by the caller.
    """
    if not zipfile.is_zipfile(f):
        raise ValueError("not a pydl checkpoint (.npz archive): truncated or foreign file")
    end = _end_record(f, size)
    with zipfile.ZipFile(f) as zf:
        infos = zf.infolist()
        comment = zf.comment
        sealed = comment.startswith(SEAL_MAGIC)
        if comment and not sealed:
            raise ValueError("the archive comment is not a pydl seal (corrupt or foreign file)")
        if end["entries"] != len(infos):
            raise ValueError(f"the end record counts {end['entries']} members but the central "
                             f"directory lists {len(infos)} (corrupt)")
        if sealed:
            _check_seal(f, size, end, comment)
        _check_members(infos, size, sealed)
        names = [i.filename for i in infos]
        nested = tree_mod.MANIFEST_NAME in names
        arrays = {}
        for info in infos:
            if info.filename != tree_mod.MANIFEST_NAME:
                arrays[info.filename] = _read_npy(zf, info)
        if not nested:
            return {name[:-4]: a for name, a in arrays.items()}
        manifest = _read_manifest(zf, zf.getinfo(tree_mod.MANIFEST_NAME))
    return tree_mod.join(manifest["tree"], arrays)


def _end_record(f, size):
    """Parse the end of central directory record as zipfile finds it (the last signature).

    Returns a dict with ``pos`` (offset of the record), ``entries``, ``cd_offset``, ``cd_size``
    and ``comment_len`` (zip64 values when the record defers to a zip64 record).
    """
    tail = min(size, _EOCD.size + 65535)
    f.seek(size - tail)
    data = f.read(tail)
    if data[-_EOCD.size:-_EOCD.size + 4] == _EOCD_SIG and data[-2:] == b"\0\0":
        start = len(data) - _EOCD.size
    else:
        start = data.rfind(_EOCD_SIG)
    if start < 0 or start + _EOCD.size > len(data):
        raise ValueError("no zip end record (truncated or foreign file)")
    _, disk, cd_disk, disk_entries, entries, cd_size, cd_offset, comment_len = _EOCD.unpack_from(data, start)
    if disk or cd_disk or disk_entries != entries:
        raise ValueError("the end record describes a multi-disk archive (corrupt)")
    pos = size - tail + start
    if entries == 0xFFFF or cd_size == 0xFFFFFFFF or cd_offset == 0xFFFFFFFF:
        loc = pos - _Z64_LOCATOR.size
        if loc - _Z64_EOCD.size < 0:
            raise ValueError("zip64 end records missing (corrupt)")
        f.seek(loc - _Z64_EOCD.size)
        rec = f.read(_Z64_EOCD.size + _Z64_LOCATOR.size)
        if rec[_Z64_EOCD.size:_Z64_EOCD.size + 4] != b"PK\x06\x07" or rec[:4] != b"PK\x06\x06":
            raise ValueError("zip64 end records missing (corrupt)")
        fields = _Z64_EOCD.unpack_from(rec, 0)
        entries, cd_size, cd_offset = fields[7], fields[8], fields[9]
    return {"pos": pos, "entries": entries, "cd_offset": cd_offset, "cd_size": cd_size,
            "comment_len": comment_len}


def _check_seal(f, size, end, comment):
    """Compare the seal in the comment with the end record and the central directory's bytes."""
    try:
        seal = json.loads(comment[len(SEAL_MAGIC):].decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise ValueError("the seal in the archive comment is corrupt") from None
    keys = {"version", "entries", "cd_offset", "cd_size", "cd_sha256"}
    if not isinstance(seal, dict) or not isinstance(seal.get("version"), int):
        raise ValueError("the seal in the archive comment is corrupt")
    if seal["version"] > FORMAT_VERSION:
        raise ValueError(f"written by a newer pydl (checkpoint format {seal['version']}; this pydl "
                         f"reads up to {FORMAT_VERSION})")
    if set(seal) != keys or seal["version"] != FORMAT_VERSION:
        raise ValueError("the seal in the archive comment is corrupt")
    if end["pos"] + _EOCD.size + end["comment_len"] != size:
        raise ValueError("trailing bytes after the end of the archive")
    for k in ("entries", "cd_offset", "cd_size"):
        if seal[k] != end[k]:
            raise ValueError(f"the seal records {k} = {seal[k]} but the end record says {end[k]} "
                             "(corrupt)")
    if end["cd_offset"] + end["cd_size"] > end["pos"]:
        raise ValueError("the central directory overlaps the end record (corrupt)")
    f.seek(end["cd_offset"])
    if hashlib.sha256(f.read(end["cd_size"])).hexdigest() != seal["cd_sha256"]:
        raise ValueError("the central directory does not match its checksum in the seal "
                         "(corrupt: member names, sizes or CRCs changed)")


def _check_members(infos, size, sealed):
    """Names, methods and declared sizes, before reading any member (caps what load allocates)."""
    seen = set()
    inflated = 0
    for info in infos:
        name = info.filename
        if name in seen:
            raise ValueError(f"member {name!r} appears twice (corrupt)")
        seen.add(name)
        if not name.endswith(".npy") and not (sealed and name == tree_mod.MANIFEST_NAME):
            raise ValueError(f"it holds non-array member {name!r}")
        if info.flag_bits & 0x1:
            raise ValueError(f"member {name!r} is encrypted")
        if info.compress_type == zipfile.ZIP_STORED:
            if info.compress_size != info.file_size:
                raise ValueError(f"member {name!r} is stored but declares {info.file_size} bytes "
                                 f"uncompressed and {info.compress_size} stored (corrupt)")
        elif info.compress_type == zipfile.ZIP_DEFLATED and not sealed:
            if info.file_size > info.compress_size * _DEFLATE_MAX_RATIO + 1024:
                raise ValueError(f"member {name!r} claims {info.file_size} bytes from "
                                 f"{info.compress_size} deflated bytes (impossible: corrupt or a zip bomb)")
            inflated += info.file_size
            if inflated > MAX_INFLATED_BYTES:
                raise ValueError(f"its compressed members claim more than {MAX_INFLATED_BYTES} bytes "
                                 "uncompressed (refused as a possible zip bomb; pydl never writes "
                                 "compressed members: re-save it with np.savez)")
        else:
            what = "compressed members" if sealed else f"compression method {info.compress_type}"
            raise ValueError(f"member {name!r} uses {what}, which pydl checkpoints never contain")
        if name == tree_mod.MANIFEST_NAME and info.file_size > MAX_MANIFEST_BYTES:
            raise ValueError(f"its manifest declares {info.file_size} bytes (at most "
                             f"{MAX_MANIFEST_BYTES} are read)")
    # every member's data lies inside the file and no two overlap (overlapping members are a
    # classic way to make a small file inflate to a large one)
    spans = sorted((i.header_offset, i.header_offset + _LOCAL_HEADER_SIZE
                    + len(i.filename.encode("utf-8")) + i.compress_size, i.filename) for i in infos)
    for (start, stop, name), nxt in zip(spans, spans[1:] + [(size, size, None)]):
        if stop > nxt[0]:
            raise ValueError(f"member {name!r} overlaps the next member or runs past the end of "
                             "the file (corrupt)")


def _read_npy(zf, info):
    """Read one ``.npy`` member without pickle, checking its header against its size and the
    CRC-32 of all of its bytes."""
    name = info.filename
    with zf.open(info) as f:
        try:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            elif version == (3, 0) and hasattr(np.lib.format, "_read_array_header"):
                shape, fortran, dtype = np.lib.format._read_array_header(f, version)
            else:
                raise ValueError(f"unsupported .npy format version {version}")
        except (ValueError, SyntaxError, TypeError, EOFError, KeyError, OverflowError) as e:
            raise ValueError(f"member {name!r} has a corrupt .npy header ({e})") from None
        if dtype.hasobject:
            raise ValueError(f"member {name!r} holds pickled Python objects (dtype {dtype}), "
                             "which pydl never loads")
        count = math.prod(int(s) for s in shape)
        need = count * dtype.itemsize
        have = info.file_size - f.tell()
        if need != have:
            raise ValueError(f"member {name!r} claims shape {tuple(shape)} of {dtype} ({need} bytes) "
                             f"but holds {have} bytes (truncated or corrupt)")
        buf = bytearray(need)
        view = memoryview(buf)
        done = 0
        while done < need:
            n = f.readinto(view[done:done + _CHUNK])
            if not n:
                raise ValueError(f"member {name!r} ends early (truncated or corrupt)")
            done += n
        if f.read(1):  # at the end: zipfile has compared the CRC-32 of every byte
            raise ValueError(f"member {name!r} holds more bytes than declared (corrupt)")
    order = "F" if fortran else "C"
    if need == 0:
        return np.zeros(shape, dtype=dtype, order=order)
    return np.ndarray(shape, dtype=dtype, buffer=buf, order=order)


def _read_manifest(zf, info):
    data = zf.read(info)  # checks the CRC-32
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ValueError(f"its manifest is not valid JSON ({type(e).__name__}: {e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != "pydl-checkpoint" or \
            not isinstance(manifest.get("version"), int) or "tree" not in manifest:
        raise ValueError("its manifest is malformed")
    if manifest["version"] > FORMAT_VERSION:
        raise ValueError(f"written by a newer pydl (checkpoint format {manifest['version']})")
    if manifest["version"] != FORMAT_VERSION:
        raise ValueError("its manifest is malformed (bad format version)")
    return manifest
