"""Capture and restore every random stream a training run draws from, for BackupAndRestore.

The streams: pydl's global generator (``pydl._random``: weight init, shuffling, dropout seeds,
GaussianNoise, weight noise, transforms without their own seed), numpy's legacy global
``np.random`` state and Python's ``random`` module (for user code drawing from them), and any
``np.random.Generator`` / ``np.random.RandomState`` held by the objects given (a transform with
its own seed, a Compose of them, a closure). States are plain nested data (dicts, tuples, ints,
arrays) that ``pydl.save`` writes without pickle; restoring sets them in place, so objects that
hold a reference to a generator (the Trainer's shuffling) see the restored state.
"""
import random
import types

import numpy as np

from .. import _random

_MAX_DEPTH = 6


def find_generators(*roots):
    """The numpy generators reachable from ``roots`` through attributes, containers, closures
    and bound methods (depth-limited, in a deterministic order), except pydl's global one."""
    found, seen = [], set()

    def visit(obj, depth):
        if obj is None or id(obj) in seen or depth > _MAX_DEPTH:
            return
        seen.add(id(obj))
        if isinstance(obj, (np.random.Generator, np.random.RandomState)):
            found.append(obj)
            return
        if isinstance(obj, (str, bytes, int, float, complex, bool, np.ndarray, np.generic, type,
                            types.ModuleType)):
            return
        if isinstance(obj, (list, tuple)):
            children = list(obj)
        elif isinstance(obj, dict):
            children = list(obj.values())
        elif isinstance(obj, types.MethodType):
            children = [obj.__self__, obj.__func__]
        elif isinstance(obj, types.FunctionType):
            children = [c.cell_contents for c in (obj.__closure__ or ()) if _has_contents(c)]
        else:
            children = list(vars(obj).values()) if hasattr(obj, "__dict__") else []
        for child in children:
            visit(child, depth + 1)

    for root in roots:
        visit(root, 0)
    return [g for g in found if g is not _random.generator()]


def _has_contents(cell):
    try:
        cell.cell_contents
    except ValueError:  # an empty cell
        return False
    return True


def _generator_state(g):
    if isinstance(g, np.random.Generator):
        return {"kind": "Generator", "state": g.bit_generator.state}
    return {"kind": "RandomState", "state": g.get_state(legacy=False)}


def _set_generator_state(g, state, where):
    kind = "Generator" if isinstance(g, np.random.Generator) else "RandomState"
    if not isinstance(state, dict) or state.get("kind") != kind:
        raise ValueError(f"{where}: the backup holds a {state.get('kind') if isinstance(state, dict) else state!r} "
                         f"state for a {kind}")
    if kind == "Generator":
        g.bit_generator.state = state["state"]
    else:
        g.set_state(state["state"])


def capture(generators):
    """The state of every stream: pydl's, numpy's legacy global, Python's, then ``generators``."""
    return {"pydl": _random.generator().bit_generator.state,
            "numpy": np.random.get_state(legacy=False),
            "python": random.getstate(),
            "owned": [_generator_state(g) for g in generators]}


def restore(state, generators, where="rng"):
    """Set every stream to ``state`` (from :func:`capture`); ``generators`` as when captured."""
    owned = state["owned"]
    if len(owned) != len(generators):
        raise ValueError(f"{where}: the backup holds {len(owned)} generator states, the run has "
                         f"{len(generators)} generators (transforms with their own seed)")
    _random.generator().bit_generator.state = state["pydl"]
    np.random.set_state(state["numpy"])
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    for i, (g, s) in enumerate(zip(generators, owned)):
        _set_generator_state(g, s, f"{where}['owned'][{i}]")
