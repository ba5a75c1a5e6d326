"""nn.Module: the base class of layers, with explicit forward and backward passes."""
from collections import OrderedDict, namedtuple

import numpy as np

from .._validate import shape_str
from .parameter import Parameter

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class StateDictError(RuntimeError, KeyError, ValueError):
    """load_state_dict found missing, unexpected or mis-shaped keys.

    A RuntimeError as in PyTorch, and also a KeyError / ValueError so that either catches it.
    """

    def __str__(self):
        return str(self.args[0]) if self.args else ""


class Module:
    """Base class of pydl layers: forward stores what backward needs; backward returns dL/dinput.

    Subclasses implement ``forward(x)`` and ``backward(grad_out)``. ``backward`` fills ``.grad``
    of the module's parameters: it writes the gradient when ``.grad is None`` and adds to it
    otherwise (PyTorch accumulation). Assigning a :class:`Parameter` or a :class:`Module` to an
    attribute registers it (``named_parameters`` yields PyTorch dotted names such as
    ``"0.weight"``); ``register_buffer`` registers non-trainable state (e.g. running statistics)
    that ``state_dict`` includes.
    """

    def __init__(self):
        d = self.__dict__
        d["_parameters"] = OrderedDict()
        d["_buffers"] = OrderedDict()
        d["_modules"] = OrderedDict()
        d["training"] = True

    # ----------------------------------------------------------------- registration
    def __setattr__(self, name, value):
        d = self.__dict__
        if isinstance(value, (Parameter, Module)):
            if "_parameters" not in d:
                raise AttributeError(f"cannot assign {type(value).__name__} '{name}' before Module.__init__() call")
            target = d["_parameters"] if isinstance(value, Parameter) else d["_modules"]
            for reg in (d["_parameters"], d["_buffers"], d["_modules"]):
                if reg is not target:
                    reg.pop(name, None)
            target[name] = value  # a re-assigned name keeps its place (dict order)
        elif "_parameters" in d:
            if name in d["_parameters"]:
                if value is not None:
                    raise TypeError(f"cannot assign {type(value).__name__} as parameter '{name}' "
                                    "(nn.Parameter or None expected)")
                d["_parameters"][name] = None
            elif name in d["_buffers"]:
                if value is not None and not isinstance(value, np.ndarray):
                    raise TypeError(f"cannot assign {type(value).__name__} as buffer '{name}' "
                                    "(numpy.ndarray or None expected)")
                d["_buffers"][name] = value
            elif name in d["_modules"]:
                if value is not None:
                    raise TypeError(f"cannot assign {type(value).__name__} as child module '{name}' "
                                    "(nn.Module or None expected)")
                d["_modules"][name] = None
        d[name] = value

    def __delattr__(self, name):
        d = self.__dict__
        for reg in ("_parameters", "_buffers", "_modules"):
            if name in d.get(reg, ()):
                del d[reg][name]
        object.__delattr__(self, name)

    def register_parameter(self, name, param):
        """Register ``param`` (a Parameter or None) under ``name``."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"param: expected an nn.Parameter or None, got {type(param).__name__}")
        _check_name(name, self)
        self._parameters[name] = param
        self.__dict__[name] = param

    def register_buffer(self, name, array):
        """Register a non-trainable ndarray (or None) saved in ``state_dict`` under ``name``."""
        if array is not None and not isinstance(array, np.ndarray):
            raise TypeError(f"array: expected a numpy.ndarray or None, got {type(array).__name__}")
        _check_name(name, self)
        self._buffers[name] = array
        self.__dict__[name] = array

    def add_module(self, name, module):
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"module: expected an nn.Module or None, got {type(module).__name__}")
        _check_name(name, self)
        self._modules[name] = module
        self.__dict__[name] = module

    # ----------------------------------------------------------------- passes
    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        raise NotImplementedError(f"{type(self).__name__}.forward is not implemented")

    def backward(self, grad_out):
        raise NotImplementedError(f"{type(self).__name__}.backward is not implemented")

    # ----------------------------------------------------------------- traversal
    def children(self):
        for m in self._modules.values():
            if m is not None:
                yield m

    def named_children(self):
        for name, m in self._modules.items():
            if m is not None:
                yield name, m

    def named_modules(self, prefix=""):
        """Yield (dotted name, module) for this module (name ``prefix``) and all descendants."""
        yield prefix, self
        for name, m in self._modules.items():
            if m is not None:
                yield from m.named_modules(prefix + "." + name if prefix else name)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_parameters(self, prefix="", recurse=True):
        """Yield (dotted name, Parameter), each Parameter once, in registration order."""
        seen = set()
        mods = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mp, m in mods:
            for name, p in m._parameters.items():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                yield (mp + "." + name if mp else name), p

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix="", recurse=True):
        mods = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mp, m in mods:
            for name, b in m._buffers.items():
                if b is not None:
                    yield (mp + "." + name if mp else name), b

    def buffers(self, recurse=True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    # ----------------------------------------------------------------- modes and grads
    def train(self, mode=True):
        """Set training mode (dropout, batch norm, noise active) on this module and its children."""
        if not isinstance(mode, bool):
            raise TypeError(f"mode: expected a bool, got {type(mode).__name__}")
        for m in self.modules():
            m.__dict__["training"] = mode
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self, set_to_none=True):
        """Reset the gradients of all parameters: to None (default, as PyTorch) or to zeros."""
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.fill(0)

    # ----------------------------------------------------------------- state
    def _state_entries(self):
        """(dotted name, array) of every parameter and buffer; shared ones under each name."""
        for mp, m in self.named_modules():
            pre = mp + "." if mp else ""
            for name, p in m._parameters.items():
                if p is not None:
                    yield pre + name, p.data
            for name, b in m._buffers.items():
                if b is not None:
                    yield pre + name, b

    def state_dict(self):
        """OrderedDict name -> ndarray copy of every parameter and buffer (PyTorch dotted names)."""
        return OrderedDict((name, np.array(a, copy=True)) for name, a in self._state_entries())

    def load_state_dict(self, state_dict, strict=True):
        """Copy arrays from ``state_dict`` into the parameters and buffers, in place.

        With ``strict`` (default) the keys must match ``state_dict()``'s exactly; any missing,
        unexpected or mis-shaped key raises StateDictError (a RuntimeError, also a KeyError and
        ValueError) naming them, and nothing is modified. Mis-shaped keys always raise. Returns
        ``IncompatibleKeys(missing_keys, unexpected_keys)``.
        """
        if not hasattr(state_dict, "keys") or not hasattr(state_dict, "__getitem__"):
            raise TypeError(f"state_dict: expected a mapping, got {type(state_dict).__name__}")
        entries = list(self._state_entries())
        own = {name for name, _ in entries}
        missing = [name for name, _ in entries if name not in state_dict]
        unexpected = [k for k in state_dict.keys() if k not in own]
        problems, values = [], []
        for name, dst in entries:
            if name not in state_dict:
                continue
            src = state_dict[name]
            if isinstance(src, Parameter):
                src = src.data
            src = np.asarray(src)
            if src.shape != dst.shape:
                problems.append(f"size mismatch for {name}: expected shape {shape_str(dst.shape)}, "
                                f"got {shape_str(src.shape)}")
            elif not (np.issubdtype(src.dtype, np.number) or src.dtype == np.bool_) or src.dtype.kind == "c":
                problems.append(f"dtype of {name}: expected a real numeric array, got {src.dtype}")
            else:
                values.append((dst, src))
        if strict:
            if missing:
                problems.insert(0, "missing keys: " + ", ".join(repr(k) for k in missing))
            if unexpected:
                problems.insert(len(missing) > 0, "unexpected keys: " + ", ".join(repr(k) for k in unexpected))
        if problems:
            raise StateDictError(f"error(s) in loading state_dict for {type(self).__name__}: " + "; ".join(problems))
        for dst, src in values:
            np.copyto(dst, src, casting="unsafe")
        return IncompatibleKeys(missing, unexpected)

    # ----------------------------------------------------------------- repr
    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = []
        extra = self.extra_repr()
        if extra:
            lines.extend(extra.split("\n"))
        for name, m in self._modules.items():
            sub = repr(m).replace("\n", "\n  ")
            lines.append(f"({name}): {sub}")
        if not lines:
            return f"{type(self).__name__}()"
        if len(lines) == 1 and not self._modules:
            return f"{type(self).__name__}({lines[0]})"
        return type(self).__name__ + "(\n  " + "\n  ".join(lines) + "\n)"


def _check_name(name, module):
    if not isinstance(name, str):
        raise TypeError(f"name: expected a str, got {type(name).__name__}")
    if name == "" or "." in name:
        raise KeyError(f"name: must be non-empty and contain no '.', got {name!r}")
    if hasattr(type(module), name):
        raise KeyError(f"name: attribute {name!r} already exists")


def check_input(x, dtype=None, name="input"):
    """The checks every layer makes on its input: an ndarray of float32/float64 (or ``dtype``)."""
    if type(x) is not np.ndarray and not isinstance(x, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(x).__name__}")
    if dtype is not None:
        if x.dtype != dtype:
            raise TypeError(f"{name}: expected dtype {dtype} (the layer's dtype), got {x.dtype}")
    elif x.dtype != np.float32 and x.dtype != np.float64:
        raise TypeError(f"{name}: expected dtype float32 or float64, got {x.dtype}")


def check_grad(grad_out, out_shape, dtype, name="grad_out"):
    """grad_out must match the forward output's shape and dtype."""
    if not isinstance(grad_out, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(grad_out).__name__}")
    if grad_out.shape != out_shape:
        raise ValueError(f"{name}: expected shape {shape_str(out_shape)} (the forward output's), "
                         f"got {shape_str(grad_out.shape)}")
    if grad_out.dtype != dtype:
        raise TypeError(f"{name}: expected dtype {dtype} (the forward output's), got {grad_out.dtype}")


def no_forward(module):
    return RuntimeError(f"{type(module).__name__}.backward called before forward")
