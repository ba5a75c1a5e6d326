"""Fuzz targets: one builder per public ``pydl._C`` binding, ``pydl.ops`` function, ``pydl.nn``
layer and loss, optimizer, and ``pydl.save`` / ``pydl.load`` (docs/RELIABILITY.md "Fuzzing").

A builder gets a :class:`Gen` (draws from hypothesis) and returns a :class:`Call`: a function
and a *plausible* argument list (right kinds, consistent shapes most of the time), so that
mutations (``mutate.py``) land next to the valid region instead of failing the first check.
A builder may also return a plain callable that runs a whole scenario (layers: construct,
forward, backward). Every case must return or raise an ordinary Python exception; a crash of
the interpreter is the bug being hunted.

``BINDINGS``, ``OPS``, ``NN``, ``OPTIM`` and ``IO`` map names to builders; ``test_fuzz.py``
asserts that every public name of ``pydl._C`` and ``pydl.ops`` has one.
"""
import atexit
import inspect
import io
import os
import shutil
import tempfile

import numpy as np

import pydl
from pydl import _C, nn, ops, optim

from mutate import hostile_array, hostile_scalar, mutate_call, mutate_value

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)
ACTS = ["none", "relu", "leaky_relu", "sigmoid", "tanh", "gelu", "gelu_tanh"]


class Call:
    """``fn(*args, **kwargs)``, with the arguments open to mutation."""

    __slots__ = ("fn", "args", "kwargs")

    def __init__(self, fn, args=(), kwargs=None):
        self.fn, self.args, self.kwargs = fn, list(args), dict(kwargs or {})

    def __call__(self):
        return self.fn(*self.args, **self.kwargs)

    def describe(self):
        def d(v):
            if isinstance(v, np.ndarray):
                return (f"ndarray(shape={v.shape}, dtype={v.dtype.str}, strides={v.strides}, "
                        f"c={v.flags.c_contiguous}, w={v.flags.writeable}, a={v.flags.aligned})")
            if isinstance(v, (list, tuple)) and len(v) > 8:
                return f"{type(v).__name__}(len={len(v)})"
            if isinstance(v, (list, tuple)):
                inner = ", ".join(d(x) for x in v)
                return f"[{inner}]" if isinstance(v, list) else f"({inner})"
            if isinstance(v, (bytes, str)) and len(v) > 40:
                return repr(v[:40]) + "..."
            return repr(v)
        name = getattr(self.fn, "__module__", None) or "pydl._C"
        name = f"{name}.{getattr(self.fn, '__name__', repr(self.fn))}"
        return f"{name}({', '.join(d(a) for a in self.args)}{', ' if self.kwargs else ''}" \
               f"{', '.join(f'{k}={d(v)}' for k, v in self.kwargs.items())})"


class Gen:
    """Draws for builders; every decision goes through hypothesis (``data.draw``) so a case is
    reproducible from its seed, and array contents come from a numpy Generator seeded by a draw."""

    def __init__(self, data, st):
        self.data, self.st = data, st
        self.rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))

    def int(self, lo, hi):
        return self.data.draw(self.st.integers(lo, hi))

    def bool(self, p_true=0.5):
        return self.data.draw(self.st.floats(0, 1)) < p_true

    def choice(self, seq):
        return self.data.draw(self.st.sampled_from(list(seq)))

    def dim(self, lo=1, hi=6):
        """A size: usually lo..hi, sometimes 0 or a larger one."""
        r = self.int(0, 19)
        if r == 0:
            return 0
        if r == 1:
            return self.int(hi, 70)
        return self.int(lo, hi)

    def fdtype(self):
        return self.choice([F32, F32, F64])

    def arr(self, *shape, dtype=F32, fill="normal"):
        shape = tuple(int(s) for s in shape)
        if fill == "normal":
            return self.rng.standard_normal(shape).astype(dtype)
        if fill == "positive":
            return (self.rng.random(shape) + 0.1).astype(dtype)
        if fill == "zeros":
            return np.zeros(shape, dtype)
        raise ValueError(fill)

    def index(self, shape, hi):
        """int64 class / position indices in [0, hi)."""
        return self.rng.integers(0, max(hi, 1), size=shape, dtype=np.int64)

    def real(self):
        return self.choice([0.0, 0.01, 0.1, 0.5, 0.9, 0.999, 1.0, 2.0])

    def act(self, valid=("none", "relu", "leaky_relu", "sigmoid", "tanh")):
        return self.choice(list(valid)) if self.bool(0.9) else self.choice(ACTS + ["RELU", "", "relu\0"])

    # -- hostile values (mutate.py), drawn here so they are reproducible
    def hostile(self, value):
        return mutate_value(self, value)


# ===================================================================== _C bindings
def _conv_geom(g):
    N, C, H, W = g.dim(), g.dim(1, 4), g.dim(1, 7), g.dim(1, 7)
    groups = g.choice([1, 1, 1, 2]) if C % 2 == 0 else 1
    O = g.dim(1, 4) * groups
    KH, KW = g.int(1, 3), g.int(1, 3)
    stride = [g.int(1, 2), g.int(1, 2)]
    pad = [g.int(0, 1) for _ in range(4)]
    dil = [g.int(1, 2), g.int(1, 2)]
    OH = (H + pad[0] + pad[1] - dil[0] * (KH - 1) - 1) // stride[0] + 1
    OW = (W + pad[2] + pad[3] - dil[1] * (KW - 1) - 1) // stride[1] + 1
    return N, C, H, W, O, KH, KW, groups, stride, pad, dil, max(OH, 0), max(OW, 0)


def _b_conv_fwd(fn):
    def build(g):
        N, C, H, W, O, KH, KW, groups, stride, pad, dil, OH, OW = _conv_geom(g)
        dt = g.fdtype()
        return Call(fn, [g.arr(N, C, H, W, dtype=dt), g.arr(O, C // groups, KH, KW, dtype=dt),
                         g.arr(O, dtype=dt) if g.bool() else None, g.arr(N, O, OH, OW, dtype=dt, fill="zeros"),
                         stride, pad, dil, groups, g.choice(["none", "relu"])])
    return build


def _b_conv_bwd(fn):
    def build(g):
        N, C, H, W, O, KH, KW, groups, stride, pad, dil, OH, OW = _conv_geom(g)
        dt = g.fdtype()
        return Call(fn, [g.arr(N, O, OH, OW, dtype=dt), g.arr(N, C, H, W, dtype=dt), g.arr(O, C // groups, KH, KW, dtype=dt),
                         g.arr(N, O, OH, OW, dtype=dt) if g.bool() else None,
                         g.arr(N, C, H, W, dtype=dt, fill="zeros") if g.bool(0.8) else None,
                         g.arr(O, C // groups, KH, KW, dtype=dt, fill="zeros"), g.arr(O, dtype=dt, fill="zeros") if g.bool() else None,
                         stride, pad, dil, groups],
                    {"activation": g.choice(["none", "relu"]), "accumulate_weight": g.bool(), "accumulate_bias": g.bool()})
    return build


def _pool_geom(g):
    N, C, H, W = g.dim(), g.dim(), g.dim(1, 8), g.dim(1, 8)
    k = [g.int(1, 3), g.int(1, 3)]
    s = [g.int(1, 3), g.int(1, 3)]
    p = [g.int(0, k[0] // 2), g.int(0, k[1] // 2)]
    OH = max((H + 2 * p[0] - k[0]) // s[0] + 1, 0)
    OW = max((W + 2 * p[1] - k[1]) // s[1] + 1, 0)
    return N, C, H, W, k, s, p, OH, OW


def _b_max_pool_fwd(g):
    N, C, H, W, k, s, p, OH, OW = _pool_geom(g)
    dt = g.fdtype()
    return Call(_C.max_pool2d_forward, [g.arr(N, C, H, W, dtype=dt), g.arr(N, C, OH, OW, dtype=dt, fill="zeros"),
                                        np.zeros((N, C, OH, OW), np.int64), k, s, p])


def _b_max_pool_bwd(g):
    N, C, H, W, k, s, p, OH, OW = _pool_geom(g)
    dt = g.fdtype()
    idx = g.index((N, C, OH, OW), H * W)
    if g.bool(0.3):  # out-of-range indices: must be refused
        idx.flat[:: max(1, idx.size // 3)] = g.choice([-1, H * W, 2**62, -2**63])
    return Call(_C.max_pool2d_backward, [g.arr(N, C, OH, OW, dtype=dt), idx, g.arr(N, C, H, W, dtype=dt, fill="zeros")])


def _b_avg_pool_fwd(g):
    N, C, H, W, k, s, p, OH, OW = _pool_geom(g)
    dt = g.fdtype()
    return Call(_C.avg_pool2d_forward, [g.arr(N, C, H, W, dtype=dt), g.arr(N, C, OH, OW, dtype=dt, fill="zeros"), k, s, p])


def _b_avg_pool_bwd(g):
    N, C, H, W, k, s, p, OH, OW = _pool_geom(g)
    dt = g.fdtype()
    return Call(_C.avg_pool2d_backward, [g.arr(N, C, OH, OW, dtype=dt), g.arr(N, C, H, W, dtype=dt, fill="zeros"), k, s, p])


def _b_adaptive_fwd(g):
    N, C, H, W = g.dim(), g.dim(), g.dim(), g.dim()
    dt = g.fdtype()
    return Call(_C.adaptive_avg_pool2d_forward, [g.arr(N, C, H, W, dtype=dt), g.arr(N, C, g.dim(), g.dim(), dtype=dt)])


def _b_adaptive_bwd(g):
    N, C, H, W = g.dim(), g.dim(), g.dim(), g.dim()
    dt = g.fdtype()
    return Call(_C.adaptive_avg_pool2d_backward, [g.arr(N, C, g.dim(), g.dim(), dtype=dt), g.arr(N, C, H, W, dtype=dt)])


def _b_gemm(fn):
    def build(g):
        M, N, K = g.dim(), g.dim(), g.dim()
        ta, tb = g.bool(), g.bool()
        dt = g.fdtype()
        a = g.arr(*((K, M) if ta else (M, K)), dtype=dt)
        b = g.arr(*((N, K) if tb else (K, N)), dtype=dt)
        return Call(fn, [a, b, g.arr(M, N, dtype=dt)],
                    {"trans_a": ta, "trans_b": tb, "alpha": g.real(), "beta": g.choice([0.0, 1.0, 0.5]),
                     "bias": g.arr(N, dtype=dt) if g.bool() else None, "activation": g.act(ACTS),
                     "negative_slope": g.real()})
    return build


def _b_linear_fwd(g):
    N, IN, OUT = g.dim(), g.dim(), g.dim()
    dt = g.fdtype()
    return Call(_C.linear_forward, [g.arr(N, IN, dtype=dt), g.arr(OUT, IN, dtype=dt), g.arr(OUT, dtype=dt) if g.bool() else None,
                                    g.arr(N, OUT, dtype=dt, fill="zeros"), g.act(), g.real()])


def _b_linear_bwd(g):
    N, IN, OUT = g.dim(), g.dim(), g.dim()
    dt = g.fdtype()
    return Call(_C.linear_backward, [g.arr(N, OUT, dtype=dt), g.arr(N, IN, dtype=dt), g.arr(OUT, IN, dtype=dt),
                                     g.arr(N, OUT, dtype=dt) if g.bool(0.7) else None,
                                     g.arr(N, IN, dtype=dt, fill="zeros") if g.bool(0.8) else None,
                                     g.arr(OUT, IN, dtype=dt, fill="zeros") if g.bool(0.9) else None,
                                     g.arr(OUT, dtype=dt, fill="zeros") if g.bool() else None],
                {"activation": g.act(), "alpha": g.real(), "accumulate_weight": g.bool(), "accumulate_bias": g.bool()})


def _chain(g):
    """A chain of dense layers: N, the widths, dtype, weights, biases (or None), activations, slopes."""
    L, dt, N = g.int(1, 3), g.fdtype(), g.dim()
    widths = [g.dim() for _ in range(L + 1)]
    ws = [g.arr(widths[l + 1], widths[l], dtype=dt) for l in range(L)]
    bs = [g.arr(widths[l + 1], dtype=dt) if g.bool(0.8) else None for l in range(L)]
    return N, widths, dt, ws, bs, [g.act() for _ in range(L)], [g.real() for _ in range(L)]


def _b_chain_fwd(g):
    N, widths, dt, ws, bs, acts, slopes = _chain(g)
    outs = [g.arr(N, w, dtype=dt, fill="zeros") for w in widths[1:]]
    return Call(_C.linear_chain_forward, [g.arr(N, widths[0], dtype=dt), ws, bs, outs, acts, slopes])


def _b_chain_bwd(g):
    N, widths, dt, ws, bs, acts, slopes = _chain(g)
    outs = [g.arr(N, w, dtype=dt) for w in widths[1:]]
    if acts[-1] == "none" and g.bool(0.3):
        outs[-1] = None
    return Call(_C.linear_chain_backward,
                [g.arr(N, widths[-1], dtype=dt), g.arr(N, widths[0], dtype=dt), outs, ws,
                 g.arr(N, widths[0], dtype=dt, fill="zeros") if g.bool(0.7) else None,
                 [g.arr(*w.shape, dtype=dt, fill="zeros") for w in ws],
                 [g.arr(w.shape[0], dtype=dt, fill="zeros") if b is not None else False for w, b in zip(ws, bs)],
                 acts, slopes, [g.bool() for _ in ws], [g.bool() for _ in ws]])


def _b_mlp_step(g):
    """A whole scenario: make an MlpStep (arrays that mostly fit), then run steps on batches."""
    N, widths, dt, ws, bs, acts, slopes = _chain(g)
    tensors = [t for w, b in zip(ws, bs) for t in (w, b) if t is not None]
    kind = g.choice(["sgd", "adam", "rmsprop"])
    n_states = {"sgd": g.int(0, 1), "adam": g.choice([2, 3]), "rmsprop": 1}[kind]
    states = [[g.arr(*t.shape, dtype=dt, fill="zeros") for t in tensors] for _ in range(n_states)]
    hyper = (0.01, 0.9 if n_states else 0.0, 0.0, 0.0, False, False) if kind == "sgd" else \
        (1e-3, 0.9, 0.999, 1e-8, 0.0, n_states == 3, False, False)
    make = Call(_C.MlpStep, [ws, bs, [np.zeros_like(w) for w in ws], [None if b is None else np.zeros_like(b) for b in bs],
                             acts, slopes, kind, states, [0] * len(tensors)])

    def run():
        plan = mutate_call(g, make)() if g.bool(0.3) else make()
        x, C = g.arr(N, widths[0], dtype=dt), widths[-1]
        for _ in range(g.int(1, 3)):
            r = g.int(0, 2)
            steps = [g.int(0, 3) for _ in tensors]
            if r == 0:
                target = g.index((N,), C + g.int(0, 1)) if g.bool() else g.arr(N, C, dtype=dt, fill="positive")
                call = Call(plan.step, [x, target, g.arr(N, C, dtype=dt, fill="zeros"), None, g.real(), g.bool(),
                                        [hyper], steps])
            elif r == 1:
                call = Call(plan.forward, [x, g.arr(N, C, dtype=dt, fill="zeros")])
            else:
                call = Call(plan.backward_step, [g.arr(N, C, dtype=dt), [hyper], steps])
            (mutate_call(g, call) if g.bool(0.4) else call)()
    return run


def _shape(g):
    return tuple(g.dim() for _ in range(g.int(0, 3)))


def _b_act_fwd(g):
    dt, shape = g.fdtype(), _shape(g)
    return Call(_C.activation_forward, [g.act(ACTS), g.arr(*shape, dtype=dt), g.arr(*shape, dtype=dt, fill="zeros"), g.real()])


def _b_act_bwd(g):
    dt, shape = g.fdtype(), _shape(g)
    return Call(_C.activation_backward, [g.act(ACTS), g.arr(*shape, dtype=dt), g.arr(*shape, dtype=dt) if g.bool(0.8) else None,
                                         g.arr(*shape, dtype=dt) if g.bool(0.8) else None, g.arr(*shape, dtype=dt, fill="zeros"),
                                         g.real()])


def _b_softmax_fwd(g):
    dt, shape = g.fdtype(), _shape(g) or (3,)
    return Call(_C.softmax_forward, [g.arr(*shape, dtype=dt), g.arr(*shape, dtype=dt, fill="zeros"), g.bool()])


def _b_softmax_bwd(g):
    dt, shape = g.fdtype(), _shape(g) or (3,)
    return Call(_C.softmax_backward, [g.arr(*shape, dtype=dt), g.arr(*shape, dtype=dt), g.arr(*shape, dtype=dt, fill="zeros"), g.bool()])


def _b_cross_entropy(g):
    N, C = g.dim(), g.dim()
    dt = g.fdtype()
    if g.bool(0.7):
        target = g.index((N,), C)
        if g.bool(0.3):  # out-of-range classes: must be refused
            target[:: max(1, N // 2 or 1)] = g.choice([-1, C, 2**40, -2**63])
    else:
        target = g.arr(N, C, dtype=dt, fill="positive")
    return Call(_C.cross_entropy, [g.arr(N, C, dtype=dt), target],
                {"grad": g.arr(N, C, dtype=dt, fill="zeros") if g.bool(0.7) else None,
                 "weight": g.arr(C, dtype=dt, fill="positive") if g.bool(0.3) else None,
                 "label_smoothing": g.choice([0.0, 0.1, 1.0]), "reduction": g.choice(["mean", "sum", "none"])})


def _b_bn_train(g):
    N, C = g.dim(2, 6), g.dim()
    dt = g.fdtype()
    return Call(_C.batchnorm_forward_train, [g.arr(N, C, dtype=dt), g.arr(C, dtype=dt) if g.bool(0.8) else None,
                                             g.arr(C, dtype=dt) if g.bool(0.8) else None, g.arr(N, C, dtype=dt, fill="zeros"),
                                             g.arr(C, dtype=dt), g.arr(C, dtype=dt),
                                             g.arr(C, dtype=dt) if g.bool() else None,
                                             g.arr(C, dtype=dt, fill="positive") if g.bool() else None,
                                             g.choice([1e-5, 0.0, -1.0]), g.real()])


def _b_bn_eval(g):
    N, C = g.dim(), g.dim()
    dt = g.fdtype()
    return Call(_C.batchnorm_forward_eval, [g.arr(N, C, dtype=dt), g.arr(C, dtype=dt) if g.bool(0.8) else None,
                                            g.arr(C, dtype=dt) if g.bool(0.8) else None, g.arr(C, dtype=dt),
                                            g.arr(C, dtype=dt, fill="positive"), g.arr(N, C, dtype=dt, fill="zeros"), 1e-5])


def _b_bn_bwd(g):
    N, C = g.dim(), g.dim()
    dt = g.fdtype()
    return Call(_C.batchnorm_backward, [g.arr(N, C, dtype=dt), g.arr(N, C, dtype=dt), g.arr(C, dtype=dt),
                                        g.arr(C, dtype=dt, fill="positive"), g.arr(C, dtype=dt) if g.bool(0.8) else None,
                                        g.arr(N, C, dtype=dt, fill="zeros"),
                                        g.arr(C, dtype=dt, fill="zeros") if g.bool(0.8) else None,
                                        g.arr(C, dtype=dt, fill="zeros") if g.bool(0.8) else None, g.bool(), g.bool()])


def _b_bn2d_train(g):
    N, C, S = g.dim(2, 6), g.dim(), g.dim()
    dt = g.fdtype()
    pc = lambda fill="normal": g.arr(C, dtype=dt, fill=fill)  # noqa: E731  (per channel)
    return Call(_C.batchnorm2d_forward_train, [g.arr(N, C, S, dtype=dt), pc() if g.bool(0.8) else None,
                                               pc() if g.bool(0.8) else None, g.arr(N, C, S, dtype=dt, fill="zeros"),
                                               pc(), pc(), pc() if g.bool() else None,
                                               pc("positive") if g.bool() else None,
                                               g.choice([1e-5, 0.0, -1.0]), g.real()])


def _b_bn2d_eval(g):
    N, C, S = g.dim(), g.dim(), g.dim()
    dt = g.fdtype()
    return Call(_C.batchnorm2d_forward_eval, [g.arr(N, C, S, dtype=dt), g.arr(C, dtype=dt) if g.bool(0.8) else None,
                                              g.arr(C, dtype=dt) if g.bool(0.8) else None, g.arr(C, dtype=dt),
                                              g.arr(C, dtype=dt, fill="positive"),
                                              g.arr(N, C, S, dtype=dt, fill="zeros"), 1e-5])


def _b_bn2d_bwd(g):
    N, C, S = g.dim(), g.dim(), g.dim()
    dt = g.fdtype()
    return Call(_C.batchnorm2d_backward, [g.arr(N, C, S, dtype=dt), g.arr(N, C, S, dtype=dt), g.arr(C, dtype=dt),
                                          g.arr(C, dtype=dt, fill="positive"), g.arr(C, dtype=dt) if g.bool(0.8) else None,
                                          g.arr(N, C, S, dtype=dt, fill="zeros") if g.bool(0.8) else None,
                                          g.arr(C, dtype=dt, fill="zeros") if g.bool(0.8) else None,
                                          g.arr(C, dtype=dt, fill="zeros") if g.bool(0.8) else None, g.bool(), g.bool()])


def _b_dropout_fwd(g):
    shape = _shape(g)
    dt = g.fdtype()
    return Call(_C.dropout_forward, [g.arr(*shape, dtype=dt), g.arr(*shape, dtype=dt, fill="zeros"),
                                     np.zeros(shape, g.choice([np.uint8, np.bool_, dt])), g.real(), g.int(0, 2**64 - 1)])


def _b_dropout_bwd(g):
    shape = _shape(g)
    dt = g.fdtype()
    return Call(_C.dropout_backward, [g.arr(*shape, dtype=dt), np.ones(shape, g.choice([np.uint8, np.bool_, dt])),
                                      g.arr(*shape, dtype=dt, fill="zeros"), g.real()])


def _b_dropout_mask(g):
    return Call(_C.dropout_mask, [np.zeros(_shape(g), g.choice([np.uint8, np.bool_, F32])), g.real(), g.int(0, 2**64 - 1)])


def _tensors(g, n, dt, fill="normal"):
    shapes = g.data.draw(g.st.lists(g.st.integers(0, 40000), min_size=n, max_size=n)) if n else []
    return [g.arr(s, dtype=dt, fill=fill) for s in shapes]


def _opt_lists(g, k):
    n, dt = g.int(0, 4), g.fdtype()
    params = _tensors(g, n, dt)
    out = [params, [g.arr(*p.shape, dtype=dt) for p in params]]
    for _ in range(k):
        out.append([g.arr(*p.shape, dtype=dt, fill="positive") for p in params])
    return n, out


def _b_adam(g):
    n, (p, gr, m, v) = _opt_lists(g, 2)
    ams = g.bool()
    return Call(_C.adam_step, [p, gr, m, v, [np.zeros_like(x) for x in p] if ams else [], [g.int(1, 5) for _ in range(n)],
                               1e-3, 0.9, 0.999, 1e-8, g.choice([0.0, 0.01]), ams, g.bool()],
                {"decoupled_weight_decay": g.bool(), "reference": g.bool(0.2)})


def _b_sgd(g):
    n, (p, gr, b) = _opt_lists(g, 1)
    mom = g.choice([0.0, 0.9])
    return Call(_C.sgd_step, [p, gr, b, [g.bool() for _ in range(n)], 0.01, mom, 0.0, g.choice([0.0, 0.01]),
                              g.bool() and mom > 0, g.bool()], {"reference": g.bool(0.2)})


def _b_rmsprop(g):
    n, (p, gr, sq, ga, mb) = _opt_lists(g, 3)
    return Call(_C.rmsprop_step, [p, gr, sq, ga, mb, 0.01, 0.99, 1e-8, 0.0, g.choice([0.0, 0.9]), g.bool(), g.bool()],
                {"reference": g.bool(0.2)})


def _b_adagrad(g):
    n, (p, gr, s) = _opt_lists(g, 1)
    return Call(_C.adagrad_step, [p, gr, s, [g.int(1, 5) for _ in range(n)], 0.01, 0.0, 0.0, 1e-10, g.bool()],
                {"reference": g.bool(0.2)})


def _b_adadelta(g):
    n, (p, gr, sq, acc) = _opt_lists(g, 2)
    return Call(_C.adadelta_step, [p, gr, sq, acc, 1.0, 0.9, 1e-6, 0.0, g.bool()], {"reference": g.bool(0.2)})


def _b_set_isa(g):
    # never raise the ISA above the detected one by accident: set_isa itself must refuse that
    return Call(_C.set_isa, [g.choice(["avx512", "avx2", "generic", "", "AVX2", "sse", "avx2\0"])])


def _b_set_threads(g):
    return Call(_C.set_num_threads, [g.choice([1, 2, 3, 0, -1, 1024, 1025, 2**31, 2**63])])


BINDINGS = {
    "activation_forward": _b_act_fwd,
    "activation_backward": _b_act_bwd,
    "activation_derivative_from_output": lambda g: Call(_C.activation_derivative_from_output, [g.act(ACTS), g.real()]),
    "active_isa": lambda g: Call(_C.active_isa),
    "detected_isa": lambda g: Call(_C.detected_isa),
    "available_cpus": lambda g: Call(_C.available_cpus),
    "get_num_threads": lambda g: Call(_C.get_num_threads),
    "set_num_threads": _b_set_threads,
    "set_isa": _b_set_isa,
    "adadelta_step": _b_adadelta,
    "adagrad_step": _b_adagrad,
    "adam_step": _b_adam,
    "rmsprop_step": _b_rmsprop,
    "sgd_step": _b_sgd,
    "adaptive_avg_pool2d_forward": _b_adaptive_fwd,
    "adaptive_avg_pool2d_backward": _b_adaptive_bwd,
    "avg_pool2d_forward": _b_avg_pool_fwd,
    "avg_pool2d_backward": _b_avg_pool_bwd,
    "max_pool2d_forward": _b_max_pool_fwd,
    "max_pool2d_backward": _b_max_pool_bwd,
    "batchnorm_forward_train": _b_bn_train,
    "batchnorm_forward_eval": _b_bn_eval,
    "batchnorm_backward": _b_bn_bwd,
    "batchnorm2d_forward_train": _b_bn2d_train,
    "batchnorm2d_forward_eval": _b_bn2d_eval,
    "batchnorm2d_backward": _b_bn2d_bwd,
    "conv2d_forward": _b_conv_fwd(_C.conv2d_forward),
    "conv2d_forward_reference": _b_conv_fwd(_C.conv2d_forward_reference),
    "conv2d_backward": _b_conv_bwd(_C.conv2d_backward),
    "conv2d_backward_reference": _b_conv_bwd(_C.conv2d_backward_reference),
    "cross_entropy": _b_cross_entropy,
    "dropout_forward": _b_dropout_fwd,
    "dropout_backward": _b_dropout_bwd,
    "dropout_mask": _b_dropout_mask,
    "gemm": _b_gemm(_C.gemm),
    "gemm_reference": _b_gemm(_C.gemm_reference),
    "linear_forward": _b_linear_fwd,
    "linear_backward": _b_linear_bwd,
    "linear_chain_forward": _b_chain_fwd,
    "linear_chain_backward": _b_chain_bwd,
    "MlpStep": _b_mlp_step,
    "softmax_forward": _b_softmax_fwd,
    "softmax_backward": _b_softmax_bwd,
}

# Public names of _C that are not callables to fuzz (constants).
BINDING_CONSTANTS = {"MAX_THREADS"}


# ===================================================================== pydl.ops
def _o_unary(fn):
    return lambda g: Call(fn, [g.arr(*_shape(g), dtype=g.fdtype())])


def _o_pool2d(fn, backward=False, indices=False):
    def build(g):
        N, C, H, W, k, s, p, OH, OW = _pool_geom(g)
        dt = g.fdtype()
        if not backward:
            kw = {"return_indices": g.bool()} if indices else {}
            return Call(fn, [g.arr(N, C, H, W, dtype=dt), k, s if g.bool(0.8) else None, p], kw)
        if indices:
            return Call(fn, [g.arr(N, C, OH, OW, dtype=dt), g.index((N, C, OH, OW), H * W), (N, C, H, W)])
        return Call(fn, [g.arr(N, C, OH, OW, dtype=dt), (N, C, H, W), k, s, p])
    return build


def _o_pool1d(fn, backward=False, indices=False):
    def build(g):
        N, C, L = g.dim(), g.dim(), g.dim(1, 8)
        k, s = g.int(1, 3), g.int(1, 3)
        p = g.int(0, k // 2)
        OL = max((L + 2 * p - k) // s + 1, 0)
        dt = g.fdtype()
        if not backward:
            kw = {"return_indices": g.bool()} if indices else {}
            return Call(fn, [g.arr(N, C, L, dtype=dt), k, s, p], kw)
        if indices:
            return Call(fn, [g.arr(N, C, OL, dtype=dt), g.index((N, C, OL), L), (N, C, L)])
        return Call(fn, [g.arr(N, C, OL, dtype=dt), (N, C, L), k, s, p])
    return build


def _o_adaptive(fn, nd, backward=False):
    def build(g):
        shape = tuple(g.dim() for _ in range(nd + 2))
        out = tuple(g.dim() for _ in range(nd))
        dt = g.fdtype()
        if backward:
            return Call(fn, [g.arr(*(shape[:2] + out), dtype=dt), shape])
        return Call(fn, [g.arr(*shape, dtype=dt), out if nd == 2 else out[0]])
    return build


def _o_conv(fn, nd, backward=False):
    def build(g):
        N, C, H, W, O, KH, KW, groups, stride, pad, dil, OH, OW = _conv_geom(g)
        dt = g.fdtype()
        if nd == 1:
            x, w, gy = g.arr(N, C, W, dtype=dt), g.arr(O, C // groups, KW, dtype=dt), g.arr(N, O, OW, dtype=dt)
            stride, padding, dil = stride[1], pad[2], dil[1]
        else:
            x, w, gy = g.arr(N, C, H, W, dtype=dt), g.arr(O, C // groups, KH, KW, dtype=dt), g.arr(N, O, OH, OW, dtype=dt)
            padding = (pad[0], pad[2])
        if backward:
            return Call(fn, [gy, x, w, stride, padding, dil, groups],
                        {"input_grad": g.bool(), "bias_grad": g.bool(), "activation": g.choice(["none", "relu"])})
        return Call(fn, [x, w, g.arr(O, dtype=dt) if g.bool() else None, stride, padding, dil, groups,
                         g.choice(["none", "relu"])])
    return build


def _o_matmul(g):
    call = _b_gemm(ops.matmul)(g)
    call.kwargs = {k: call.kwargs[k] for k in ("trans_a", "trans_b")}
    if g.bool(0.3):
        call.kwargs["out"] = call.args.pop()
    else:
        call.args.pop()
    return call


def _o_linear(g):
    c = _b_linear_fwd(g)
    return Call(ops.linear, [c.args[0], c.args[1], c.args[2], c.args[4], c.args[5]])


def _o_linear_bwd(g):
    c = _b_linear_bwd(g)
    return Call(ops.linear_backward, c.args[:4] + [c.kwargs["activation"], c.kwargs["alpha"]],
                {"has_bias": g.bool(), "input_grad": g.bool(), "grad_weight": c.args[5], "grad_bias": c.args[6]})


def _o_chain(g):
    c = _b_chain_fwd(g)
    return Call(ops.linear_chain, [c.args[0], c.args[1], c.args[2], c.args[4], c.args[5]])


def _o_chain_bwd(g):
    c = _b_chain_bwd(g)
    a = c.args
    return Call(ops.linear_chain_backward, [a[0], a[1], a[2], a[3], a[7], a[8],
                                            [gw if g.bool() else None for gw in a[5]],
                                            [gb if gb is not False and g.bool() else (False if gb is False else None)
                                             for gb in a[6]], g.bool()])


def _o_bn_train(g):
    c = _b_bn_train(g)
    a = c.args
    return Call(ops.batch_norm_train, [a[0], a[1], a[2], a[8], a[6], a[7], a[9]])


def _o_bn_eval(g):
    c = _b_bn_eval(g)
    a = c.args
    return Call(ops.batch_norm_eval, [a[0], a[1], a[2], a[3], a[4], a[6]])


def _o_bn_bwd(g):
    c = _b_bn_bwd(g)
    a = c.args
    return Call(ops.batch_norm_backward, [a[0], a[1], a[2], a[3], a[4], a[8]], {"grad_weight": a[6], "grad_bias": a[7]})


def _o_bn2d_train(g):
    a = _b_bn2d_train(g).args
    return Call(ops.batch_norm2d_train, [a[0], a[1], a[2], a[8], a[6], a[7], a[9]])


def _o_bn2d_eval(g):
    a = _b_bn2d_eval(g).args
    return Call(ops.batch_norm2d_eval, [a[0], a[1], a[2], a[3], a[4], a[6]])


def _o_bn2d_bwd(g):
    a = _b_bn2d_bwd(g).args
    return Call(ops.batch_norm2d_backward, [a[0], a[1], a[2], a[3], a[4], a[8]],
                {"grad_weight": a[6], "grad_bias": a[7], "input_grad": a[5] is not None})


def _o_ce(g):
    c = _b_cross_entropy(g)
    return Call(ops.softmax_cross_entropy, c.args, {k: c.kwargs[k] for k in ("weight", "label_smoothing", "reduction")})


OPS = {
    "activation_forward": lambda g: Call(ops.activation_forward, [g.arr(*_shape(g), dtype=g.fdtype()), g.act(ACTS), g.real()]),
    "activation_backward": lambda g: (lambda c: Call(ops.activation_backward, [c.args[1], c.args[2], c.args[3], c.args[0], c.args[5]]))(_b_act_bwd(g)),
    "adaptive_avg_pool1d": _o_adaptive(ops.adaptive_avg_pool1d, 1),
    "adaptive_avg_pool1d_backward": _o_adaptive(ops.adaptive_avg_pool1d_backward, 1, True),
    "adaptive_avg_pool2d": _o_adaptive(ops.adaptive_avg_pool2d, 2),
    "adaptive_avg_pool2d_backward": _o_adaptive(ops.adaptive_avg_pool2d_backward, 2, True),
    "avg_pool1d": _o_pool1d(ops.avg_pool1d),
    "avg_pool1d_backward": _o_pool1d(ops.avg_pool1d_backward, backward=True),
    "avg_pool2d": _o_pool2d(ops.avg_pool2d),
    "avg_pool2d_backward": _o_pool2d(ops.avg_pool2d_backward, backward=True),
    "max_pool1d": _o_pool1d(ops.max_pool1d, indices=True),
    "max_pool1d_backward": _o_pool1d(ops.max_pool1d_backward, backward=True, indices=True),
    "max_pool2d": _o_pool2d(ops.max_pool2d, indices=True),
    "max_pool2d_backward": _o_pool2d(ops.max_pool2d_backward, backward=True, indices=True),
    "batch_norm_backward": _o_bn_bwd,
    "batch_norm_eval": _o_bn_eval,
    "batch_norm_train": _o_bn_train,
    "batch_norm2d_backward": _o_bn2d_bwd,
    "batch_norm2d_eval": _o_bn2d_eval,
    "batch_norm2d_train": _o_bn2d_train,
    "conv1d": _o_conv(ops.conv1d, 1),
    "conv1d_backward": _o_conv(ops.conv1d_backward, 1, True),
    "conv2d": _o_conv(ops.conv2d, 2),
    "conv2d_backward": _o_conv(ops.conv2d_backward, 2, True),
    "derivative_from_output": lambda g: Call(ops.derivative_from_output, [g.act(ACTS), g.real()]),
    "dropout": lambda g: Call(ops.dropout, [g.arr(*_shape(g), dtype=g.fdtype()), g.real(), g.int(0, 2**64 - 1)]),
    "dropout_backward": lambda g: (lambda c: Call(ops.dropout_backward, [c.args[0], c.args[1], c.args[3]]))(_b_dropout_bwd(g)),
    "gelu": lambda g: Call(ops.gelu, [g.arr(*_shape(g), dtype=g.fdtype()), g.choice(["none", "tanh", "erf"])]),
    "leaky_relu": lambda g: Call(ops.leaky_relu, [g.arr(*_shape(g), dtype=g.fdtype()), g.real()]),
    "linear": _o_linear,
    "linear_backward": _o_linear_bwd,
    "linear_chain": _o_chain,
    "linear_chain_backward": _o_chain_bwd,
    "log_softmax": _o_unary(ops.log_softmax),
    "matmul": _o_matmul,
    "relu": _o_unary(ops.relu),
    "sigmoid": _o_unary(ops.sigmoid),
    "softmax": _o_unary(ops.softmax),
    "softmax_backward": lambda g: (lambda c: Call(ops.softmax_backward, c.args[:2]))(_b_softmax_bwd(g)),
    "softmax_cross_entropy": _o_ce,
    "tanh": _o_unary(ops.tanh),
}

# Public names of pydl.ops that are not kernels to fuzz (constants, re-exported modules).
OPS_NON_FUNCTIONS = {"ACTIVATIONS"}


# ===================================================================== pydl.nn
def _layer_scenario(g, layer, x, n_backward=1):
    """Forward a (mutated) input, then backward (mutated) gradients; odd orders too."""
    if g.bool(0.1):
        layer.eval()
    if g.bool(0.05):
        layer.backward(g.hostile(np.ones(3, np.float32)))  # before any forward
    out = layer(g.hostile(x) if g.bool(0.4) else x)
    for _ in range(n_backward):
        gy = np.ones_like(out) if isinstance(out, np.ndarray) else np.ones(1, np.float32)
        layer.backward(g.hostile(gy) if g.bool(0.4) else gy)


def _n_layer(make, in_shape):
    """``make(g, dtype)`` builds a layer; ``in_shape(g)`` the input's shape."""
    def build(g):
        dt = g.fdtype()
        layer = make(g, dt)
        x = g.arr(*in_shape(g), dtype=dt)
        return lambda: _layer_scenario(g, layer, x, g.choice([1, 1, 2]))
    return build


def _nc(g):
    return (g.dim(), g.dim())


def _hyper(g, value):
    return value if g.bool(0.8) else hostile_scalar(g, value)


NN = {
    "Linear": _n_layer(lambda g, dt: nn.Linear(_hyper(g, 3), _hyper(g, 4), bias=g.bool(0.8), dtype=dt,
                                               activation=g.choice([None, "relu", "tanh", "sigmoid", "leaky_relu"]),
                                               negative_slope=_hyper(g, 0.1)),
                       lambda g: (g.dim(), 3)),
    "ReLU": _n_layer(lambda g, dt: nn.ReLU(), _shape),
    "LeakyReLU": _n_layer(lambda g, dt: nn.LeakyReLU(_hyper(g, 0.01)), _shape),
    "Sigmoid": _n_layer(lambda g, dt: nn.Sigmoid(), _shape),
    "Tanh": _n_layer(lambda g, dt: nn.Tanh(), _shape),
    "GELU": _n_layer(lambda g, dt: nn.GELU(g.choice(["none", "tanh", "x"])), _shape),
    "Softmax": _n_layer(lambda g, dt: nn.Softmax(_hyper(g, -1)), _shape),
    "Identity": _n_layer(lambda g, dt: nn.Identity(), _shape),
    "Flatten": _n_layer(lambda g, dt: nn.Flatten(_hyper(g, 1), _hyper(g, -1)), _shape),
    "Dropout": _n_layer(lambda g, dt: nn.Dropout(_hyper(g, 0.5)), _shape),
    "GaussianNoise": _n_layer(lambda g, dt: nn.GaussianNoise(_hyper(g, 0.1)), _shape),
    "BatchNorm1d": _n_layer(lambda g, dt: nn.BatchNorm1d(_hyper(g, 3), eps=_hyper(g, 1e-5), momentum=_hyper(g, 0.1),
                                                         affine=g.bool(0.8), track_running_stats=g.bool(0.8), dtype=dt),
                            lambda g: (g.dim(), 3)),
    "Sequential": _n_layer(lambda g, dt: nn.Sequential(nn.Linear(3, 4, dtype=dt), g.choice([nn.ReLU, nn.Tanh, nn.Sigmoid])(),
                                                       nn.Linear(4, 2, dtype=dt)), lambda g: (g.dim(), 3)),
    "Residual": _n_layer(lambda g, dt: nn.Residual(nn.Linear(3, 3, dtype=dt)), lambda g: (g.dim(), 3)),
}


def _loss_scenario(g, make):
    def build(g):
        dt = g.fdtype()
        N, C = g.dim(), g.dim()
        loss = make(g, dt, C)
        pred = g.arr(N, C, dtype=dt)
        if isinstance(loss, (nn.CrossEntropyLoss, nn.NLLLoss)) and g.bool(0.7):
            target = g.index((N,), C)
            if g.bool(0.2):
                target[:1] = g.choice([-1, C, 2**40])
        else:
            target = g.arr(N, C, dtype=dt, fill="positive")

        def run():
            loss(g.hostile(pred) if g.bool(0.3) else pred, g.hostile(target) if g.bool(0.3) else target)
            loss.backward()
        return run
    return build


LOSSES = {
    "MSELoss": lambda g, dt, C: nn.MSELoss(g.choice(["mean", "sum", "none", "x"])),
    "L1Loss": lambda g, dt, C: nn.L1Loss(g.choice(["mean", "sum", "none"])),
    "CrossEntropyLoss": lambda g, dt, C: nn.CrossEntropyLoss(
        weight=g.arr(C, dtype=dt, fill="positive") if g.bool(0.3) else None,
        reduction=g.choice(["mean", "sum", "none"]), label_smoothing=_hyper(g, 0.1)),
    "NLLLoss": lambda g, dt, C: nn.NLLLoss(weight=g.arr(C, dtype=dt, fill="positive") if g.bool(0.3) else None,
                                           reduction=g.choice(["mean", "sum", "none"])),
    "BCEWithLogitsLoss": lambda g, dt, C: nn.BCEWithLogitsLoss(
        weight=g.arr(C, dtype=dt, fill="positive") if g.bool(0.3) else None, reduction=g.choice(["mean", "sum"]),
        pos_weight=g.arr(C, dtype=dt, fill="positive") if g.bool(0.3) else None),
}
for _name, _make in LOSSES.items():
    NN[_name] = _loss_scenario(None, _make)

# pydl.nn names that are not layers to fuzz on their own (containers are fuzzed through
# Sequential/Residual, Parameter and the base class through every layer).
NN_NOT_LAYERS = {"Module", "ModuleList", "ModuleDict", "Parameter", "RemovableHandle", "StateDictError"}


def _generic_layer(cls):
    """A builder for a layer without its own: required int parameters get small ints, inputs are
    random float arrays of rank 2..4 (covers layers added later, e.g. convolutions)."""
    def build(g):
        dt = g.fdtype()
        sig = inspect.signature(cls)
        kwargs = {n: g.int(1, 3) for n, p in sig.parameters.items()
                  if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if "dtype" in sig.parameters:
            kwargs["dtype"] = dt
        layer = cls(**kwargs)
        x = g.arr(*[g.dim() for _ in range(g.int(2, 4))], dtype=dt)
        return lambda: _layer_scenario(g, layer, x)
    return build


def nn_targets():
    """Every public pydl.nn layer: its own builder or the generic one."""
    out = dict(NN)
    for name in dir(nn):
        obj = getattr(nn, name)
        if (not name.startswith("_") and inspect.isclass(obj) and issubclass(obj, nn.Module)
                and name not in out and name not in NN_NOT_LAYERS):
            out[name] = _generic_layer(obj)
    return out


# ===================================================================== optimizers
def _optim_scenario(cls, defaults):
    def build(g):
        dt = g.fdtype()
        params = [nn.Parameter(g.arr(*_shape(g), dtype=dt)) for _ in range(g.int(1, 3))]
        kw = {k: _hyper(g, v) for k, v in defaults.items()}

        def run():
            opt = cls(params, **kw)
            for _ in range(g.int(1, 3)):
                for p in params:
                    r = g.int(0, 9)
                    p.grad = None if r == 0 else (g.hostile(np.ones_like(p.data)) if r == 1 else g.arr(*p.data.shape, dtype=dt))
                opt.step()
            if g.bool(0.3):
                sd = opt.state_dict()
                if g.bool():
                    sd = g.hostile(sd)
                opt.load_state_dict(sd)
                opt.step()
        return run
    return build


OPTIM = {
    "SGD": _optim_scenario(optim.SGD, {"lr": 0.01, "momentum": 0.9, "dampening": 0.0, "weight_decay": 0.0, "nesterov": False}),
    "Adam": _optim_scenario(optim.Adam, {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0, "amsgrad": True}),
    "AdamW": _optim_scenario(optim.AdamW, {"lr": 1e-3, "betas": (0.9, 0.999), "weight_decay": 0.01}),
    "RMSprop": _optim_scenario(optim.RMSprop, {"lr": 0.01, "alpha": 0.99, "momentum": 0.9, "centered": True}),
    "Adagrad": _optim_scenario(optim.Adagrad, {"lr": 0.01, "lr_decay": 0.0, "initial_accumulator_value": 0.0}),
    "Adadelta": _optim_scenario(optim.Adadelta, {"lr": 1.0, "rho": 0.9, "eps": 1e-6}),
}
OPTIM_NOT_OPTIMIZERS = {"Optimizer"}


# ===================================================================== save / load
_TMP = []


def _tmp():
    """The scratch directory of the save/load targets (made on first use, removed at exit)."""
    if not _TMP:
        _TMP.append(tempfile.mkdtemp(prefix="pydl-fuzz-"))
        atexit.register(shutil.rmtree, _TMP[0], True)
    return _TMP[0]


def _valid_file_bytes(g):
    buf = io.BytesIO()
    sd = {"w": g.arr(g.dim(), g.dim()), "b": g.arr(g.dim(), dtype=F64), "n": np.int64(3)}
    path = os.path.join(_tmp(), "valid.npz")
    pydl.save(sd, path)
    with open(path, "rb") as f:
        buf.write(f.read())
    return bytearray(buf.getvalue())


def _b_load(g):
    data = _valid_file_bytes(g)
    kind = g.int(0, 5)
    if kind == 0:
        data = bytearray(g.rng.bytes(g.int(0, 300)))
    elif kind == 1 and data:
        for _ in range(g.int(1, 8)):
            i = g.int(0, len(data) - 1)
            data[i] ^= 1 << g.int(0, 7)
    elif kind == 2:
        data = data[: g.int(0, len(data))]
    elif kind == 3 and data:
        i = g.int(0, len(data) - 1)
        data[i:i] = g.rng.bytes(g.int(1, 16))
    elif kind == 4 and data:  # overwrite a 4-byte field with an extreme value
        i = g.int(0, max(len(data) - 4, 0))
        data[i:i + 4] = g.choice([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\xff\xff\xff\x7f", b"\x00\x00\x00\x80"])
    path = os.path.join(_tmp(), "fuzzed.npz")
    with open(path, "wb") as f:
        f.write(data)
    return Call(pydl.load, [path])


def _b_save(g):
    key = g.choice(["w", "", "a\0b", "allow_pickle", "x" * 2000, "é", "../x", 3, None, "a/b"])
    value = g.choice([g.arr(g.dim(), g.dim()), np.array([object()]), np.ones(3, ">f4"), [1, 2], {"n": np.ones(2)}, None,
                      np.ones(2, np.complex64), np.float64("nan"), "s", b"bytes"])
    return Call(pydl.save, [{key: value}, os.path.join(_tmp(), g.choice(["out.npz", "out", "sub/none.npz", ""]))])


IO = {"load": _b_load, "save": _b_save}


def _selftest_segfault(g):
    """Dereferences NULL: test_fuzz.py checks that the harness reports the crash."""
    import ctypes

    return Call(ctypes.string_at, [0, 1])


# Not part of the run unless named: checks that a crash is detected and located.
SELFTEST = {"selftest.segfault": _selftest_segfault}


def all_targets():
    """name -> builder for every target; names are prefixed by their group."""
    out = {}
    for prefix, table in (("_C.", BINDINGS), ("ops.", OPS), ("nn.", nn_targets()), ("optim.", OPTIM), ("io.", IO)):
        for name, build in table.items():
            out[prefix + name] = build
    return out


def build_call(g, build):
    """Run a builder and mutate its arguments (when it returned a Call)."""
    c = build(g)
    if isinstance(c, Call):
        mutate_call(g, c)
    return c


__all__ = ["Call", "Gen", "BINDINGS", "BINDING_CONSTANTS", "OPS", "OPS_NON_FUNCTIONS", "NN", "NN_NOT_LAYERS", "OPTIM",
           "OPTIM_NOT_OPTIMIZERS", "IO", "all_targets", "nn_targets", "build_call", "hostile_array"]
