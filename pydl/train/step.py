"""TrainStep: one optimizer step on a batch, fused into one C++ call for plain MLPs.

``step = TrainStep(model, loss_fn, optimizer)``; ``loss = step(x, y)`` does exactly what

    optimizer.zero_grad()
    out = model(x)
    loss = float(loss_fn(out, y))
    model.backward(loss_fn.backward(), input_grad=False)   # input_grad when the model takes it
    optimizer.step()

does (the Trainer's step), returns ``loss`` and keeps ``out`` as ``step.output``.

**Fused plan** (docs/ARCHITECTURE.md §2, "Fused training step"). When the model is a
``Sequential`` whose plan is a chain of dense layers (each step a plain ``Linear``, with its own
activation or fused with the activation module after it; no forward hooks), or such chains
cut by residual blocks (a residual MLP: see :func:`_stages`), the optimizer an
``SGD``, ``Adam`` or ``AdamW`` holding every parameter of the model, and the optimizer's state
complete (it is made by the first, layer-by-layer, step), the step runs in one call of a
``pydl._C.MlpStep`` built for these arrays: forward into preallocated buffers, softmax
cross-entropy, backward, and each layer's optimizer update as soon as its gradients are final.
Other losses take two calls, forward and backward + update, with the loss object called in
between as in the layer-by-layer path. The kernels and their arguments are those of the
layer-by-layer path, so the losses, gradients and weights are bitwise the same (tested).

The plan is rebuilt when the model's children, forward hooks, parameters (``p.data``) or the
optimizer's groups or state arrays change; anything else falls back to the layer-by-layer path
for that call: another model or optimizer, a batch that is not a C-contiguous (N, in) array of
the model's dtype, targets other than int64 class indices (N,) or probabilities (N, C) of that
dtype for cross-entropy (any target for other losses), ``pydl.no_grad()``, an out-of-range class
index (so errors and ``ignore_index`` are handled exactly as there).

``step.run_batches(x, y, order, bounds)`` runs the steps of consecutive batches of an
epoch (batch b is ``x[order[bounds[b]:bounds[b + 1]]]``) in one C++ call when the fused plan
takes them with softmax cross-entropy, bitwise as calling ``step`` on each: the Trainer's loop
when nothing needs Python between batches.

A fused step leaves no saved state in the modules (nothing to consume: ``zero_grad`` has
nothing to drop) and sets each parameter's ``.grad`` to the step's gradient, in a buffer of the
plan that the next fused step overwrites.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import _C, nn
from .._grad_mode import _local as _grad_local
from .._validate import check_grad
from ..nn.activation import _Activation
from ..nn.container import _dense_chain, _runs_as_written
from ..nn.module import Module, _Hooks
from ..optim import SGD, Adam, AdamW


def _takes_input_grad(model):
    import inspect
    try:
        return "input_grad" in inspect.signature(model.backward).parameters
    except (TypeError, ValueError):
        return False


class TrainStep:
    """One training step (zero_grad, forward, loss, backward, optimizer step) on a batch.

    Parameters
    ----------
    model : nn.Module
    loss_fn : loss object, ``loss_fn(pred, target)`` and ``loss_fn.backward()``
    optimizer : optim.Optimizer

    Calling ``step(x, y)`` returns the batch loss as a float; ``step.output`` is the model's
    output on ``x``; ``step.fused`` tells whether that call ran the fused plan (see the module
    docstring).
    """

    def __init__(self, model: nn.Module, loss_fn: Any, optimizer: Any) -> None:
        for name, obj, needs, what in (("model", model, ("__call__", "backward"), "an nn.Module"),
                                       ("loss_fn", loss_fn, ("__call__", "backward"), "a loss such as nn.CrossEntropyLoss()"),
                                       ("optimizer", optimizer, ("zero_grad", "step"), "an optimizer such as optim.Adam(...)")):
            if not all(callable(getattr(obj, attr, None)) for attr in needs):
                raise TypeError(f"TrainStep: {name} must be {what} (with {' and '.join(needs)}), "
                                f"got {type(obj).__name__}")
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self._backward_kw = {"input_grad": False} if _takes_input_grad(model) else {}
        self._plan = None
        self._plannable = (isinstance(model, nn.Sequential) and type(optimizer) in _OPTIMIZERS
                           and _sequential_runs_as_written(model))
        self._wait = self._backoff = 0  # calls to skip before trying to make a plan again
        self.output = None
        self.fused = False

    def __call__(self, x: np.ndarray, y: np.ndarray) -> float:
        plan = self._current_plan()
        if plan is not None:
            res = plan.run(x, y)
            if res is not None:
                self.fused = True
                loss, self.output = res
                return loss
        self.fused = False
        return self._layer_step(x, y)

    def run_batches(self, x: np.ndarray, y: np.ndarray, order: np.ndarray | None, bounds: list[int],
                    count_correct: bool = False) -> tuple[list[float], list[int] | None] | None:
        """Steps on the batches ``b = 0, 1, ..., len(bounds) - 2`` in one C++ call (``bounds``:
        those of the batches to run, e.g. a slice of the epoch's; ``order``: the epoch's
        permutation of x's rows, or None), each exactly ``step(x[idx], y[idx])`` with
        ``idx = order[bounds[b]:bounds[b + 1]]`` (``slice(bounds[b], bounds[b + 1])`` when order is
        None), as the Trainer's loop runs them.

        Returns ``(losses, correct)``: the loss of each batch run and, with ``count_correct``, the
        number of its rows whose output's argmax is the class index (numpy's argmax; else None).
        It stops before a batch with an out-of-range class index (the caller runs that one with
        ``step``, which reports it), so fewer losses than batches may come back, even none. None
        when the fused plan does not apply (see the module docstring; the loss must be a
        softmax cross-entropy, and counting needs class indices and at least two outputs): the
        caller then runs each batch with ``step``. ``output`` is the last batch's output.
        """
        plan = self._current_plan()
        res = None if plan is None else plan.run_batches(x, y, order, bounds, count_correct)
        if res is None:
            return None
        losses, correct, output = res
        if losses:
            self.fused, self.output = True, output
        return losses, correct

    def _current_plan(self):
        """The fused plan for this call, made anew when the model or optimizer changed; None
        when the step runs layer by layer."""
        d = self.model.__dict__
        if not (self._plannable and _grad_local.enabled and "forward" not in d and "backward" not in d):
            return None
        plan = self._plan
        if plan is None or not plan.current():
            plan = self._plan = self._make_plan()
        return plan

    def _make_plan(self):
        """A plan for the model and optimizer as they are now, or None. A model that does not
        form one is asked again after 1, 2, 4, ... (at most 256) calls (only speed depends on
        when: both paths give the same bits); the first step (no optimizer state yet) retries at
        the next call."""
        if self._wait:
            self._wait -= 1
            return None
        plan = _MlpPlan.make(self.model, self.loss_fn, self.optimizer)
        if plan is None:
            self._wait, self._backoff = self._backoff, min(2 * self._backoff + 1, 256)
        else:
            self._backoff = 0
        return plan

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_plan"] = None  # a C++ plan bound to these arrays: a copy makes its own
        return state

    def _layer_step(self, x, y):
        self.optimizer.zero_grad()
        out = self.model(x)
        loss = float(self.loss_fn(out, y))
        self.model.backward(self.loss_fn.backward(), **self._backward_kw)
        self.optimizer.step()
        self.output = out
        return loss


# How _C.MlpStep runs each optimizer: kernel family, a group's hyperparameters in the order the
# binding reads them, the state arrays a group's options use (in the kernel's order), and the group
# options that decide those arrays (watched: another value makes a new plan).
_OPTIMIZERS = {
    SGD: ("sgd",
          lambda g: (g["lr"], g["momentum"], g["dampening"], g["weight_decay"], g["nesterov"], g["maximize"]),
          lambda g: ("momentum_buffer",) if g["momentum"] != 0 else (),
          ("momentum",)),
    Adam: ("adam",
           lambda g: (g["lr"], *g["betas"], g["eps"], g["weight_decay"], g["amsgrad"], g["maximize"],
                      g["decoupled_weight_decay"]),
           lambda g: ("exp_avg", "exp_avg_sq", "max_exp_avg_sq") if g["amsgrad"] else ("exp_avg", "exp_avg_sq"),
           ("amsgrad",)),
}
_OPTIMIZERS[AdamW] = _OPTIMIZERS[Adam]


def _sequential_runs_as_written(model):
    """A Sequential whose class keeps Sequential's passes (its instance is checked at each call)."""
    t = type(model)
    return all(getattr(t, name) is getattr(nn.Sequential, name) for name in ("__call__", "forward", "backward"))


def _stages(model):
    """The model as stages of one chain of dense layers (``_C.MlpStep``'s ``stages``), or None.

    The model's children, in order, are residual blocks and runs of other modules between them.
    A run is a stage: an optional activation module first (it runs alone: nothing before it to
    fuse with), then a chain of dense layers (``nn.container._dense_chain``). A block is an
    ``nn.Residual`` with an identity shortcut whose module is such a stage too (a ``Sequential``,
    or one plain ``Linear``): ``y = x + chain(pre(x))``. For example Prince's residual MLP
    ``Sequential(Linear(40, 100), Residual(Sequential(ReLU(), Linear(100, 100))), ...,
    Linear(100, 10))`` is the stages Linear | ReLU-Linear (+x) | ... | Linear. Every module runs
    its class's own passes, without forward hooks.

    Returns (dense, stages, watch): the chain's (Linear, activation, negative_slope) entries,
    the (first, last, pre, pre_slope, residual) tuples, and the (holder, name, value) triples
    that keep this structure beyond the model's own plan (the blocks' children and their plans).
    """
    dense, stages, watch = [], [], []

    def add(modules, residual):
        pre = modules[0] if modules and _lone_activation(modules[0]) else None
        chain = _dense_chain(modules[1:] if pre else modules)
        if chain is None:
            return False
        stages.append((len(dense), len(dense) + len(chain), pre.activation if pre else "none",
                       float(pre.negative_slope) if pre else 0.0, residual))
        dense.extend(chain)
        return True

    run = []
    for m in model:
        if not isinstance(m, nn.Residual):
            run.append(m)
            continue
        body = _residual_body(m, watch)
        if (run and not add(run, False)) or body is None or not add(body, True):
            return None
        run = []
    if (run and not add(run, False)) or not dense or len({id(lin) for lin, _, _ in dense}) != len(dense):
        return None  # (a Linear in two places: its gradients accumulate over its calls, step by step)
    return dense, stages, watch


def _lone_activation(m):
    """An activation module running its class's passes, without hooks."""
    return (isinstance(m, _Activation) and _runs_as_written(m, _Activation, "forward", "backward")
            and _runs_as_written(m, Module, "__call__"))


def _residual_body(block, watch):
    """The modules an ``nn.Residual`` with an identity shortcut runs (its Sequential's children,
    or its one module), when it and a Sequential module run their classes' passes without hooks;
    else None. Appends to ``watch`` what keeps them: the block's children, the Sequential's plan."""
    body = block.module
    if not (_runs_as_written(block, nn.Residual, "forward", "backward")
            and _runs_as_written(block, Module, "__call__") and block.shortcut is None):
        return None
    watch += [(block, "module", body), (block, "shortcut", None)]
    if not isinstance(body, nn.Sequential):
        return [body]
    if not (_runs_as_written(body, nn.Sequential, "forward", "backward") and _runs_as_written(body, Module, "__call__")):
        return None
    watch.append((body, "_plan", body._current_plan()))
    return list(body)


class _MlpPlan:
    """A ``_C.MlpStep`` bound to one model's parameters and one optimizer's state.

    ``current()`` is true while the model has the same plan (children, hooks), residual blocks
    (children, their Sequentials' plans), layers, parameters and ``p.data``, and the optimizer the same groups, structural options and state arrays: the
    C++ plan watches each as a (holder, name, value) triple.
    """

    @classmethod
    def make(cls, model, loss_fn, optimizer):
        """The plan for the model's current layers and the optimizer's current state, or None
        when they do not form one (the step then runs layer by layer)."""
        seq_plan = model._current_plan()
        if model._forward_hooks:
            return None
        found = _stages(model)
        if found is None:
            return None
        dense, stages, structure = found
        kind, hyper_of, state_names, structural = _OPTIMIZERS[type(optimizer)]
        groups = optimizer.param_groups
        group_of = {id(p): gi for gi, g in enumerate(groups) for p in g["params"]}
        params = [p for lin, _, _ in dense for p in (lin.weight, lin.bias) if p is not None]
        if len({id(p) for p in params}) != len(params) or any(id(p) not in group_of for p in params):
            return None  # a parameter shared between layers, or one the optimizer does not update
        dtype = params[0].data.dtype
        if any(p.data.dtype != dtype for p in params):
            return None
        names = {state_names(groups[group_of[id(p)]]) for p in params}
        if len(names) != 1:
            return None  # groups whose options need different state
        (names,) = names
        states = [optimizer.state.get(p) for p in params]
        needed = names + (("step",) if optimizer._counts_steps else ())
        if any(st is None or any(k not in st for k in needed) for st in states):
            return None  # state that the optimizer's next step creates first
        self = cls()
        self.loss_fn, self.optimizer, self.params, self.states = loss_fn, optimizer, params, states
        self.hyper_of, self.groups = hyper_of, list(groups)
        self.counts_steps = optimizer._counts_steps
        ids = {id(p) for p in params}
        self.others = [p for g in groups for p in g["params"] if id(p) not in ids]  # their grads: None
        self.grads = [np.empty_like(p.data) for p in params]
        grad_of = {id(p): g for p, g in zip(params, self.grads)}
        lins = [lin for lin, _, _ in dense]
        state_arrays = [[st[k] for st in states] for k in names]
        # what the model and optimizer hold now; another value anywhere makes a new plan
        watch_attrs = ([(model, "_plan", seq_plan), (_Hooks, "version", _Hooks.version),
                        (optimizer, "state", optimizer.state), (optimizer, "param_groups", groups)] + structure
                       + [(lin, name, getattr(lin, name)) for lin in lins for name in ("weight", "bias")]
                       + [(p, "data", p.data) for p in params])
        watch_items = ([(groups, i, g) for i, g in enumerate(groups)]
                       + [(g, k, g[k]) for g in groups for k in ("params",) + structural]
                       + [(optimizer.state, p, st) for p, st in zip(params, states)]
                       + [(st, k, a) for k, arrays in zip(names, state_arrays) for st, a in zip(states, arrays)])
        try:
            self.c = _C.MlpStep([lin.weight.data for lin in lins],
                                [None if lin.bias is None else lin.bias.data for lin in lins],
                                [grad_of[id(lin.weight)] for lin in lins],
                                [None if lin.bias is None else grad_of[id(lin.bias)] for lin in lins],
                                [a for _, a, _ in dense], [float(s) for _, _, s in dense],
                                kind, state_arrays, [group_of[id(p)] for p in params], watch_attrs, watch_items,
                                stages)
        except (TypeError, ValueError):
            return None  # e.g. widths that do not chain: the layer-by-layer path reports it
        self.current = self.c.current
        self.dtype, self.n_in = dtype, lins[0].in_features
        self.n_out = lins[-1].weight.data.shape[0]
        # the output is read-only where the layer-by-layer path returns a Linear's saved output
        self.readonly_out = dense[-1][1] != "none" and not stages[-1][4]
        return self

    def _batch_ok(self, x):
        """Whether x is a batch (or data set) of the plan: a C-contiguous (n >= 1, in) array."""
        dtype = self.dtype  # (dtypes: equal ones need not be one object, e.g. after unpickling)
        return (type(x) is np.ndarray and x.ndim == 2 and x.shape[1] == self.n_in and x.shape[0] > 0
                and (x.dtype is dtype or x.dtype == dtype) and x.flags.c_contiguous)

    def _cross_entropy(self, y, n):
        """Whether the loss runs inside the C++ step (softmax cross-entropy) on targets y for n rows:
        None when y is not such targets, else True / False."""
        loss_fn = self.loss_fn
        if not (type(loss_fn) is nn.CrossEntropyLoss and loss_fn.reduction != "none"
                and not 0 <= loss_fn.ignore_index < self.n_out):
            return False
        if not (type(y) is np.ndarray and y.flags.c_contiguous and (
                (y.dtype == np.int64 and y.shape == (n,)) or (y.dtype == self.dtype and y.shape == (n, self.n_out)))):
            return None
        return True

    def _ce_args(self):
        """The cross-entropy loss's options, as MlpStep.step and .epoch take them."""
        loss_fn = self.loss_fn
        return (loss_fn._class_weights(self.n_out, self.dtype), loss_fn.label_smoothing, loss_fn.reduction == "mean")

    def _after_steps(self, states, steps, k):
        """What k fused steps leave in Python: step counts, each parameter's .grad."""
        for st, t in zip(states, steps):
            st["step"] = t + k - 1
        for p, g in zip(self.params, self.grads):
            p._grad = g
        for p in self.others:
            p.grad = None

    def run_batches(self, x, y, order, bounds, count_correct):
        """(losses, correct, last output) of fused steps on the batches of ``bounds``
        (TrainStep.run_batches), or None when they take the layer-by-layer path."""
        if not self._batch_ok(x) or self._cross_entropy(y, x.shape[0]) is not True:
            return None
        if count_correct and (y.ndim != 1 or self.n_out < 2):
            return None
        if order is not None and not (type(order) is np.ndarray and order.dtype == np.int64):
            return None
        states = self.states
        steps = [st["step"] + 1 for st in states] if self.counts_steps else []
        rows = max(hi - lo for lo, hi in zip(bounds, bounds[1:]))
        out = np.empty((rows, self.n_out), self.dtype)
        losses, correct = self.c.epoch(x, y, order, bounds, out, *self._ce_args(),
                                       [self.hyper_of(g) for g in self.groups], steps, count_correct)
        k = len(losses)
        if not k:
            return losses, correct, None
        self._after_steps(states, steps, k)
        out = out[:bounds[k] - bounds[k - 1]]
        if self.readonly_out:
            out.flags.writeable = False
        return losses, correct, out

    def run(self, x, y):
        """(loss, output) of a fused step on (x, y), or None when this batch takes the
        layer-by-layer path (nothing has changed then)."""
        if not self._batch_ok(x):
            return None
        n = x.shape[0]
        loss_fn = self.loss_fn
        ce = self._cross_entropy(y, n)
        if ce is None:
            return None
        hyper = [self.hyper_of(g) for g in self.groups]
        states = self.states
        steps = [st["step"] + 1 for st in states] if self.counts_steps else []
        out = np.empty((n, self.n_out), self.dtype)
        if ce:
            loss = self.c.step(x, y, out, *self._ce_args(), hyper, steps)
            if loss is None:
                return None
            if self.readonly_out:
                out.flags.writeable = False  # as the layer-by-layer path returns it
        else:
            self.c.forward(x, out)
            if self.readonly_out:
                out.flags.writeable = False  # as the layer-by-layer path returns it: backward reads it
            try:
                loss = float(loss_fn(out, y))
                grad = loss_fn.backward()
                if type(grad) is not np.ndarray or grad.shape != out.shape or grad.dtype is not out.dtype:
                    check_grad(grad, out.shape, out.dtype)
            except BaseException:
                self.optimizer.zero_grad()  # where the layer-by-layer path would have left them
                raise
            self.c.backward_step(np.ascontiguousarray(grad), hyper, steps)
        self._after_steps(states, steps, 1)
        return loss, out
