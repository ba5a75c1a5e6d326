"""Adam (Kingma and Ba 2015), AMSGrad (Reddi et al. 2018) and AdamW (Loshchilov and Hutter 2019)."""
from __future__ import annotations

from .. import _C
from .optimizer import Optimizer, ParamsT, check_range


class Adam(Optimizer):
    r"""Adam, PyTorch's ``torch.optim.Adam``: steps from bias-corrected running means of the gradient and of its
    square.

    .. math::
        \begin{aligned}
        &g_t \leftarrow \nabla_\theta f_t(\theta_{t-1}) \ (\text{negated if maximize}) + \lambda \theta_{t-1} \\
        &m_t \leftarrow \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
        &v_t \leftarrow \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
        &\textbf{if amsgrad: } \hat v_t \leftarrow \max(\hat v_{t-1}, v_t) \quad \textbf{else } \hat v_t \leftarrow v_t \\
        &\theta_t \leftarrow \theta_{t-1} - \frac{\gamma}{1 - \beta_1^t} \,
            \frac{m_t}{\sqrt{\hat v_t} / \sqrt{1 - \beta_2^t} + \epsilon}
        \end{aligned}

    with :math:`m_0 = v_0 = \hat v_0 = 0`, learning rate :math:`\gamma`, weight decay
    :math:`\lambda` (an L2 penalty added to the gradient; see AdamW for decoupled decay). The
    maximum of AMSGrad is taken over the uncorrected :math:`v_t`, as in PyTorch.

    Parameters
    ----------
    params : iterable of Parameter or of dict
    lr : float, default 1e-3
    betas : (float, float), default (0.9, 0.999)
    eps : float, default 1e-8
    weight_decay : float, default 0
    amsgrad : bool, default False
    maximize : bool, default False
    decoupled_weight_decay : bool, default False
        Decay the weights as AdamW does instead of adding :math:`\lambda \theta` to the gradient.

    State per parameter: ``step`` (int), ``exp_avg`` (:math:`m`), ``exp_avg_sq`` (:math:`v`),
    ``max_exp_avg_sq`` (:math:`\hat v`, amsgrad).
    """

    def __init__(self, params: ParamsT, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False, *, maximize: bool = False,
                 decoupled_weight_decay: bool = False) -> None:
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def _validate(self, h):
        check_range(h["lr"], "learning rate")
        check_range(h["eps"], "epsilon value")
        try:
            beta1, beta2 = h["betas"]
        except (TypeError, ValueError):
            raise ValueError(f"Invalid betas: expected a pair of floats, got {h['betas']!r}") from None
        check_range(beta1, "beta parameter at index 0", 0.0, 1.0, high_open=True)
        check_range(beta2, "beta parameter at index 1", 0.0, 1.0, high_open=True)
        check_range(h["weight_decay"], "weight_decay value")

    def _state_arrays(self, group):
        return ("exp_avg", "exp_avg_sq", "max_exp_avg_sq") if group["amsgrad"] else ("exp_avg", "exp_avg_sq")

    def _step_group(self, group, params, grads, states):
        amsgrad = group["amsgrad"]
        exp_avgs, exp_avg_sqs, max_sqs, steps = [], [], [], []
        for st in states:
            exp_avgs.append(st["exp_avg"])
            exp_avg_sqs.append(st["exp_avg_sq"])
            steps.append(st["step"] + 1)
            if amsgrad:
                max_sqs.append(st["max_exp_avg_sq"])
        beta1, beta2 = group["betas"]
        # hyperparameters by position (lr, beta1, beta2, eps, weight_decay, amsgrad, maximize,
        # decoupled_weight_decay): cheaper than keywords through pybind11
        _C.adam_step(params, grads, exp_avgs, exp_avg_sqs, max_sqs, steps, group["lr"], beta1, beta2, group["eps"],
                     group["weight_decay"], amsgrad, group["maximize"], group["decoupled_weight_decay"])


class AdamW(Adam):
    r"""AdamW: Adam with decoupled weight decay, PyTorch's ``torch.optim.AdamW``.

    .. math::
        \theta_{t-1} \leftarrow \theta_{t-1} (1 - \gamma \lambda)

    first, then the Adam update of :class:`Adam` without the :math:`\lambda \theta` term in
    the gradient. Same parameters and state as :class:`Adam`, with ``weight_decay`` defaulting
    to 1e-2.
    """

    def __init__(self, params: ParamsT, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *, maximize: bool = False) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         maximize=maximize, decoupled_weight_decay=True)
