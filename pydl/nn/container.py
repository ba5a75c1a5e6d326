"""nn.Sequential (with Linear+activation fusion) and nn.Residual."""
from collections import OrderedDict

import numpy as np

from .activation import _Activation
from .linear import Linear
from .module import Module, check_grad, no_forward


def _plain_linear(m):
    return (isinstance(m, Linear) and type(m)._forward is Linear._forward and type(m).forward is Linear.forward
            and type(m).backward is Linear.backward and type(m)._backward is Linear._backward)


def _fusable(lin, act):
    """A Linear followed by an activation the fused kernels handle, neither with overridden passes."""
    return (_plain_linear(lin) and isinstance(act, _Activation) and type(act).forward is _Activation.forward
            and type(act).backward is _Activation.backward and act.fusable)


class Sequential(Module):
    """Runs its modules in order; backward runs their backward passes in reverse.

    ``Sequential(*modules)`` or ``Sequential(OrderedDict(name=module))``; indexable (ints and
    slices; a slice is a Sequential sharing the modules), ``len``, iteration, ``append``.
    A Linear directly followed by ReLU / LeakyReLU (slope >= 0) / Sigmoid / Tanh runs as one
    fused layer: the activation inside the GEMM epilogue, and one fused backward call
    (dz = dy act'(y), dX, dW, db) -- same results as running them separately.
    """

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, m in modules[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(modules):
                if not isinstance(m, Module):
                    raise TypeError(f"modules[{i}]: expected an nn.Module, got {type(m).__name__}")
                self.add_module(str(i), m)
        self._plan = None
        self._ran = None

    # ----------------------------------------------------------------- container protocol
    def __setattr__(self, name, value):
        super().__setattr__(name, value)
        if name in self.__dict__.get("_modules", ()):
            self.__dict__["_plan"] = None

    def add_module(self, name, module):
        super().add_module(name, module)
        self.__dict__["_plan"] = None

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter([m for m in self._modules.values() if m is not None])

    def _index(self, idx):
        n = len(self._modules)
        if isinstance(idx, bool) or not isinstance(idx, (int, np.integer)):
            raise TypeError(f"index: expected an int or a slice, got {type(idx).__name__}")
        if not -n <= idx < n:
            raise IndexError(f"index {idx} is out of range for a Sequential of length {n}")
        return int(idx) % n

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return Sequential(OrderedDict(list(self._modules.items())[idx]))
        return list(self._modules.values())[self._index(idx)]

    def __setitem__(self, idx, module):
        if not isinstance(module, Module):
            raise TypeError(f"module: expected an nn.Module, got {type(module).__name__}")
        key = list(self._modules.keys())[self._index(idx)]
        setattr(self, key, module)

    def __delitem__(self, idx):
        keys = list(self._modules.keys())
        doomed = keys[idx] if isinstance(idx, slice) else [keys[self._index(idx)]]
        for k in doomed:
            delattr(self, k)
        items = list(self._modules.values())  # renumber as PyTorch does
        for k in list(self._modules.keys()):
            delattr(self, k)
        for i, m in enumerate(items):
            self.add_module(str(i), m)

    def append(self, module):
        if not isinstance(module, Module):
            raise TypeError(f"module: expected an nn.Module, got {type(module).__name__}")
        self.add_module(str(len(self._modules)), module)
        return self

    def __getstate__(self):
        # the plan holds closures over this instance's modules: a copy must build its own
        state = self.__dict__.copy()
        state["_plan"] = state["_ran"] = None
        return state

    # ----------------------------------------------------------------- passes
    def _build_plan(self):
        """Forward/backward callables; fused (Linear, activation) pairs become one step."""
        mods = [m for m in self._modules.values() if m is not None]
        if len({id(m) for m in mods}) != len(mods):
            raise ValueError("Sequential: a module instance appears twice; each module keeps the cache of one "
                             "forward for its explicit backward, so use separate instances (Parameters may "
                             "be shared)")
        fwd, bwd = [], []
        i = 0
        while i < len(mods):
            m = mods[i]
            if i + 1 < len(mods) and _fusable(m, mods[i + 1]):
                act = mods[i + 1]
                fwd.append(_fused_forward(m, act))
                bwd.append(m._backward)
                i += 2
            else:
                fwd.append(m)
                bwd.append(m._backward if _plain_linear(m) else m.backward)
                i += 1
        first_skips = bool(mods) and (_plain_linear(mods[0]) or (len(mods) > 1 and _fusable(mods[0], mods[1])))
        bwd.reverse()
        plan = (tuple(fwd), tuple(bwd), first_skips)
        self.__dict__["_plan"] = plan
        return plan

    def forward(self, x):
        plan = self._plan or self._build_plan()
        for step in plan[0]:
            x = step(x)
        self.__dict__["_ran"] = plan
        return x

    def backward(self, grad_out, input_grad=True):
        """Backward through the modules in reverse; returns dL/dinput, or None when ``input_grad``
        is False (then a leading Linear skips its dX GEMM, as torch does for an input that does
        not require grad)."""
        plan = self._ran
        if plan is None:
            raise no_forward(self)
        steps = plan[1]
        if input_grad or not plan[2]:
            for step in steps:
                grad_out = step(grad_out)
            return grad_out if input_grad else None
        for step in steps[:-1]:
            grad_out = step(grad_out)
        steps[-1](grad_out, False)
        return None


def _fused_forward(lin, act):
    kind, fwd, act_state = act.kind, lin._forward, act.__dict__

    def step(x):
        act_state["_x"] = act_state["_y"] = None  # the activation's own backward must not run
        return fwd(x, kind, act_state["alpha"])

    return step


class Residual(Module):
    """y = x + module(x); dx = dy + module.backward(dy). module must preserve the shape."""

    def __init__(self, module):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"module: expected an nn.Module, got {type(module).__name__}")
        self.module = module
        self._shape = None

    def forward(self, x):
        y = self.module(x)
        if not isinstance(y, np.ndarray) or y.shape != x.shape:
            raise ValueError(f"module: Residual needs an output shaped like its input {x.shape}, got "
                             f"{getattr(y, 'shape', type(y).__name__)}")
        self._shape, self._dtype = x.shape, y.dtype
        return x + y

    def backward(self, grad_out):
        if self._shape is None:
            raise no_forward(self)
        check_grad(grad_out, self._shape, self._dtype)
        return grad_out + self.module.backward(grad_out)
