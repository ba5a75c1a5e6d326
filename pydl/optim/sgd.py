"""Stochastic gradient descent, with momentum and Nesterov momentum."""
from __future__ import annotations

import numpy as np

from .. import _C
from .optimizer import Optimizer, ParamsT


class SGD(Optimizer):
    r"""Stochastic gradient descent (optionally with momentum), PyTorch's ``torch.optim.SGD``.

    .. math::
        \begin{aligned}
        &g_t \leftarrow -\nabla_\theta f_t(\theta_{t-1}) \text{ if maximize else } \nabla_\theta f_t(\theta_{t-1}) \\
        &\textbf{if } \lambda \neq 0:\ g_t \leftarrow g_t + \lambda \theta_{t-1} \\
        &\textbf{if } \mu \neq 0: \\
        &\quad b_t \leftarrow g_t \text{ if } t = 1 \text{ else } \mu b_{t-1} + (1 - \tau) g_t \\
        &\quad g_t \leftarrow g_t + \mu b_t \text{ if nesterov else } b_t \\
        &\theta_t \leftarrow \theta_{t-1} - \gamma g_t
        \end{aligned}

    with learning rate :math:`\gamma`, momentum :math:`\mu`, dampening :math:`\tau`, weight decay
    :math:`\lambda`. Nesterov momentum (Sutskever et al. 2013, in PyTorch's form) needs
    :math:`\mu > 0` and :math:`\tau = 0`.

    Parameters
    ----------
    params : iterable of Parameter or of dict
        Parameters or parameter groups.
    lr : float, default 1e-3
    momentum : float, default 0
    dampening : float, default 0
    weight_decay : float, default 0
        L2 penalty added to the gradient.
    nesterov : bool, default False
    maximize : bool, default False
        Maximize the objective (ascend the gradient).

    State per parameter: ``momentum_buffer`` (when momentum != 0).
    """

    _nonnegative = ("lr", "momentum", "weight_decay")
    _counts_steps = False

    def __init__(self, params: ParamsT, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False) -> None:
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def _validate(self, h):
        super()._validate(h)
        if h["nesterov"] and (h["momentum"] <= 0 or h["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening "
                             f"(got momentum={h['momentum']}, dampening={h['dampening']})")

    def _step_group(self, group, params, grads, states):
        momentum = group["momentum"]
        bufs = first = None
        new = []  # buffers the kernel initialises (b = g); kept only once it has run
        if momentum != 0:
            bufs, first = [], []
            for param, st in zip(params, states):
                buf = st.get("momentum_buffer")
                first.append(buf is None)
                if buf is None:
                    buf = np.empty_like(param)
                    new.append((st, buf))
                bufs.append(buf)
        # hyperparameters by position (lr, momentum, dampening, weight_decay, nesterov, maximize):
        # cheaper than keywords through pybind11
        _C.sgd_step(params, grads, bufs, first or [], group["lr"], momentum, group["dampening"],
                    group["weight_decay"], group["nesterov"], group["maximize"])
        for st, buf in new:
            st["momentum_buffer"] = buf
