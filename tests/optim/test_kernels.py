"""pydl._C.<name>_step kernels against plain numpy float64 loops of the docs/API.md §1 formulas.

Every option, both dtypes, every ISA (the ``isa`` fixture) and the naive reference; 1 vs 2
threads bitwise equal; validation of the lists.
"""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pydl
from pydl import _C

SHAPES = [(3, 5), (17,), (1,), (0,), (40, 41)]  # odd sizes reach the loop tails


# -- numpy float64 formulas (docs/API.md §1, optimizers), one tensor at a time --------------------
def ref_sgd(p, g, s, lr, momentum, dampening, weight_decay, nesterov, maximize, first):
    g = -g if maximize else g
    g = g + weight_decay * p
    if momentum:
        s["buf"] = g.copy() if first else momentum * s["buf"] + (1 - dampening) * g
        g = g + momentum * s["buf"] if nesterov else s["buf"]
    return p - lr * g


def ref_adagrad(p, g, s, lr, lr_decay, weight_decay, eps, maximize, t):
    g = -g if maximize else g
    clr = lr / (1 + (t - 1) * lr_decay)
    g = g + weight_decay * p
    s["sum"] = s["sum"] + g * g
    return p - clr * g / (np.sqrt(s["sum"]) + eps)


def ref_adadelta(p, g, s, lr, rho, eps, weight_decay, maximize):
    g = -g if maximize else g
    g = g + weight_decay * p
    s["v"] = rho * s["v"] + (1 - rho) * g * g
    dx = np.sqrt(s["u"] + eps) / np.sqrt(s["v"] + eps) * g
    s["u"] = rho * s["u"] + (1 - rho) * dx * dx
    return p - lr * dx


def ref_rmsprop(p, g, s, lr, alpha, eps, weight_decay, momentum, centered, maximize):
    g = -g if maximize else g
    g = g + weight_decay * p
    s["v"] = alpha * s["v"] + (1 - alpha) * g * g
    vt = s["v"]
    if centered:
        s["a"] = alpha * s["a"] + (1 - alpha) * g
        vt = s["v"] - s["a"] ** 2
    if momentum:
        s["b"] = momentum * s["b"] + g / (np.sqrt(vt) + eps)
        return p - lr * s["b"]
    return p - lr * g / (np.sqrt(vt) + eps)


def ref_adam(p, g, s, lr, beta1, beta2, eps, weight_decay, amsgrad, maximize, decoupled, t):
    g = -g if maximize else g
    if decoupled:
        p = p * (1 - lr * weight_decay)
    else:
        g = g + weight_decay * p
    s["m"] = beta1 * s["m"] + (1 - beta1) * g
    s["v"] = beta2 * s["v"] + (1 - beta2) * g * g
    bc1, bc2 = 1 - beta1 ** t, 1 - beta2 ** t
    v = s["v"]
    if amsgrad:
        s["vmax"] = np.maximum(s["vmax"], s["v"])
        v = s["vmax"]
    return p - (lr / bc1) * s["m"] / (np.sqrt(v) / np.sqrt(bc2) + eps)


# -- each optimizer: hyperparameter grid, state names, kernel call --------------------------------
def grid(**options):
    keys = list(options)
    return [dict(zip(keys, vals)) for vals in itertools.product(*options.values())]


CASES = {
    "sgd": grid(lr=[0.1], momentum=[0.0, 0.9], dampening=[0.0, 0.3], weight_decay=[0.0, 0.1],
                nesterov=[False, True], maximize=[False, True]),
    "adagrad": grid(lr=[0.1], lr_decay=[0.0, 0.05], weight_decay=[0.0, 0.1], eps=[1e-10, 1e-3],
                    maximize=[False, True]),
    "adadelta": grid(lr=[1.0, 0.5], rho=[0.9], eps=[1e-6, 1e-3], weight_decay=[0.0, 0.1], maximize=[False, True]),
    "rmsprop": grid(lr=[0.01], alpha=[0.9], eps=[1e-8], weight_decay=[0.0, 0.1], momentum=[0.0, 0.8],
                    centered=[False, True], maximize=[False, True]),
    "adam": grid(lr=[0.01], beta1=[0.9], beta2=[0.99], eps=[1e-8], weight_decay=[0.0, 0.1],
                 amsgrad=[False, True], maximize=[False, True], decoupled=[False, True]),
}
CASES["sgd"] = [c for c in CASES["sgd"] if not (c["nesterov"] and (c["momentum"] == 0 or c["dampening"]))]


def init_state(name, p, rng):
    """State arrays per tensor, kept in float64 for the numpy reference."""
    z = np.zeros_like(p)
    if name == "sgd":
        return {"buf": rng.standard_normal(p.shape)}  # garbage: overwritten by the first step
    if name == "adagrad":
        return {"sum": np.full_like(p, 0.1)}
    if name == "adadelta":
        return {"v": z.copy(), "u": z.copy()}
    if name == "rmsprop":
        return {"v": z.copy(), "a": z.copy(), "b": z.copy()}
    return {"m": z.copy(), "v": z.copy(), "vmax": z.copy()}


def call_kernel(name, params, grads, states, h, t, reference=False):
    """One multi-tensor step; states[i] maps the reference's names to this dtype's arrays."""
    col = lambda key: [s[key] for s in states]  # noqa: E731
    if name == "sgd":
        _C.sgd_step(params, grads, col("buf") if h["momentum"] else None, [t == 1] * len(params),
                    reference=reference, **h)
    elif name == "adagrad":
        _C.adagrad_step(params, grads, col("sum"), [t] * len(params), reference=reference, **h)
    elif name == "adadelta":
        _C.adadelta_step(params, grads, col("v"), col("u"), reference=reference, **h)
    elif name == "rmsprop":
        _C.rmsprop_step(params, grads, col("v"), col("a") if h["centered"] else None,
                        col("b") if h["momentum"] else None, reference=reference, **h)
    else:
        h = dict(h)
        decoupled = h.pop("decoupled")
        _C.adam_step(params, grads, col("m"), col("v"), col("vmax") if h["amsgrad"] else None, [t] * len(params),
                     decoupled_weight_decay=decoupled, reference=reference, **h)


def ref_step(name, p, g, s, h, t):
    if name == "sgd":
        return ref_sgd(p, g, s, first=t == 1, **h)
    if name == "adagrad":
        return ref_adagrad(p, g, s, t=t, **h)
    if name == "adadelta":
        return ref_adadelta(p, g, s, **h)
    if name == "rmsprop":
        return ref_rmsprop(p, g, s, **h)
    return ref_adam(p, g, s, t=t, **h)


def run_against_reference(name, h, dtype, reference, steps=4, seed=0):
    rng = np.random.default_rng(seed)
    ref_p = [rng.standard_normal(s) for s in SHAPES]
    ref_s = [init_state(name, p, rng) for p in ref_p]
    params = [p.astype(dtype) for p in ref_p]
    states = [{k: v.astype(dtype) for k, v in s.items()} for s in ref_s]
    for t in range(1, steps + 1):
        ref_g = [rng.standard_normal(s) for s in SHAPES]
        grads = [g.astype(dtype) for g in ref_g]
        # the reference starts each step from the kernel's (rounded) values, so errors do not compound
        ref_p = [p.astype(np.float64) for p in params]
        ref_s = [{k: v.astype(np.float64) for k, v in s.items()} for s in states]
        ref_g = [g.astype(np.float64) for g in grads]
        call_kernel(name, params, grads, states, h, t, reference=reference)
        for i in range(len(SHAPES)):
            expected = ref_step(name, ref_p[i], ref_g[i], ref_s[i], h, t)
            tol = dict(rtol=2e-6, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-13, atol=1e-13)
            np.testing.assert_allclose(params[i], expected, **tol, err_msg=f"{name} {h} t={t} params[{i}]")
            for k in ref_s[i]:
                if name == "sgd" and not h["momentum"]:
                    continue
                if (name, k) in (("rmsprop", "a"), ("rmsprop", "b"), ("adam", "vmax")) and not np.any(ref_s[i][k]):
                    continue  # unused by these options
                np.testing.assert_allclose(states[i][k], ref_s[i][k], **tol, err_msg=f"{name} {h} t={t} {k}[{i}]")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(CASES))
def test_fast_kernels_match_numpy(isa, name, dtype):
    for h in CASES[name]:
        run_against_reference(name, h, dtype, reference=False)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(CASES))
def test_reference_kernels_match_numpy(name, dtype):
    for h in CASES[name]:
        run_against_reference(name, h, dtype, reference=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(CASES))
def test_one_and_two_threads_bitwise_equal(isa, name, dtype):
    h = CASES[name][-1]  # the option set with the most switched on
    rng = np.random.default_rng(1)
    shapes = [(300_001,), (1000, 257)]  # well above the threading threshold, odd sizes
    p0 = [rng.standard_normal(s).astype(dtype) for s in shapes]
    s0 = [{k: v.astype(dtype) for k, v in init_state(name, p.astype(np.float64), rng).items()} for p in p0]
    g = [rng.standard_normal(s).astype(dtype) for s in shapes]
    results = []
    for threads in (1, 2):
        pydl.set_num_threads(threads)
        params = [p.copy() for p in p0]
        states = [{k: v.copy() for k, v in s.items()} for s in s0]
        for t in (1, 2):
            call_kernel(name, params, g, states, h, t)
        results.append((params, states))
    for a, b in zip(results[0][0], results[1][0]):
        np.testing.assert_array_equal(a, b)
    for sa, sb in zip(results[0][1], results[1][1]):
        for k in sa:
            np.testing.assert_array_equal(sa[k], sb[k])


# -- validation ------------------------------------------------------------------------------------
ADAM = dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, amsgrad=False, maximize=False)


def adam_lists(n=2, dtype=np.float32):
    mk = lambda: [np.zeros((4, 3), dtype) for _ in range(n)]  # noqa: E731
    return mk(), mk(), mk(), mk()


def test_empty_lists_are_a_no_op():
    _C.adam_step([], [], [], [], None, [], **ADAM)


@pytest.mark.parametrize("which", ["grads", "exp_avgs", "exp_avg_sqs"])
def test_length_mismatch_names_the_list(which):
    p, g, m, v = adam_lists()
    lists = dict(grads=g, exp_avgs=m, exp_avg_sqs=v)
    lists[which] = lists[which][:1]
    with pytest.raises(ValueError, match=f"{which}: expected 2 arrays"):
        _C.adam_step(p, lists["grads"], lists["exp_avgs"], lists["exp_avg_sqs"], None, [1, 1], **ADAM)


def test_shape_mismatch_names_argument_and_index():
    p, g, m, v = adam_lists()
    v[1] = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"exp_avg_sqs\[1\]: expected shape \(4,3\) \(as params\[1\]\), got \(3,4\)"):
        _C.adam_step(p, g, m, v, None, [1, 1], **ADAM)


def test_dtype_mismatch_names_argument_and_index():
    p, g, m, v = adam_lists()
    g[0] = g[0].astype(np.float64)
    with pytest.raises(TypeError, match=r"grads\[0\]: expected dtype float32 \(as params\[0\]\), got float64"):
        _C.adam_step(p, g, m, v, None, [1, 1], **ADAM)
    p, g, m, v = adam_lists()
    p[1] = p[1].astype(np.float64)
    with pytest.raises(TypeError, match=r"params\[1\]: expected dtype float32"):
        _C.adam_step(p, g, m, v, None, [1, 1], **ADAM)
    p, g, m, v = adam_lists(dtype=np.int32)
    with pytest.raises(TypeError, match=r"params\[0\]: expected float32 or float64, got int32"):
        _C.adam_step(p, g, m, v, None, [1, 1], **ADAM)


def test_non_contiguous_and_read_only_rejected():
    p, g, m, v = adam_lists()
    m[1] = np.zeros((3, 4), np.float32).T
    with pytest.raises(ValueError, match=r"exp_avgs\[1\]: expected a C-contiguous array"):
        _C.adam_step(p, g, m, v, None, [1, 1], **ADAM)
    p, g, m, v = adam_lists()
    p[0].flags.writeable = False
    with pytest.raises(ValueError, match=r"params\[0\]: array is read-only"):
        _C.adam_step(p, g, m, v, None, [1, 1], **ADAM)
    p, g, m, v = adam_lists()
    v[0].flags.writeable = False
    with pytest.raises(ValueError, match=r"exp_avg_sqs\[0\]: array is read-only"):
        _C.adam_step(p, g, m, v, None, [1, 1], **ADAM)


def test_non_arrays_and_missing_state_rejected():
    p, g, m, v = adam_lists()
    g[1] = [[0.0] * 3] * 4
    with pytest.raises(TypeError, match=r"grads\[1\]: expected a numpy.ndarray, got list"):
        _C.adam_step(p, g, m, v, None, [1, 1], **ADAM)
    p, g, m, v = adam_lists()
    with pytest.raises(TypeError, match=r"params: expected a list"):
        _C.adam_step(p[0], g, m, v, None, [1, 1], **ADAM)
    with pytest.raises(ValueError, match=r"max_exp_avg_sqs: required"):
        _C.adam_step(p, g, m, v, None, [1, 1], **{**ADAM, "amsgrad": True})
    with pytest.raises(ValueError, match=r"momentum_buffers: required"):
        _C.sgd_step(p, g, None, [True, True], lr=0.1, momentum=0.9, dampening=0.0, weight_decay=0.0,
                    nesterov=False, maximize=False)
    with pytest.raises(ValueError, match=r"grad_avgs: required"):
        _C.rmsprop_step(p, g, m, None, None, lr=0.1, alpha=0.9, eps=1e-8, weight_decay=0.0, momentum=0.0,
                        centered=True, maximize=False)


def test_bad_steps_rejected():
    p, g, m, v = adam_lists()
    with pytest.raises(ValueError, match=r"steps: expected 2 step counts"):
        _C.adam_step(p, g, m, v, None, [1], **ADAM)
    with pytest.raises(ValueError, match=r"steps\[1\]: expected a step count >= 1, got 0"):
        _C.adam_step(p, g, m, v, None, [1, 0], **ADAM)
    with pytest.raises(ValueError, match=r"steps: expected 2 step counts"):
        _C.adagrad_step(p, g, m, [1, 2, 3], lr=0.1, lr_decay=0.0, weight_decay=0.0, eps=1e-10, maximize=False)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_overflowing_second_moment_matches_reference(isa, dtype):
    # g^2 overflows to inf: sqrt(v)/bc2_sqrt = inf, m/inf = 0, p unchanged (no NaN from the fast
    # path's division by bc2_sqrt through FMAs)
    big = np.finfo(dtype).max / 4
    p0 = np.linspace(-1, 1, 37).astype(dtype)
    g = np.full(37, big, dtype)
    out = []
    for reference in (False, True):
        p, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
        _C.adam_step([p], [g], [m], [v], None, [1], reference=reference, **ADAM)
        out.append(p)
    np.testing.assert_array_equal(out[0], out[1])
    np.testing.assert_array_equal(out[0], p0)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(0, 300), lr=st.floats(1e-4, 1.0), beta1=st.floats(0.0, 0.99), beta2=st.floats(0.0, 0.9999),
       eps=st.floats(1e-10, 1e-2), wd=st.floats(0.0, 0.5), t=st.integers(1, 10_000),
       flags=st.tuples(st.booleans(), st.booleans(), st.booleans()), scale=st.floats(1e-6, 1e3),
       seed=st.integers(0, 2**31))
def test_adam_random_hyperparameters_match_numpy(n, lr, beta1, beta2, eps, wd, t, flags, scale, seed):
    # the step count t is arbitrary: resuming state at step t is one step of the formulas
    amsgrad, maximize, decoupled = flags
    rng = np.random.default_rng(seed)
    p, g = rng.standard_normal(n), scale * rng.standard_normal(n)
    s = {"m": scale * rng.standard_normal(n), "v": scale ** 2 * rng.random(n), "vmax": scale ** 2 * rng.random(n)}
    h = dict(lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=wd, amsgrad=amsgrad, maximize=maximize,
             decoupled=decoupled)
    for dtype in (np.float32, np.float64):
        ps, gs = [p.astype(dtype)], [g.astype(dtype)]
        states = [{k: v.astype(dtype) for k, v in s.items()}]
        ref_s = {k: v.astype(dtype).astype(np.float64) for k, v in s.items()}
        expected = ref_adam(ps[0].astype(np.float64), gs[0].astype(np.float64), ref_s, t=t, **h)
        call_kernel("adam", ps, gs, states, h, t)
        tol = 1e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(ps[0], expected, rtol=tol, atol=tol * lr)
