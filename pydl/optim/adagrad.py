"""Adagrad (Duchi, Hazan and Singer 2011)."""
from __future__ import annotations

import numpy as np

from .. import _C
from .optimizer import Optimizer, ParamsT


class Adagrad(Optimizer):
    r"""Adagrad, PyTorch's ``torch.optim.Adagrad``: each coordinate's step shrinks with its summed squared
    gradients.

    .. math::
        \begin{aligned}
        &\tilde\gamma_t \leftarrow \gamma / (1 + (t - 1) \eta) \\
        &g_t \leftarrow \nabla_\theta f_t(\theta_{t-1}) \ (\text{negated if maximize}) + \lambda \theta_{t-1} \\
        &s_t \leftarrow s_{t-1} + g_t^2, \qquad s_0 = \text{initial\_accumulator\_value} \\
        &\theta_t \leftarrow \theta_{t-1} - \tilde\gamma_t \, g_t / (\sqrt{s_t} + \epsilon)
        \end{aligned}

    with learning rate :math:`\gamma`, lr_decay :math:`\eta`, weight decay :math:`\lambda`.

    Parameters
    ----------
    params : iterable of Parameter or of dict
    lr : float, default 1e-2
    lr_decay : float, default 0
    weight_decay : float, default 0
    initial_accumulator_value : float, default 0
    eps : float, default 1e-10
    maximize : bool, default False

    State per parameter: ``step`` (int), ``sum``.
    """

    _nonnegative = ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps")

    def __init__(self, params: ParamsT, lr: float = 1e-2, lr_decay: float = 0, weight_decay: float = 0,
                 initial_accumulator_value: float = 0, eps: float = 1e-10, *, maximize: bool = False) -> None:
        defaults = dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, eps=eps, maximize=maximize)
        super().__init__(params, defaults)

    def _init_group(self, group, params, states):
        for param, state in zip(params, states):
            if not state:
                state["step"] = 0
                state["sum"] = np.full(param.shape, group["initial_accumulator_value"], dtype=param.dtype)

    def _step_group(self, group, params, grads, states):
        # hyperparameters by position (lr, lr_decay, weight_decay, eps, maximize)
        _C.adagrad_step(params, grads, [st["sum"] for st in states], [st["step"] + 1 for st in states],
                        group["lr"], group["lr_decay"], group["weight_decay"], group["eps"], group["maximize"])
