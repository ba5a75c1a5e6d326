"""Write pydl/_C.pyi, the typed stub of the compiled module, from the built pydl._C itself.

pybind11 puts each function's signature on the first line of its docstring; this script reads
them, normalizes pybind11's spellings (which change between its versions) to plain typing, and
types the ``object`` arguments by name: the bindings take arrays as ``py::object`` and check
them in C++ (csrc/bindings/args.h). tests/test_c_stub.py checks that the stub lists exactly the
names _C exports, with the same parameters.

Usage (after building _C): python tools/gen_c_stub.py [--check]
"""
import argparse
import os
import re
import sys

#: ``object`` arguments that are lists of arrays (the optimizer steps' flat lists) ...
ARRAY_LISTS = {"params", "grads", "exp_avgs", "exp_avg_sqs", "square_avgs", "acc_deltas", "state_sums",
               "weights"}
#: ... or lists that may be None (documented in csrc/bindings/optim.cpp)
OPTIONAL_ARRAY_LISTS = {"momentum_buffers", "grad_avgs", "max_exp_avg_sqs"}
#: ... or lists whose items may be None (a layer without bias; the chain's last output; a gradient
#: the chain's backward makes)
ARRAY_OR_NONE_LISTS = {"biases", "outs", "grad_weights"}
#: other ``object`` arguments by name; every remaining one is an array or None (several take None
#: for "skip", see the docstrings; the bindings raise TypeError for anything else)
OBJECT_ARGS = {"first": "Sequence[bool] | None", "states": "Sequence[Sequence[_Array]]",
               "accumulate_weights": "Sequence[bool]", "accumulate_biases": "Sequence[bool]",
               "stages": "list[tuple[int, int, str, float, bool]] | None",
               "grad_biases": "Sequence[_Array | bool | None]"}
#: ``object`` arguments of one function that differ from OBJECT_ARGS / the lists above
FUNCTION_ARGS = {("linear_chain_forward", "outs"): "Sequence[_Array] | None",
                 ("__init__", "grad_weights"): "Sequence[_Array]",  # MlpStep's: arrays it writes
                 ("__init__", "grad_biases"): "Sequence[_Array | None]"}
#: return types of ``object`` results by function name (all else: an array or None)
OBJECT_RETURNS = {"step": "float | None", "epoch": "tuple[list[float], list[int] | None]",
                  "linear_chain_forward": "list[_Array]",
                  "linear_chain_backward": "tuple[_Array | None, list[_Array], list[_Array | None]]"}

REPLACEMENTS = [  # pybind11's spellings -> plain typing
    (re.compile(r"typing\.Annotated\[(collections\.abc\.Sequence\[[^\]]*\])[^\]]*\]"), r"\1"),
    (re.compile(r"typing\.SupportsFloat \| typing\.SupportsIndex"), "float"),
    (re.compile(r"typing\.SupportsInt \| typing\.SupportsIndex"), "int"),
    (re.compile(r"collections\.abc\.Sequence(?!\[)"), "Sequence[Any]"),
    (re.compile(r"collections\.abc\.Sequence"), "Sequence"),
    (re.compile(r"^list$"), "list[Any]"),
]


def split_top(text, sep=","):
    """Split ``text`` at ``sep`` outside brackets and quotes."""
    parts, depth, quote, cur = [], 0, None, []
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    if "".join(cur).strip():
        parts.append("".join(cur).strip())
    return parts


def parse_signature(name, doc):
    """(params, return type) from a pybind11 docstring's first line; params are
    (name, type, default or None). A method's ``self`` is kept, untyped."""
    first = (doc or "").splitlines()[0] if doc else ""
    m = re.fullmatch(re.escape(name) + r"\((.*)\) -> (.*)", first.strip())
    if not m:
        raise ValueError(f"{name}: no pybind11 signature in its docstring: {first!r}")
    params = []
    for part in split_top(m.group(1)):
        head, _, default = part.partition(" = ")
        pname, _, ptype = head.partition(": ")
        if pname.strip() == "self":
            ptype = ""
        params.append((pname.strip(), ptype.strip(), default.strip() or None))
    return params, m.group(2).strip()


def typed(pname, ptype):
    for pattern, repl in REPLACEMENTS:
        ptype = pattern.sub(repl, ptype)
    if ptype != "object":
        return ptype
    if pname in ARRAY_LISTS:
        return "Sequence[_Array]"
    if pname in OPTIONAL_ARRAY_LISTS:
        return "Sequence[_Array] | None"
    if pname in ARRAY_OR_NONE_LISTS:
        return "Sequence[_Array | None]"
    return OBJECT_ARGS.get(pname, "_Array | None")


def summary(doc):
    """The docstring without its signature line, as a stub docstring (or None)."""
    rest = "\n".join((doc or "").splitlines()[1:]).strip()
    rest = rest.replace('"""', "'''").replace("\\", "\\\\").replace("\n", "\n    ")
    return rest.replace("\n    \n", "\n\n") or None


def render_function(name, doc, indent=""):
    """A ``def`` line with typed parameters, and the docstring's text (or ``...``) as its body."""
    params, ret = parse_signature(name, doc)
    args = []
    for pname, ptype, default in params:
        if default is not None and not re.fullmatch(r"[-\w.]+|'[^']*'", default):
            default = "..."                  # a mutable default such as [] is written as ... in a stub
        ptyped = FUNCTION_ARGS.get((name, pname)) if ptype == "object" else None
        args.append(pname + (f": {ptyped or typed(pname, ptype)}" if ptype else "")
                    + (f" = {default}" if default is not None else ""))
    ret = OBJECT_RETURNS.get(name, typed("", ret)) if ret in ("object", "tuple") else typed("", ret)
    text = summary(doc)
    return ["", f"{indent}def {name}({', '.join(args)}) -> {ret}:",
            f'{indent}    """{text}"""'.replace("\n    ", "\n    " + indent) if text else f"{indent}    ..."]


def render_class(name, cls):
    """A class with its constructor and public methods."""
    out = ["", "", f"class {name}:", f'    """{cls.__doc__}"""' if cls.__doc__ else "    ..."]
    for meth in ["__init__"] + sorted(n for n in vars(cls) if not n.startswith("_")):
        out += render_function(meth, getattr(cls, meth).__doc__, indent="    ")
    return out + [""]


def render(module):
    out = ['"""Typed stub of pydl._C (generated by tools/gen_c_stub.py from the built module: do not edit)."""',
           "from collections.abc import Sequence", "from typing import Any", "",
           "import numpy.typing as npt", "", "_Array = npt.NDArray[Any]", ""]
    for name in sorted(n for n in dir(module) if not n.startswith("__")):
        obj = getattr(module, name)
        if isinstance(obj, type):
            out += render_class(name, obj)
        elif callable(obj):
            out += render_function(name, obj.__doc__)
        else:
            out.append(f"{name}: {type(obj).__name__}")
    text = "\n".join(out).replace("\n\n\ndef", "\n\ndef")
    return re.sub(r"\n{4,}", "\n\n\n", text).rstrip("\n") + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if pydl/_C.pyi differs from what would be written")
    args = ap.parse_args(argv)
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path.insert(0, repo)
    from pydl import _C
    text = render(_C)
    path = os.path.join(repo, "pydl", "_C.pyi")
    if args.check:
        with open(path) as f:
            same = f.read() == text
        print(f"{path}: {'up to date' if same else 'differs from the built _C'}")
        return 0 if same else 1
    with open(path, "w") as f:
        f.write(text)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
