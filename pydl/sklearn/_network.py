"""The network behind the estimators: a pydl Sequential built from (and written back to) the
scikit-learn layout of the weights, the optimizers, the output losses, and a numpy forward pass.

scikit-learn stores ``coefs_[i]`` as (fan_in, fan_out) and ``intercepts_[i]`` as (fan_out,);
pydl's Linear holds ``weight`` (out, in). Between fits the estimator keeps numpy arrays only
(pickle-friendly); each fit builds the Sequential from them and writes them back at its end.
"""
import contextlib

import numpy as np

from .. import _random, nn, optim

# scikit-learn's activation names -> pydl's (None: no activation module)
HIDDEN = {"identity": None, "logistic": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}
SOLVERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad", "adadelta")
BN_EPS = 1e-5


@contextlib.contextmanager
def private_rng(seed):
    """pydl's global generator replaced by one seeded with ``seed`` inside the block (so dropout
    follows the estimator's random_state and the user's pydl stream is left untouched)."""
    saved = _random._generator
    _random._generator = np.random.default_rng(seed)
    try:
        yield
    finally:
        _random._generator = saved


def glorot_init(rs, layer_units, activation, dtype):
    """scikit-learn's initialization: U(-b, b) with b = sqrt(f / (fan_in + fan_out)), f = 2 for
    the logistic activation and 6 otherwise, weights then biases, layer by layer from ``rs``."""
    factor = 2.0 if activation == "logistic" else 6.0
    coefs, intercepts = [], []
    for fan_in, fan_out in zip(layer_units[:-1], layer_units[1:]):
        bound = np.sqrt(factor / (fan_in + fan_out))
        coefs.append(rs.uniform(-bound, bound, (fan_in, fan_out)).astype(dtype))
        intercepts.append(rs.uniform(-bound, bound, fan_out).astype(dtype))
    return coefs, intercepts


def build(coefs, intercepts, activation, dropout, batch_norm, bn_state, dtype):
    """A Sequential holding the given weights: for each hidden layer Linear, [BatchNorm1d],
    activation, [Dropout]; last a Linear (the output activation lives in the loss).

    Returns (model, linears, batch_norms)."""
    layers, linears, bns = [], [], []
    last = len(coefs) - 1
    for i, (W, b) in enumerate(zip(coefs, intercepts)):
        lin = nn.Linear(W.shape[0], W.shape[1], dtype=dtype)
        lin.weight.data[...] = W.T
        lin.bias.data[...] = b
        layers.append(lin)
        linears.append(lin)
        if i == last:
            break
        if batch_norm:
            bn = nn.BatchNorm1d(W.shape[1], eps=BN_EPS, dtype=dtype)
            if bn_state:
                st = bn_state[i]
                bn.weight.data[...] = st["weight"]
                bn.bias.data[...] = st["bias"]
                bn.running_mean[...] = st["running_mean"]
                bn.running_var[...] = st["running_var"]
            layers.append(bn)
            bns.append(bn)
        if HIDDEN[activation] is not None:
            layers.append(HIDDEN[activation]())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers), linears, bns


def read_back(linears, bns):
    """(coefs_, intercepts_, batch-norm state) as numpy arrays in scikit-learn's layout."""
    coefs = [np.ascontiguousarray(lin.weight.data.T) for lin in linears]
    intercepts = [lin.bias.data.copy() for lin in linears]
    bn_state = [{"weight": bn.weight.data.copy(), "bias": bn.bias.data.copy(),
                 "running_mean": np.array(bn.running_mean, copy=True),
                 "running_var": np.array(bn.running_var, copy=True)} for bn in bns]
    return coefs, intercepts, bn_state


def make_optimizer(est, weights, others):
    """The pydl optimizer for ``est.solver``: two groups, the weights (whose weight_decay carries
    the L2 term) and the rest (biases, batch-norm parameters: never decayed, as scikit-learn)."""
    groups = [{"params": weights}, {"params": others, "weight_decay": 0.0}]
    lr, s = est.learning_rate_init, est.solver
    if s == "sgd":
        return optim.SGD(groups, lr=lr, momentum=est.momentum,
                         nesterov=bool(est.nesterovs_momentum and est.momentum > 0))
    if s == "adam":
        return optim.Adam(groups, lr=lr, betas=(est.beta_1, est.beta_2), eps=est.epsilon)
    if s == "adamw":
        groups[0]["weight_decay"] = est.alpha
        return optim.AdamW(groups, lr=lr, betas=(est.beta_1, est.beta_2), eps=est.epsilon)
    if s == "rmsprop":
        return optim.RMSprop(groups, lr=lr, eps=est.epsilon)
    if s == "adagrad":
        return optim.Adagrad(groups, lr=lr)
    return optim.Adadelta(groups, lr=lr)


class OutputLoss:
    """Data loss of a batch and its gradient w.r.t. the last layer's pre-activation z, as
    scikit-learn: the mean over samples (weighted: sum_i w_i l_i / sum_i w_i) of
    softmax cross-entropy, binary cross-entropy summed over outputs, half the squared error
    averaged over outputs, or half the Poisson deviance summed over outputs; the gradient is
    (act(z) - y) w_i / sum_i w_i (not divided by the number of outputs, as scikit-learn)."""

    def __init__(self, out_activation, label_smoothing=0.0):
        self.kind = out_activation
        self.eps = float(label_smoothing)
        if out_activation == "softmax":
            self.mean = nn.CrossEntropyLoss(label_smoothing=self.eps)
            self.none = nn.CrossEntropyLoss(reduction="none", label_smoothing=self.eps)
        elif out_activation == "logistic":
            self.mean = nn.BCEWithLogitsLoss(reduction="sum")
            self.none = nn.BCEWithLogitsLoss(reduction="none")

    def targets(self, Y):
        """Training targets: smoothed binary labels for the logistic output."""
        if self.kind == "logistic" and self.eps:
            return Y * (1 - self.eps) + self.eps / 2
        return Y

    def __call__(self, z, y, w, w_sum):
        n = z.shape[0]
        if self.kind == "softmax":
            if w is None:
                return self.mean(z, y), self.mean.backward()
            losses = self.none(z, y)
            return float(w @ losses) / w_sum, self.none.backward(w / w_sum)
        if self.kind == "logistic":
            if w is None:
                return self.mean(z, y) / n, self.mean.backward(1.0 / n)
            losses = self.none(z, y)
            ws = np.broadcast_to((w / w_sum)[:, None], losses.shape)
            return float((ws * losses).sum()), self.none.backward(ws)
        if self.kind == "identity":
            d = z - y
            sq = (d * d).mean(axis=1)
            scale = np.full((n, 1), 1.0 / n, z.dtype) if w is None else (w / w_sum)[:, None]
            loss = 0.5 * float(sq.mean() if w is None else w @ sq / w_sum)
            return loss, d * scale
        # "exp": Poisson deviance on p = exp(z) (terms y log(y / p) with 0 log 0 = 0)
        p = np.exp(z)
        with np.errstate(divide="ignore", invalid="ignore"):
            ylog = np.where(y > 0, y * (np.log(np.where(y > 0, y, 1)) - z), 0)
        dev = (ylog - y + p).sum(axis=1)
        scale = np.full((n, 1), 1.0 / n, z.dtype) if w is None else (w / w_sum)[:, None]
        loss = float(dev.mean() if w is None else w @ dev / w_sum)
        return loss, (p - y) * scale


def forward(X, coefs, intercepts, activation, bn_state, out_activation):
    """The network's output on X (numpy, eval mode: batch norm from its running statistics)."""
    a = X
    last = len(coefs) - 1
    for i, (W, b) in enumerate(zip(coefs, intercepts)):
        a = a @ W + b
        if i == last:
            break
        if bn_state:
            st = bn_state[i]
            a = (a - st["running_mean"]) / np.sqrt(st["running_var"] + BN_EPS) * st["weight"] + st["bias"]
        a = _activate(a, activation)
    return _activate(a, out_activation)


def _activate(a, name):
    if name == "relu":
        return np.maximum(a, 0, out=a)
    if name == "tanh":
        return np.tanh(a, out=a)
    if name == "logistic":
        return _sigmoid(a)
    if name == "softmax":
        a = a - a.max(axis=1, keepdims=True)
        np.exp(a, out=a)
        a /= a.sum(axis=1, keepdims=True)
        return a
    if name == "exp":
        return np.exp(a, out=a)
    return a


def _sigmoid(a):
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-a))


__all__ = ["HIDDEN", "SOLVERS", "private_rng", "glorot_init", "build", "read_back", "make_optimizer",
           "OutputLoss", "forward"]
