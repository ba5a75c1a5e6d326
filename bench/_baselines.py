"""Hand-written numpy baselines shared by the benchmarks."""
import math

import numpy as np


def numpy_adam_step(params, grads, exp_avgs, exp_avg_sqs, tmps, t, lr, betas, eps):
    """One Adam step (no weight decay) in numpy, PyTorch's order of operations, in place.

    Parameters
    ----------
    params, grads, exp_avgs, exp_avg_sqs, tmps : list of ndarray
        One entry per tensor, all of one shape: the parameters (updated), their gradients, the
        running means m and v (updated), and a scratch array each (the only temporaries).
    t : int
        The step, counted from 1.
    lr : float
    betas : (float, float)
    eps : float
    """
    b1, b2 = betas
    step_size, bc2_sqrt = lr / (1 - b1 ** t), math.sqrt(1 - b2 ** t)
    for p, g, m, v, tmp in zip(params, grads, exp_avgs, exp_avg_sqs, tmps):
        m *= b1
        np.multiply(g, 1 - b1, out=tmp)
        m += tmp
        v *= b2
        np.multiply(g, g, out=tmp)
        tmp *= 1 - b2
        v += tmp
        np.sqrt(v, out=tmp)
        tmp /= bc2_sqrt
        tmp += eps
        np.divide(m, tmp, out=tmp)
        tmp *= step_size
        p -= tmp
