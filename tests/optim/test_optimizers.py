"""pydl.optim optimizers: PyTorch parity, state_dict resume, validation, param groups, descent."""
import copy

import numpy as np
import pytest

from pydl import nn, optim

SHAPES = [(4, 3), (7,), (33, 5)]

OPTIONS = {
    "SGD": [dict(lr=0.1), dict(lr=0.1, momentum=0.9), dict(lr=0.1, momentum=0.9, dampening=0.5),
            dict(lr=0.1, momentum=0.9, nesterov=True), dict(lr=0.1, weight_decay=0.1, momentum=0.5),
            dict(lr=0.1, momentum=0.9, maximize=True)],
    "Adagrad": [dict(), dict(lr=0.1, lr_decay=0.1), dict(weight_decay=0.1), dict(initial_accumulator_value=0.5),
                dict(eps=1e-3, maximize=True)],
    "Adadelta": [dict(), dict(lr=0.5, rho=0.8), dict(weight_decay=0.1, eps=1e-4), dict(maximize=True)],
    "RMSprop": [dict(), dict(momentum=0.9), dict(centered=True), dict(centered=True, momentum=0.5, weight_decay=0.1),
                dict(alpha=0.9, eps=1e-4, maximize=True)],
    "Adam": [dict(), dict(lr=0.01, betas=(0.8, 0.99)), dict(weight_decay=0.1), dict(amsgrad=True),
             dict(amsgrad=True, weight_decay=0.05, maximize=True), dict(weight_decay=0.1, decoupled_weight_decay=True)],
    "AdamW": [dict(), dict(weight_decay=0.1, lr=0.01), dict(amsgrad=True), dict(maximize=True, betas=(0.5, 0.9))],
}
CASES = [(name, opts) for name, lst in OPTIONS.items() for opts in lst]


def make_params(dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [nn.Parameter(rng.standard_normal(s).astype(dtype)) for s in SHAPES]


def grads_for(step, dtype):
    rng = np.random.default_rng(100 + step)
    return [rng.standard_normal(s).astype(dtype) for s in SHAPES]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,opts", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_matches_torch_over_20_steps(name, opts, dtype):
    torch = pytest.importorskip("torch")
    params = make_params(dtype)
    tparams = [torch.tensor(p.data.copy(), requires_grad=True) for p in params]
    # two groups: the second with its own lr, to check per-group hyperparameters
    groups = [{"params": params[:2]}, {"params": params[2:], "lr": 0.05}]
    tgroups = [{"params": tparams[:2]}, {"params": tparams[2:], "lr": 0.05}]
    opt = getattr(optim, name)(groups, **opts)
    topt = getattr(torch.optim, name)(tgroups, **opts)
    tol = 1e-5 if dtype == np.float32 else 1e-10
    for step in range(20):
        gs = grads_for(step, dtype)
        for i, (p, tp, g) in enumerate(zip(params, tparams, gs)):
            skip = i == 1 and step % 3 == 2  # a parameter without gradient is skipped
            p.grad = None if skip else g.copy()
            tp.grad = None if skip else torch.tensor(g.copy())
        opt.step()
        topt.step()
        for i, (p, tp) in enumerate(zip(params, tparams)):
            np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=tol, atol=tol,
                                       err_msg=f"{name} {opts} step {step} param {i}")
    for p, tp in zip(params, tparams):
        st, tst = opt.state[p], topt.state[tp]
        assert set(st) == set(k for k, v in tst.items() if v is not None)
        if "step" in st:
            assert st["step"] == int(tst["step"])
        for k, v in st.items():
            if isinstance(v, np.ndarray):
                assert v.dtype == dtype
                np.testing.assert_allclose(v, tst[k].numpy(), rtol=tol * 10, atol=tol)


@pytest.mark.parametrize("name,opts", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_state_dict_resume_is_bit_identical(name, opts):
    cls = getattr(optim, name)
    params = make_params(np.float32)
    opt = cls(params, **opts)
    for step in range(5):
        for p, g in zip(params, grads_for(step, np.float32)):
            p.grad = g
        opt.step()
    saved = copy.deepcopy(opt.state_dict())
    params2 = [nn.Parameter(p.data.copy()) for p in params]
    opt2 = cls(params2, lr=123.0)  # hyperparameters come back from the state dict
    opt2.load_state_dict(saved)
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    for step in range(5, 10):
        for p, p2, g in zip(params, params2, grads_for(step, np.float32)):
            p.grad, p2.grad = g, g.copy()
        opt.step()
        opt2.step()
    for p, p2 in zip(params, params2):
        np.testing.assert_array_equal(p.data, p2.data)
        for k, v in opt.state[p].items():
            np.testing.assert_array_equal(v, opt2.state[p2][k])


def test_state_dict_is_a_copy_and_state_keys_follow_pytorch():
    params = make_params(np.float32)
    opt = optim.Adam(params, amsgrad=True)
    for p, g in zip(params, grads_for(0, np.float32)):
        p.grad = g
    opt.step()
    sd = opt.state_dict()
    assert sorted(sd["state"]) == [0, 1, 2]
    assert set(sd["state"][0]) == {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}
    assert sd["param_groups"][0]["params"] == [0, 1, 2] and sd["param_groups"][0]["amsgrad"] is True
    before = sd["state"][0]["exp_avg"].copy()
    opt.step()
    np.testing.assert_array_equal(sd["state"][0]["exp_avg"], before)


def test_load_state_dict_rejects_mismatches():
    params = make_params(np.float32)
    opt = optim.SGD(params, momentum=0.9)
    for p, g in zip(params, grads_for(0, np.float32)):
        p.grad = g
    opt.step()
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="parameter groups"):
        optim.SGD([{"params": params[:1]}, {"params": params[1:]}]).load_state_dict(sd)
    with pytest.raises(ValueError, match="has 3 parameters"):
        optim.SGD(params[:2]).load_state_dict(sd)
    sd["state"][1]["momentum_buffer"] = np.zeros((2, 2), np.float32)
    with pytest.raises(ValueError, match=r"state\[1\]\['momentum_buffer'\]: expected shape"):
        optim.SGD(params).load_state_dict(sd)


BAD = [
    (optim.SGD, dict(lr=-1), "Invalid learning rate: -1"),
    (optim.SGD, dict(momentum=-0.5), "Invalid momentum value: -0.5"),
    (optim.SGD, dict(weight_decay=-1e-3), "Invalid weight_decay value: -0.001"),
    (optim.SGD, dict(nesterov=True), "Nesterov momentum requires a momentum and zero dampening"),
    (optim.SGD, dict(nesterov=True, momentum=0.9, dampening=0.1), "Nesterov momentum requires"),
    (optim.Adagrad, dict(lr_decay=-1), "Invalid lr_decay value: -1"),
    (optim.Adagrad, dict(initial_accumulator_value=-1), "Invalid initial_accumulator_value value: -1"),
    (optim.Adagrad, dict(eps=-1), "Invalid epsilon value: -1"),
    (optim.Adadelta, dict(rho=1.5), "Invalid rho value: 1.5"),
    (optim.Adadelta, dict(lr=float("nan")), "Invalid learning rate: nan"),
    (optim.RMSprop, dict(alpha=-0.1), "Invalid alpha value: -0.1"),
    (optim.RMSprop, dict(momentum=-1), "Invalid momentum value: -1"),
    (optim.Adam, dict(betas=(1.0, 0.999)), "Invalid beta parameter at index 0: 1.0"),
    (optim.Adam, dict(betas=(0.9, -0.1)), "Invalid beta parameter at index 1: -0.1"),
    (optim.Adam, dict(betas=0.9), "Invalid betas"),
    (optim.AdamW, dict(weight_decay=-0.1), "Invalid weight_decay value: -0.1"),
    (optim.AdamW, dict(eps=-1e-8), "Invalid epsilon value: -1e-08"),
]


@pytest.mark.parametrize("cls,kwargs,message", BAD)
def test_bad_hyperparameters_raise_naming_them(cls, kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        cls(make_params(np.float32), **kwargs)


def test_bad_group_hyperparameter_and_bad_params():
    params = make_params(np.float32)
    with pytest.raises(ValueError, match="Invalid learning rate: -0.1"):
        optim.Adam([{"params": params[:1]}, {"params": params[1:], "lr": -0.1}])
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([])
    with pytest.raises(TypeError, match=r"params\[1\]: expected a pydl.nn.Parameter, got ndarray"):
        optim.SGD([params[0], np.zeros(3)])
    with pytest.raises(TypeError, match="params: expected an iterable"):
        optim.SGD(params[0])
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": params[:2]}, {"params": params[1:]}])
    with pytest.raises(TypeError, match="Invalid learning rate: expected a number, got str"):
        optim.SGD(params, lr="fast")


def test_param_groups_defaults_add_group_and_lr_edits():
    params = make_params(np.float32)
    opt = optim.SGD(params[:2], lr=0.1, momentum=0.9)
    assert opt.param_groups[0]["momentum"] == 0.9 and opt.param_groups[0]["nesterov"] is False
    opt.add_param_group({"params": params[2], "lr": 0.01})
    assert opt.param_groups[1]["lr"] == 0.01 and opt.param_groups[1]["momentum"] == 0.9
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [params[0]]})
    # an edited lr is used by the next step
    opt.param_groups[1]["lr"] = 0.0
    before = params[2].data.copy()
    for p, g in zip(params, grads_for(0, np.float32)):
        p.grad = g
    opt.step()
    np.testing.assert_array_equal(params[2].data, before)


def test_zero_grad_and_skipped_parameters():
    params = make_params(np.float32)
    opt = optim.Adam(params)
    params[0].grad = np.ones(SHAPES[0], np.float32)
    before = [p.data.copy() for p in params]
    opt.step()
    assert params[0] in opt.state and params[1] not in opt.state
    np.testing.assert_array_equal(params[1].data, before[1])
    assert not np.array_equal(params[0].data, before[0])
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(params[0].grad, 0)
    opt.zero_grad()
    assert all(p.grad is None for p in params)


def test_mixed_dtypes_in_one_group():
    torch = pytest.importorskip("torch")
    p32, p64 = nn.Parameter(np.ones(5, np.float32)), nn.Parameter(np.ones(3, np.float64))
    t32, t64 = (torch.ones(5, requires_grad=True), torch.ones(3, dtype=torch.float64, requires_grad=True))
    opt, topt = optim.Adam([p32, p64], lr=0.1), torch.optim.Adam([t32, t64], lr=0.1)
    for step in range(3):
        p32.grad, p64.grad = np.full(5, step + 1.0, np.float32), np.full(3, -step - 1.0)
        t32.grad, t64.grad = torch.tensor(p32.grad), torch.tensor(p64.grad)
        opt.step()
        topt.step()
    np.testing.assert_allclose(p32.data, t32.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(p64.data, t64.detach().numpy(), rtol=1e-12)
    assert p32.data.dtype == np.float32 and opt.state[p64]["exp_avg"].dtype == np.float64


def test_closure_is_called_and_its_value_returned():
    params = make_params(np.float64)
    opt = optim.SGD(params, lr=0.1)
    assert opt.step(lambda: 3.5) == 3.5


@pytest.mark.parametrize("name,opts", [("SGD", dict(lr=0.05)), ("SGD", dict(lr=0.02, momentum=0.9, nesterov=True)),
                                       ("Adagrad", dict(lr=0.3)), ("Adadelta", dict(lr=1.0)),
                                       ("RMSprop", dict(lr=0.01)), ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5)),
                                       ("Adam", dict(lr=0.05)), ("AdamW", dict(lr=0.05, amsgrad=True))])
def test_loss_goes_down_on_least_squares(name, opts):
    # minimise 0.5 * ||X w + b - y||^2 / n; gradients by hand
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 5))
    y = X @ rng.standard_normal(5) + 0.3
    w, b = nn.Parameter(np.zeros(5)), nn.Parameter(np.zeros(1))
    opt = getattr(optim, name)([w, b], **opts)

    def loss_and_grads():
        r = X @ w.data + b.data - y
        w.grad, b.grad = X.T @ r / len(y), np.array([r.mean()])
        return 0.5 * np.mean(r * r)

    first = loss_and_grads()
    for _ in range(200):
        opt.zero_grad()
        loss_and_grads()
        opt.step()
    last = loss_and_grads()
    assert last < 0.2 * first, (first, last)


def test_failed_step_changes_no_state():
    params = make_params(np.float32)
    for name in ("SGD", "Adam", "Adagrad", "RMSprop"):
        opt = getattr(optim, name)(params, **({"momentum": 0.9} if name == "SGD" else {}))
        for p, g in zip(params, grads_for(0, np.float32)):
            p.grad = g
        opt.step()
        sd = opt.state_dict()
        saved = params[2].data
        params[2].data = np.asfortranarray(saved)  # (33, 5): not C-contiguous, the kernel refuses it
        with pytest.raises(ValueError, match=r"params\[2\]: expected a C-contiguous array"):
            opt.step()
        params[2].data = saved
        after = opt.state_dict()
        for i, st in sd["state"].items():
            for k, v in st.items():
                np.testing.assert_array_equal(after["state"][i][k], v)


def test_kernel_refuses_arrays_sharing_memory():
    from pydl import _C
    p = np.zeros(10, np.float32)
    g = np.ones(10, np.float32)
    m = np.zeros(10, np.float32)
    kw = dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, amsgrad=False, maximize=False)
    with pytest.raises(ValueError, match=r"must not share memory with"):
        _C.adam_step([p], [g], [m], [m], None, [1], **kw)
    with pytest.raises(ValueError, match=r"params\[0\]: must not share memory with grads\[0\]"):
        _C.adam_step([p], [p], [m], [np.zeros(10, np.float32)], None, [1], **kw)
    big = np.zeros(20, np.float32)
    with pytest.raises(ValueError, match=r"must not share memory with"):
        _C.sgd_step([big[:10], big[5:15]], [g, g], None, [], lr=0.1, momentum=0.0, dampening=0.0, weight_decay=0.0,
                    nesterov=False, maximize=False)
    # gradients may share memory with each other
    _C.sgd_step([np.zeros(10, np.float32), np.zeros(10, np.float32)], [g, g], None, [], lr=0.1, momentum=0.0,
                dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False)


def test_step_accepts_unpickled_arrays():
    # arrays that went through pickle (joblib workers) carry equal but distinct dtype objects
    import pickle
    rt = lambda a: pickle.loads(pickle.dumps(a))  # noqa: E731
    p = nn.Parameter(rt(np.ones(3, np.float32)))
    p.grad = rt(np.full(3, 0.5, np.float32))
    q = nn.Parameter(np.ones(3, np.float32))
    q.grad = np.full(3, 0.5, np.float32)
    for params in ([p], [q]):
        optim.Adam(params, lr=0.1).step()
    np.testing.assert_array_equal(p.data, q.data)
