"""What a checkpoint holds: validated keys, and nested state split into arrays plus a JSON tree.

``pydl.save`` accepts either a *flat* state (a dict of str key -> array, as ``Module.state_dict()``)
or a *nested* one (dicts, lists and tuples of arrays, numbers, bools, None and strings, as
``Optimizer.state_dict()``). Both are turned into a list of ``(member name, ndarray)`` pairs; a
nested state also gets a JSON-serialisable *tree* that references its arrays by member name and
records what JSON cannot say by itself (tuples, int dict keys, numpy scalars). Nothing here
touches the file system, so every error is raised before the destination is opened. No pickle.
"""
import numpy as np

#: Longest key accepted, in bytes of UTF-8 (zip member names are limited to 65535 bytes; keys
#: this long are certainly mistakes).
MAX_KEY_BYTES = 1024

#: Deepest nesting accepted in a nested state (also stops self-referencing containers).
MAX_DEPTH = 64

#: Name of the manifest member of nested checkpoints.
MANIFEST_NAME = "__pydl__.json"

#: Member-name prefix of the arrays of nested checkpoints.
_TREE_PREFIX = "__pydl__/"


def check_key(key, where):
    """Validate one string key of a state dict.

    Parameters
    ----------
    key : object
        The key.
    where : str
        How to name it in errors (e.g. ``"obj"`` or ``"obj['state']"``).

    Returns
    -------
    str
        ``key`` itself.

    Raises
    ------
    TypeError
        If ``key`` is not a str.
    ValueError
        If it is empty, holds a NUL character, is not encodable as UTF-8 (lone surrogates) or is
        longer than :data:`MAX_KEY_BYTES` bytes in UTF-8.
    """
    if not isinstance(key, str):
        raise TypeError(f"{where}: keys must be str, got {type(key).__name__} ({key!r})")
    if not key:
        raise ValueError(f"{where}: empty key '' (keys must be non-empty)")
    if "\0" in key:
        raise ValueError(f"{where}: key {key!r} holds a NUL character")
    try:
        n = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValueError(f"{where}: key {key!r} is not valid Unicode (lone surrogate)") from None
    if n > MAX_KEY_BYTES:
        raise ValueError(f"{where}: key {key[:40]!r}... is {n} bytes long in UTF-8; "
                         f"at most {MAX_KEY_BYTES} are allowed")
    return key


def plain_member_name(key):
    """Member name of ``key`` in a flat checkpoint, or None if the key needs the manifest.

    A flat checkpoint whose keys are all plain is an ordinary ``.npz`` (``np.load`` lists the same
    keys). A backslash is not plain: zipfile turns it into ``/`` on Windows.
    """
    if "\\" in key:
        return None
    return key + ".npy"


def _array_of(value, where):
    """``value`` as an ndarray that ``np.save`` writes without pickle, or TypeError."""
    from .nn.parameter import Parameter

    if isinstance(value, Parameter):
        value = value.data
    a = np.asarray(value)
    if a.dtype.hasobject:
        raise TypeError(f"{where}: expected a numeric array, got dtype {a.dtype} (would need pickle)")
    return a


def split(obj):
    """Turn what ``pydl.save`` was given into member arrays (and a tree for nested state).

    Parameters
    ----------
    obj : Module or mapping
        A module (its ``state_dict()`` is saved), a flat dict str -> array, or a nested state:
        a mapping with str keys whose values are arrays, numpy scalars, Parameters, None, bool,
        int, float, str, or lists / tuples / dicts (str or int keys) of those.

    Returns
    -------
    members : list of (str, ndarray)
        Member name (ending in ``.npy``) and array, in saving order.
    tree : object or None
        None for a flat state whose keys are all plain (the archive alone says everything);
        otherwise the JSON-serialisable description of the structure (see :func:`join`).

    Raises
    ------
    TypeError
        For a value or key of an unsupported type (named by its path, e.g.
        ``obj['state'][0]['exp_avg']``).
    ValueError
        For an invalid key (see :func:`check_key`) or nesting deeper than :data:`MAX_DEPTH`.
    """
    from .nn.module import Module
    from .nn.parameter import Parameter

    if isinstance(obj, Module):
        obj = obj.state_dict()
    if not hasattr(obj, "items") or isinstance(obj, np.ndarray):
        raise TypeError(f"obj: expected an nn.Module or a dict (str -> array, or nested state), "
                        f"got {type(obj).__name__}")
    items = list(obj.items())
    for k, _ in items:
        check_key(k, "obj")
    flat = all(isinstance(v, (np.ndarray, Parameter)) for _, v in items)
    if flat and all(plain_member_name(k) is not None for k, _ in items):
        return [(plain_member_name(k), _array_of(v, f"obj[{k!r}]")) for k, v in items], None
    members = []
    tree = _encode(dict(items), "obj", members, 0)
    return members, tree


def _encode(value, where, members, depth):
    """JSON-serialisable node of ``value``; its arrays are appended to ``members``.

    Nodes: None, bool, int, float and str as themselves; ``{"array": name}`` for an ndarray (or
    Parameter), ``{"array": name, "scalar": true}`` for a numpy scalar; ``{"list": [...]}``,
    ``{"tuple": [...]}`` and ``{"dict": [[key, node], ...]}`` (key a str or an int).
    """
    from .nn.parameter import Parameter

    if depth > MAX_DEPTH:
        raise ValueError(f"{where}: nested deeper than {MAX_DEPTH} levels (or it contains itself)")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):  # bool handled above
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, (np.ndarray, Parameter, np.generic)):
        name = f"{_TREE_PREFIX}{len(members)}.npy"
        members.append((name, _array_of(value, where)))
        node = {"array": name}
        if isinstance(value, np.generic):
            node["scalar"] = True
        return node
    if isinstance(value, (list, tuple)):
        tag = "tuple" if isinstance(value, tuple) else "list"
        return {tag: [_encode(v, f"{where}[{i}]", members, depth + 1) for i, v in enumerate(value)]}
    if isinstance(value, dict):
        pairs = []
        for k, v in value.items():
            if isinstance(k, bool) or not isinstance(k, (str, int)):
                raise TypeError(f"{where}: dict keys must be str or int, got {type(k).__name__} ({k!r})")
            if isinstance(k, str):
                check_key(k, where)
            else:
                k = int(k)
            pairs.append([k, _encode(v, f"{where}[{k!r}]", members, depth + 1)])
        return {"dict": pairs}
    raise TypeError(f"{where}: cannot save a {type(value).__name__} (expected an array, a number, "
                    "a bool, None, a str, or a list / tuple / dict of those)")


def join(tree, arrays):
    """Rebuild the nested state saved by :func:`split` from its tree and member arrays.

    Parameters
    ----------
    tree : object
        The tree read from the manifest (untrusted: checked node by node).
    arrays : dict
        Member name -> ndarray, as read from the archive.

    Returns
    -------
    dict
        The state as saved: tuples as tuples, int keys as ints, numpy scalars as numpy scalars.

    Raises
    ------
    ValueError
        If the tree is malformed, references a member that is not there, references one twice,
        or leaves an array member unreferenced.
    """
    used = set()
    out = _decode(tree, arrays, used, 0)
    if not isinstance(out, dict):
        raise ValueError("manifest: the top level is not a dict")
    unused = sorted(set(arrays) - used)
    if unused:
        raise ValueError(f"manifest: array members {unused[:3]} are not referenced")
    return out


def _decode(node, arrays, used, depth):
    if depth > MAX_DEPTH + 1:
        raise ValueError("manifest: nested too deeply")
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if not isinstance(node, dict) or len(node) not in (1, 2):
        raise ValueError(f"manifest: malformed node {str(node)[:60]}")
    if "array" in node:
        name = node["array"]
        scalar = node.get("scalar", False)
        if not isinstance(name, str) or set(node) - {"array", "scalar"} or not isinstance(scalar, bool):
            raise ValueError(f"manifest: malformed array node {str(node)[:60]}")
        if name not in arrays:
            raise ValueError(f"manifest: references the missing member {name!r}")
        if name in used:
            raise ValueError(f"manifest: references the member {name!r} twice")
        used.add(name)
        a = arrays[name]
        if scalar:
            if a.ndim != 0:
                raise ValueError(f"manifest: member {name!r} is marked scalar but has shape {a.shape}")
            return a[()]
        return a
    if len(node) != 1:
        raise ValueError(f"manifest: malformed node {str(node)[:60]}")
    (tag, body), = node.items()
    if tag in ("list", "tuple") and isinstance(body, list):
        seq = [_decode(v, arrays, used, depth + 1) for v in body]
        return tuple(seq) if tag == "tuple" else seq
    if tag == "dict" and isinstance(body, list):
        out = {}
        for pair in body:
            if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], (str, int))
                    and not isinstance(pair[0], bool)):
                raise ValueError(f"manifest: malformed dict entry {str(pair)[:60]}")
            if pair[0] in out:
                raise ValueError(f"manifest: duplicate dict key {pair[0]!r}")
            out[pair[0]] = _decode(pair[1], arrays, used, depth + 1)
        return out
    raise ValueError(f"manifest: unknown node {tag!r}")
