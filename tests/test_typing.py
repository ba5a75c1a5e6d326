"""The typed API: every public function and method carries annotations (tests/test_c_stub.py
covers the compiled module's stub; CI runs ``mypy pydl`` on them)."""
import importlib
import inspect

import pytest

import pydl

PACKAGES = ["pydl", "pydl.ops", "pydl.nn", "pydl.nn.init", "pydl.nn.utils", "pydl.optim", "pydl.optim.lr_scheduler",
            "pydl.train", "pydl.train.callbacks", "pydl.train.metrics", "pydl.train.regularizers", "pydl.data",
            "pydl.data.transforms", "pydl.datasets", "pydl.model_selection", "pydl.sklearn"]


def public_callables():
    """(qualified name, function) of every public function and every public method (and
    ``__init__`` / ``__call__``) of every public class, its pydl base classes included."""
    seen = {}
    for pkg in PACKAGES:
        mod = importlib.import_module(pkg)
        names = getattr(mod, "__all__", None) or [      # else what the module itself defines
            n for n, v in vars(mod).items() if not n.startswith("_") and getattr(v, "__module__", None) == pkg]
        for name in names:
            obj = getattr(mod, name)
            if inspect.ismodule(obj) or not callable(obj):
                continue
            if inspect.isclass(obj):
                if not obj.__module__.startswith("pydl"):
                    continue
                for klass in obj.__mro__:
                    if not klass.__module__.startswith("pydl"):
                        continue
                    for attr, value in vars(klass).items():
                        if attr.startswith("_") and attr not in ("__init__", "__call__"):
                            continue
                        fn = value.fget if isinstance(value, property) else getattr(value, "__func__", value)
                        if inspect.isfunction(fn):
                            seen.setdefault(f"{klass.__module__}.{klass.__qualname__}.{attr}", fn)
            elif inspect.isfunction(obj) and obj.__module__.startswith("pydl"):
                seen.setdefault(f"{obj.__module__}.{obj.__qualname__}", obj)
    return sorted(seen.items())


def missing_annotations(fn):
    sig = inspect.signature(fn)
    missing = [p.name for i, p in enumerate(sig.parameters.values())
               if p.annotation is inspect.Parameter.empty and not (i == 0 and p.name in ("self", "cls"))]
    if sig.return_annotation is inspect.Signature.empty:
        missing.append("return")
    return missing


def test_public_api_is_annotated():
    pytest.importorskip("sklearn")                     # pydl.sklearn is part of the public API
    items = public_callables()
    assert len(items) > 250                            # the walk does find the API
    bare = {name: missing for name, fn in items if (missing := missing_annotations(fn))}
    assert not bare, f"{len(bare)} public callables lack annotations: {bare}"


def test_package_ships_its_type_information():
    import os
    root = os.path.dirname(pydl.__file__)
    for rel in ("py.typed", "_C.pyi", os.path.join("data", "_augment.pyi")):
        assert os.path.isfile(os.path.join(root, rel)), rel
