"""pydl/_C.pyi (tools/gen_c_stub.py) lists exactly what the compiled pydl._C exports, with the
parameters its pybind11 signatures declare: the stub cannot fall behind the bindings."""
import ast
import os
import re

import pydl
from pydl import _C


def stub_tree():
    path = os.path.join(os.path.dirname(pydl.__file__), "_C.pyi")     # the installed copy
    with open(path) as f:
        return ast.parse(f.read())


def runtime_params(name, doc):
    """Parameter names and whether each has a default, from pybind11's signature line."""
    m = re.fullmatch(re.escape(name) + r"\((.*)\) -> .*", doc.splitlines()[0].strip())
    assert m, f"{name}: no pybind11 signature in {doc.splitlines()[0]!r}"
    params, depth, cur = [], 0, ""
    for ch in m.group(1) + ",":
        depth += ch in "[(" and 1 or (ch in "])" and -1 or 0)
        if ch == "," and depth == 0:
            if cur.strip():
                params.append((cur.split(":")[0].strip(), " = " in cur))
            cur = ""
        else:
            cur += ch
    return params


def test_stub_lists_exactly_the_exported_names():
    tree = stub_tree()
    stubbed = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    stubbed |= {n.target.id for n in tree.body if isinstance(n, ast.AnnAssign)}
    stubbed |= {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
    exported = {n for n in dir(_C) if not n.startswith("__")}
    assert stubbed == exported, (f"in _C, not in the stub: {sorted(exported - stubbed)}; "
                                 f"in the stub, not in _C: {sorted(stubbed - exported)} "
                                 "(regenerate: python tools/gen_c_stub.py)")


def check_function(node, runtime):
    args = node.args.args
    defaults = len(node.args.defaults)
    stub = [(a.arg, i >= len(args) - defaults) for i, a in enumerate(args)]
    assert all(a.annotation is not None for a in args if a.arg != "self") and node.returns is not None, node.name
    assert stub == runtime_params(node.name, runtime.__doc__), node.name


def test_stub_signatures_match_the_bindings():
    for node in stub_tree().body:
        if isinstance(node, ast.FunctionDef):
            check_function(node, getattr(_C, node.name))


def test_stub_classes_list_exactly_the_methods():
    classes = [n for n in stub_tree().body if isinstance(n, ast.ClassDef)]
    assert {c.name for c in classes} == {n for n in dir(_C) if isinstance(getattr(_C, n), type)}
    for cls in classes:
        runtime = getattr(_C, cls.name)
        methods = [n for n in cls.body if isinstance(n, ast.FunctionDef)]
        assert {m.name for m in methods} == {"__init__"} | {n for n in vars(runtime) if not n.startswith("_")}
        for m in methods:
            check_function(m, getattr(runtime, m.name))
