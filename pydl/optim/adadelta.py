"""Adadelta (Zeiler 2012)."""
from .. import _C
from .optimizer import Optimizer, check_range, zeros_like


class Adadelta(Optimizer):
    r"""Adadelta, PyTorch's ``torch.optim.Adadelta``.

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

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, *, maximize=False):
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _validate(self, h):
        check_range(h["lr"], "learning rate")
        check_range(h["rho"], "rho value", 0.0, 1.0)
        check_range(h["eps"], "epsilon value")
        check_range(h["weight_decay"], "weight_decay value")

    def _update(self, group, items):
        params, grads, square_avgs, acc_deltas = [], [], [], []
        for p, st in items:
            if not st:
                st["step"] = 0
                st["square_avg"] = zeros_like(p)
                st["acc_delta"] = zeros_like(p)
            params.append(p.data)
            grads.append(p.grad)
            square_avgs.append(st["square_avg"])
            acc_deltas.append(st["acc_delta"])
        # hyperparameters by position (lr, rho, eps, weight_decay, maximize)
        _C.adadelta_step(params, grads, square_avgs, acc_deltas, group["lr"], group["rho"], group["eps"],
                         group["weight_decay"], group["maximize"])
        for _, st in items:  # counted once the step has run (validation errors change nothing)
            st["step"] += 1
