"""Adadelta (Zeiler 2012)."""
from __future__ import annotations

from .. import _C
from .optimizer import Optimizer, ParamsT


class Adadelta(Optimizer):
    r"""Adadelta, PyTorch's ``torch.optim.Adadelta``: each step is the gradient times the ratio of the RMS of
    past steps to the RMS of past gradients.

    .. math::
        \begin{aligned}
        &g_t \leftarrow \nabla_\theta f_t(\theta_{t-1}) \ (\text{negated if maximize}) + \lambda \theta_{t-1} \\
        &v_t \leftarrow \rho v_{t-1} + (1 - \rho) g_t^2 \\
        &\Delta x_t \leftarrow \frac{\sqrt{u_{t-1} + \epsilon}}{\sqrt{v_t + \epsilon}} g_t \\
        &u_t \leftarrow \rho u_{t-1} + (1 - \rho) \Delta x_t^2 \\
        &\theta_t \leftarrow \theta_{t-1} - \gamma \Delta x_t
        \end{aligned}

    with :math:`v_0 = u_0 = 0`, learning rate :math:`\gamma` (a scale; Zeiler's method has
    :math:`\gamma = 1`), weight decay :math:`\lambda`.

    Parameters
    ----------
    params : iterable of Parameter or of dict
    lr : float, default 1.0
    rho : float, default 0.9
    eps : float, default 1e-6
    weight_decay : float, default 0
    maximize : bool, default False

    State per parameter: ``step`` (int), ``square_avg`` (:math:`v`), ``acc_delta`` (:math:`u`).
    """

    _nonnegative = ("lr", "rho", "eps", "weight_decay")

    def __init__(self, params: ParamsT, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6, weight_decay: float = 0,
                 *, maximize: bool = False) -> None:
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _state_arrays(self, group):
        return ("square_avg", "acc_delta")

    def _step_group(self, group, params, grads, states):
        # hyperparameters by position (lr, rho, eps, weight_decay, maximize)
        _C.adadelta_step(params, grads, [st["square_avg"] for st in states], [st["acc_delta"] for st in states],
                         group["lr"], group["rho"], group["eps"], group["weight_decay"], group["maximize"])
