"""RMSprop (Hinton, Coursera lecture 6e; centered version: Graves 2013)."""
from __future__ import annotations

from .. import _C
from .optimizer import Optimizer, ParamsT


class RMSprop(Optimizer):
    r"""RMSprop, PyTorch's ``torch.optim.RMSprop``: the gradient divided by a running RMS of its recent values.

    .. math::
        \begin{aligned}
        &g_t \leftarrow \nabla_\theta f_t(\theta_{t-1}) \ (\text{negated if maximize}) + \lambda \theta_{t-1} \\
        &v_t \leftarrow \alpha v_{t-1} + (1 - \alpha) g_t^2 \\
        &\textbf{if centered: } a_t \leftarrow \alpha a_{t-1} + (1 - \alpha) g_t,\quad
            \tilde v_t \leftarrow v_t - a_t^2 \quad \textbf{else } \tilde v_t \leftarrow v_t \\
        &\textbf{if } \mu > 0: \ b_t \leftarrow \mu b_{t-1} + g_t / (\sqrt{\tilde v_t} + \epsilon),
            \quad \theta_t \leftarrow \theta_{t-1} - \gamma b_t \\
        &\textbf{else: } \theta_t \leftarrow \theta_{t-1} - \gamma g_t / (\sqrt{\tilde v_t} + \epsilon)
        \end{aligned}

    with :math:`v_0 = a_0 = b_0 = 0`, learning rate :math:`\gamma`, smoothing :math:`\alpha`,
    momentum :math:`\mu`, weight decay :math:`\lambda`.

    Parameters
    ----------
    params : iterable of Parameter or of dict
    lr : float, default 1e-2
    alpha : float, default 0.99
    eps : float, default 1e-8
    weight_decay : float, default 0
    momentum : float, default 0
    centered : bool, default False
    maximize : bool, default False

    State per parameter: ``step`` (int), ``square_avg``, ``momentum_buffer`` (momentum > 0),
    ``grad_avg`` (centered).
    """

    _nonnegative = ("lr", "eps", "momentum", "weight_decay", "alpha")

    def __init__(self, params: ParamsT, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0,
                 momentum: float = 0, centered: bool = False, *, maximize: bool = False) -> None:
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                        centered=centered, maximize=maximize)
        super().__init__(params, defaults)

    def _state_arrays(self, group):
        names = ["square_avg"]
        if group["momentum"] > 0:
            names.append("momentum_buffer")
        if group["centered"]:
            names.append("grad_avg")
        return names

    def _step_group(self, group, params, grads, states):
        centered = group["centered"]
        square_avgs = [st["square_avg"] for st in states]
        grad_avgs = [st["grad_avg"] for st in states] if centered else []
        bufs = [st["momentum_buffer"] for st in states] if group["momentum"] > 0 else []
        # hyperparameters by position (lr, alpha, eps, weight_decay, momentum, centered, maximize)
        _C.rmsprop_step(params, grads, square_avgs, grad_avgs, bufs, group["lr"], group["alpha"], group["eps"],
                        group["weight_decay"], group["momentum"], centered, group["maximize"])
