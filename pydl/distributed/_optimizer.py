"""broadcast_parameters, broadcast_optimizer_state and DistributedOptimizer (the Horovod model).

Data parallelism with K ranks: every rank holds the same weights, takes its slice of the
global batch, and computes the gradient of the mean loss over its n_r samples,
g_r = (1/n_r) sum_{i in r} grad l_i. Before each step the ranks average them,

    g = (1/K) sum_r g_r,

which with equal slices (n_r = n/K) is the gradient of the mean loss over the whole global
batch of n samples. One in-place Allreduce (sum) of one flat buffer holding every gradient,
then a division by K, then the wrapped optimizer's own step: every rank applies the same
update to the same weights, so the ranks stay identical bit for bit.
"""
import numpy as np

from . import _comm


def _check_module(module):
    if not callable(getattr(module, "_state_entries", None)):
        raise TypeError(f"module: expected a pydl.nn.Module, got {type(module).__name__}")


def _check_root(root):
    if isinstance(root, (bool, np.bool_)) or not isinstance(root, (int, np.integer)):
        raise TypeError(f"root: expected an int rank, got {type(root).__name__}")
    k = _comm.world_size()
    if not 0 <= root < k:
        raise ValueError(f"root: expected a rank in [0, {k}), got {root}")


def broadcast_parameters(module, root=0, buffers=True):
    """Copy rank ``root``'s parameters (and buffers: BatchNorm running statistics and counts)
    into ``module`` on every rank, in place. Collective: every rank calls it.

    Call it once after building the model (and after loading a checkpoint on ``root``), so all
    ranks start from the same weights. The modules must have the same structure on every rank:
    otherwise a ValueError names the first differing entry, on every rank.

    Parameters
    ----------
    module : nn.Module
    root : int, default 0
    buffers : bool, default True
        Include the buffers (``named_buffers``), as well as the parameters.
    """
    _check_module(module)
    _check_root(root)
    if buffers:
        entries = list(module._state_entries())
    else:
        entries = [(name, p.data) for name, p in module.named_parameters()]
    _comm.check_same("broadcast_parameters", {
        "entries": [(name, a.shape, str(a.dtype)) for name, a in entries]})
    for _, array in entries:
        _comm.bcast_array_(array, root)


def broadcast_optimizer_state(optimizer, root=0):
    """Give every rank rank ``root``'s optimizer state and hyperparameters (``state_dict()``).
    Collective. Needed only when the ranks' states may differ (a checkpoint loaded on root)."""
    _check_root(root)
    inner = optimizer.optimizer if isinstance(optimizer, DistributedOptimizer) else optimizer
    if not callable(getattr(inner, "state_dict", None)):
        raise TypeError(f"optimizer: expected a pydl.optim optimizer, got {type(optimizer).__name__}")
    state = _comm.bcast_object(inner.state_dict() if _comm.rank() == root else None, root)
    if _comm.rank() != root:
        inner.load_state_dict(state)


class _Layout:
    """Where each parameter's gradient lives in the flat buffer of its dtype.

    Per dtype, one buffer: every gradient of that dtype, flattened and concatenated in
    parameter order, then one slot per parameter counting the ranks that had a gradient for it.
    """

    def __init__(self, params):
        self.key = [id(p) for p in params]
        by_dtype = {}
        for p in params:
            by_dtype.setdefault(p.data.dtype, []).append(p)
        self.parts = []           # (buffer, [(param, grad view)], flags view)
        for dtype, ps in by_dtype.items():
            sizes = [p.data.size for p in ps]
            total = sum(sizes)
            buf = np.zeros(total + len(ps), dtype=dtype)
            views, at = [], 0
            for p, n in zip(ps, sizes):
                views.append((p, buf[at:at + n].reshape(p.data.shape)))
                at += n
            self.parts.append((buf, total, views, buf[total:]))


class DistributedOptimizer:
    """Wrap ``optimizer`` so that ``step()`` first averages the gradients over the ranks.

    Horovod's ``hvd.DistributedOptimizer``: every gradient is packed into one flat buffer per
    dtype (allocated once, reused every step), the buffer is summed over the ranks with one
    in-place ``MPI_Allreduce``, divided by K, and the parameters' ``.grad`` become views of the
    average; then the wrapped optimizer steps. A parameter whose ``.grad`` is None on some
    ranks counts as a zero gradient there (Horovod's rule); None on every rank stays None (the
    optimizer skips it).

    Everything else (``param_groups``, ``state``, ``zero_grad``, ``state_dict``,
    ``load_state_dict``, learning-rate schedulers) goes to the wrapped optimizer.

    Parameters
    ----------
    optimizer : pydl.optim.Optimizer

    Attributes
    ----------
    optimizer : the wrapped optimizer
    allreduce_seconds : float
        Total wall time spent in the Allreduce (the communication cost; docs/SCALING.md).
    allreduce_calls : int

    Notes
    -----
    ``synchronize()`` averages now; the next ``step()`` then does not average again (Horovod),
    so code that must see the averaged gradient (gradient clipping by global norm) calls
    ``synchronize()``, works on ``.grad``, then ``step()``.
    With unequal slices the average weighs each rank's mean equally; to get the global-batch
    gradient exactly, scale rank r's loss gradient by K * n_r / n (``Trainer(distributed=True)``
    does).
    """

    def __init__(self, optimizer):
        if isinstance(optimizer, DistributedOptimizer):
            raise TypeError("optimizer: already a DistributedOptimizer")
        for name in ("step", "zero_grad", "param_groups"):
            if not hasattr(optimizer, name):
                raise TypeError(f"optimizer: expected a pydl.optim optimizer, got "
                                f"{type(optimizer).__name__} (no {name})")
        self.__dict__["optimizer"] = optimizer
        self.__dict__["_layout"] = None
        self.__dict__["_synchronized"] = False
        self.__dict__["_world"] = _comm.world_size()
        self.__dict__["allreduce_seconds"] = 0.0
        self.__dict__["allreduce_calls"] = 0

    # everything the wrapper does not define is the wrapped optimizer's (param_groups, state, ...)
    def __getattr__(self, name):
        try:
            inner = self.__dict__["optimizer"]
        except KeyError:               # not set up yet (unpickling)
            raise AttributeError(name) from None
        return getattr(inner, name)

    def __setattr__(self, name, value):
        if name in self.__dict__:
            self.__dict__[name] = value
        else:
            setattr(self.optimizer, name, value)

    def _params(self):
        return [p for g in self.optimizer.param_groups for p in g["params"]]

    def synchronize(self):
        """Average the gradients over the ranks now (one Allreduce per dtype present)."""
        params = self._params()
        layout = self._layout
        if layout is None or layout.key != [id(p) for p in params]:
            layout = self.__dict__["_layout"] = _Layout(params)
        k = self._world
        for buf, total, views, flags in layout.parts:
            for i, (p, view) in enumerate(views):
                g = p._grad
                if g is None:
                    view.fill(0)
                    flags[i] = 0
                else:
                    if g is not view:
                        np.copyto(view, g)
                    flags[i] = 1
            if k > 1:
                self.__dict__["allreduce_seconds"] += _comm.allreduce_sum_(buf)
                self.__dict__["allreduce_calls"] += 1
                grads = buf[:total]
                np.divide(grads, k, out=grads)
            for i, (p, view) in enumerate(views):
                p._grad = view if flags[i] > 0 else None
        self.__dict__["_synchronized"] = True

    def step(self, closure=None):
        """Average the gradients (unless ``synchronize()`` just did), then the wrapped step."""
        loss = closure() if closure is not None else None
        if not self._synchronized:
            self.synchronize()
        self.__dict__["_synchronized"] = False
        self.optimizer.step()
        return loss

    def zero_grad(self, set_to_none=True):
        self.__dict__["_synchronized"] = False
        self.optimizer.zero_grad(set_to_none)

    def __getstate__(self):
        # the layout holds views of this process's buffers: rebuilt at the next step
        state = dict(self.__dict__)
        state["_layout"] = None
        state["_synchronized"] = False
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)

    def __repr__(self):
        return f"DistributedOptimizer({self.optimizer!r}, ranks={self._world})"
