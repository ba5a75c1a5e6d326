"""pydl.train.TrainStep: the fused step (one C++ call: forward, loss, backward, optimizer) is
bitwise the layer-by-layer step (docs/ARCHITECTURE.md §2, "Fused training step") for every
supported optimizer, loss, activation, dtype and ISA, for plain and residual MLPs; everything
else falls back to that path, with its results and its errors."""
import copy
import pickle
import threading

import numpy as np
import pytest

import pydl
from pydl import nn, optim
from pydl.train import Trainer, TrainStep

OPTIMIZERS = {
    "sgd": lambda p: optim.SGD(p, lr=0.05),
    "sgd-nesterov": lambda p: optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "sgd-dampening": lambda p: optim.SGD(p, lr=0.05, momentum=0.5, dampening=0.3, maximize=True),
    "adam": lambda p: optim.Adam(p, lr=1e-2),
    "adam-amsgrad": lambda p: optim.Adam(p, lr=1e-2, weight_decay=1e-2, amsgrad=True),
    "adamw": lambda p: optim.AdamW(p, lr=1e-2, betas=(0.8, 0.99)),
}
LOSSES = {  # loss, targets
    "ce": (lambda: nn.CrossEntropyLoss(), "index"),
    "ce-soft-sum": (lambda: nn.CrossEntropyLoss(label_smoothing=0.1, reduction="sum"), "prob"),
    "ce-weighted": (lambda: nn.CrossEntropyLoss(weight=np.linspace(0.5, 2, 5)), "index"),
    "mse": (lambda: nn.MSELoss(), "value"),
    "bce": (lambda: nn.BCEWithLogitsLoss(), "prob"),
}


def mlp(dtype=np.float32, seed=0):
    pydl.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 16, dtype=dtype), nn.ReLU(), nn.Linear(16, 12, dtype=dtype, activation="tanh"),
                         nn.Linear(12, 8, dtype=dtype), nn.LeakyReLU(0.05), nn.Linear(8, 5, dtype=dtype),
                         nn.Sigmoid())


def resmlp(dtype=np.float32, seed=0):
    """A residual MLP with every kind of stage the fused plan takes."""
    pydl.manual_seed(seed)

    def lin(i, o, **kw):
        return nn.Linear(i, o, dtype=dtype, **kw)
    return nn.Sequential(
        lin(6, 16),
        nn.Residual(nn.Sequential(nn.ReLU(), lin(16, 16))),              # pre-activation (Prince's block)
        nn.Residual(nn.Sequential(lin(16, 12), nn.Tanh(), lin(12, 16))),  # post-activation bottleneck
        nn.Residual(lin(16, 16, activation="sigmoid")),                   # one Linear
        nn.GELU(), lin(16, 5),                                            # a run opening with an activation
        nn.Residual(nn.Sequential(nn.LeakyReLU(-0.2), lin(5, 5, activation="relu"))))  # last: out is a sum


def batches(dtype, kind, n=6, seed=1):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        x = rng.standard_normal((7, 6)).astype(dtype)
        if kind == "index":
            y = rng.integers(0, 5, 7)
        else:
            y = rng.random((7, 5)).astype(dtype)
        yield x, y


def layer_by_layer(model, loss_fn, opt, x, y):
    """The reference: the Trainer's step with every layer run on its own (a no-op hook stops all fusion)."""
    handle = model.register_forward_hook(lambda *a: None)
    try:
        opt.zero_grad()
        out = model(x)
        loss = float(loss_fn(out, y))
        model.backward(loss_fn.backward(), input_grad=False)
        opt.step()
    finally:
        handle.remove()
    return loss, out


def assert_same_state(m1, o1, m2, o2):
    for p, q in zip(m1.parameters(), m2.parameters()):
        assert np.array_equal(p.data, q.data) and np.array_equal(p.grad, q.grad)
    s1, s2 = o1.state_dict()["state"], o2.state_dict()["state"]
    assert s1.keys() == s2.keys()
    for k in s1:
        assert s1[k].keys() == s2[k].keys()
        for key in s1[k]:
            assert np.array_equal(s1[k][key], s2[k][key]), key


def train_both(dtype, opt_name, loss_name, steps=6, model=mlp):
    (make_loss, kind), make_opt = LOSSES[loss_name], OPTIMIZERS[opt_name]
    m1, m2 = model(dtype), model(dtype)
    o1, o2 = make_opt(m1.parameters()), make_opt(m2.parameters())
    step, loss2 = TrainStep(m1, make_loss(), o1), make_loss()
    fused = []
    for x, y in batches(dtype, kind, steps):
        l1 = step(x, y)
        fused.append(step.fused)
        l2, out2 = layer_by_layer(m2, loss2, o2, x, y)
        assert l1 == l2 and np.array_equal(step.output, out2)
        assert step.output.flags.writeable == out2.flags.writeable
    return (m1, o1), (m2, o2), fused


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("opt_name", list(OPTIMIZERS))
@pytest.mark.parametrize("loss_name", list(LOSSES))
def test_fused_step_is_bitwise_layer_by_layer(isa, dtype, opt_name, loss_name):
    (m1, o1), (m2, o2), fused = train_both(dtype, opt_name, loss_name)
    assert fused == [False] + [True] * 5  # the first step makes the optimizer's state, layer by layer
    assert_same_state(m1, o1, m2, o2)
    assert all(len(m._pending) == 0 for m in m1.modules())  # a fused step leaves no records


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("opt_name", list(OPTIMIZERS))
@pytest.mark.parametrize("loss_name", ["ce", "ce-soft-sum", "mse"])
def test_fused_residual_step_is_bitwise_layer_by_layer(isa, dtype, opt_name, loss_name):
    (m1, o1), (m2, o2), fused = train_both(dtype, opt_name, loss_name, model=resmlp)
    assert fused == [False] + [True] * 5
    assert_same_state(m1, o1, m2, o2)
    assert all(len(m._pending) == 0 for m in m1.modules())


def test_residual_step_matches_torch():
    """Prince's residual MLP (examples/mnist1d_paper.py), small, in float64: five Adam steps of
    TrainStep (four of them fused) against torch's Adam on the formula written out, from the
    same weights: h = x W0^T + b0; h = h + relu(h) Wk^T + bk twice; logits = h W3^T + b3."""
    torch = pytest.importorskip("torch")
    pydl.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 12, dtype=np.float64),
                          *(nn.Residual(nn.Sequential(nn.ReLU(), nn.Linear(12, 12, dtype=np.float64)))
                            for _ in range(2)),
                          nn.Linear(12, 5, dtype=np.float64))
    w = [torch.tensor(p.data, requires_grad=True) for p in model.parameters()]

    def torch_forward(x):
        h = x @ w[0].T + w[1]
        for k in (2, 4):
            h = h + (torch.relu(h) @ w[k].T + w[k + 1])
        return h @ w[6].T + w[7]
    step = TrainStep(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=1e-2))
    topt = torch.optim.Adam(w, lr=1e-2)
    rng = np.random.default_rng(0)
    for k in range(5):
        x, y = rng.standard_normal((10, 8)), rng.integers(0, 5, 10)
        loss = step(x, y)
        assert step.fused == (k > 0)
        tloss = torch.nn.functional.cross_entropy(torch_forward(torch.from_numpy(x)), torch.from_numpy(y))
        tloss.backward()
        topt.step()
        topt.zero_grad()
        assert abs(loss - tloss.item()) <= 1e-12 * abs(tloss.item())
    for p, q in zip(model.parameters(), w):
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-9, atol=1e-12)


def test_residual_blocks_the_plan_does_not_take_run_layer_by_layer():
    def block(**kw):
        return nn.Residual(nn.Sequential(nn.ReLU(), nn.Linear(16, 16)), **kw)
    shared = nn.Linear(16, 16)
    x, y = next(batches(np.float32, "index"))
    hooked = block()
    hooked.module.register_forward_hook(lambda *a: None)
    for blocks in ([block(shortcut=nn.Identity())],                              # a shortcut module
                   [nn.Residual(nn.Sequential(nn.ReLU(), nn.Dropout(0.0), nn.Linear(16, 16)))],
                   [nn.Residual(shared), nn.Residual(shared)],                   # a Linear in two blocks
                   [hooked],
                   [block(), nn.ReLU()]):                                        # a run without a Linear
        pydl.manual_seed(0)
        model = nn.Sequential(nn.Linear(6, 16), *blocks, *([nn.Linear(16, 5)] if len(blocks) < 2 or
                                                           not isinstance(blocks[1], nn.ReLU) else []))
        step = TrainStep(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters()))
        step(x, y)
        step(x, y)
        assert not step.fused, blocks


def test_plan_follows_the_children_of_residual_blocks():
    m1, m2 = resmlp(), resmlp()
    o1, o2 = optim.Adam(m1.parameters()), optim.Adam(m2.parameters())
    step, loss2 = TrainStep(m1, nn.CrossEntropyLoss(), o1), nn.CrossEntropyLoss()
    fused, plans = [], []
    for k, (x, y) in enumerate(batches(np.float32, "index", 7)):
        for m in (m1, m2):
            if k == 2:
                m[1].shortcut = nn.Identity()  # the same function, run by a module: layer by layer
            if k == 3:
                m[1].shortcut = None
            if k == 5:  # the same block rebuilt around its Linear: a new plan
                m[2].module = nn.Sequential(*m[2].module)
        o2.zero_grad()  # the layer-by-layer step (no hook: a hook would make every plan anew)
        loss = float(loss2(m2(x), y))
        m2.backward(loss2.backward(), input_grad=False)
        o2.step()
        assert step(x, y) == loss
        fused.append(step.fused)
        plans.append(step._plan)
    assert fused == [False, True, False, True, True, True, True]
    assert plans[3] is plans[4] and plans[5] is not plans[4]
    assert_same_state(m1, o1, m2, o2)


def test_bitwise_for_any_thread_count():
    x = np.random.default_rng(0).standard_normal((256, 300)).astype(np.float32)
    y = np.arange(256) % 10
    results = []
    for threads in (1, 2):
        pydl.set_num_threads(threads)
        pydl.manual_seed(0)
        model = nn.Sequential(nn.Linear(300, 512), nn.ReLU(), nn.Linear(512, 10))
        step = TrainStep(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters()))
        losses = [step(x, y) for _ in range(3)]
        results.append((losses, [p.data.copy() for p in model.parameters()]))
    assert results[0][0] == results[1][0]
    for a, b in zip(results[0][1], results[1][1]):
        assert np.array_equal(a, b)


def test_param_groups_and_changing_hyperparameters():
    m1, m2 = mlp(), mlp()

    def groups(m):
        return [{"params": list(m[0].parameters()), "lr": 0.02}, {"params": list(m[2].parameters()) + list(m[3].parameters())
                                                                    + list(m[5].parameters())}]
    o1, o2 = optim.Adam(groups(m1), lr=1e-2), optim.Adam(groups(m2), lr=1e-2)
    sched = optim.lr_scheduler.StepLR(o1, step_size=2, gamma=0.5)
    step = TrainStep(m1, nn.CrossEntropyLoss(), o1)
    loss2 = nn.CrossEntropyLoss()
    for k, (x, y) in enumerate(batches(np.float32, "index", 8)):
        assert step(x, y) == layer_by_layer(m2, loss2, o2, x, y)[0]
        assert step.fused == (k > 0 and k != 5)
        sched.step()
        o2.param_groups[0]["lr"] = o1.param_groups[0]["lr"]
        o2.param_groups[1]["lr"] = o1.param_groups[1]["lr"]
        if k == 4:  # an option that needs more state: one layer-by-layer step makes it
            for o in (o1, o2):
                for g in o.param_groups:
                    g["amsgrad"] = True
    assert_same_state(m1, o1, m2, o2)


def test_plan_follows_replaced_arrays_and_loaded_state():
    (m1, o1), (m2, o2), _ = train_both(np.float32, "adam", "ce", steps=3)
    step = TrainStep(m1, nn.CrossEntropyLoss(), o1)
    loss2 = nn.CrossEntropyLoss()
    data = list(batches(np.float32, "index", 8, seed=5))

    def both(k):
        x, y = data[k]
        assert step(x, y) == layer_by_layer(m2, loss2, o2, x, y)[0]
        return step.fused
    assert both(0)
    for m in (m1, m2):  # new arrays for a weight and a bias
        m[2].weight.data = m[2].weight.data.copy()
        m[5].bias = nn.Parameter(m[5].bias.data.copy())
    for o, m in ((o1, m1), (o2, m2)):  # the optimizer follows the new Parameter (state from 0 for it)
        o.param_groups[0]["params"][-1] = m[5].bias
    assert not both(1)  # the new bias has no optimizer state yet: one layer-by-layer step
    assert both(2)
    sd = o1.state_dict()
    o1.load_state_dict(sd)
    o2.load_state_dict(o2.state_dict())
    assert both(3)
    m1.load_state_dict(m2.state_dict())  # in place: the plan stays
    assert both(4) and both(5)
    assert_same_state(m1, o1, m2, o2)


def test_what_the_plan_does_not_take_runs_layer_by_layer():
    def stepped(model, loss_fn, opt, x, y):
        step = TrainStep(model, loss_fn, opt)
        step(x, y)
        step(x, y)
        return step.fused

    x, y = next(batches(np.float32, "index"))
    m = mlp()
    assert stepped(m, nn.CrossEntropyLoss(), optim.Adam(m.parameters()), x, y)
    for model in (nn.Sequential(nn.Linear(6, 8), nn.GELU(), nn.Linear(8, 5)),
                  nn.Sequential(nn.Linear(6, 8), nn.Dropout(0.5), nn.Linear(8, 5)),
                  nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.Linear(8, 5))):
        assert not stepped(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters()), x, y)
    m = mlp()
    assert not stepped(m, nn.CrossEntropyLoss(), optim.RMSprop(m.parameters()), x, y)
    m = mlp()
    m[0].register_forward_hook(lambda *a: None)
    assert not stepped(m, nn.CrossEntropyLoss(), optim.Adam(m.parameters()), x, y)
    m = mlp()
    assert not stepped(m, nn.CrossEntropyLoss(), optim.Adam(list(m.parameters())[2:]), x, y)  # frozen layer
    m = mlp()
    step = TrainStep(m, nn.CrossEntropyLoss(), optim.Adam(m.parameters()))
    step(x, y)
    for xb, yb in ((x.T.copy().T, y), (x, y.astype(np.int32))):
        step(xb, yb)
        assert not step.fused
    with pydl.no_grad(), pytest.raises(RuntimeError, match="no pending forward call"):
        step(x, y)  # as the layer-by-layer step: no_grad saved nothing to backpropagate


def warm_step():
    """A TrainStep on mlp() with Adam after two steps (the second one fused), and its batch."""
    m = mlp()
    step = TrainStep(m, nn.CrossEntropyLoss(), optim.Adam(m.parameters()))
    x, y = next(batches(np.float32, "index"))
    step(x, y)
    step(x, y)
    assert step.fused
    return m, step, x, y


def test_errors_are_the_layer_by_layer_errors():
    m, step, x, y = warm_step()
    before = [p.data.copy() for p in m.parameters()]
    bad = y.copy()
    bad[3] = 5
    with pytest.raises(ValueError, match=r"target: class index 5 .* out of range \[0, 5\)"):
        step(x, bad)
    with pytest.raises(TypeError, match=r"input: expected dtype float32 \(the layer's dtype\)"):
        step(x.astype(np.float64), y)
    with pytest.raises(ValueError, match=r"input: expected shape \(\*, 6\) for Linear\(6, 16\)"):
        step(x[:, :5].copy(), y)
    for p, b in zip(m.parameters(), before):
        assert np.array_equal(p.data, b)  # nothing was stepped
    step(x, y)
    assert step.fused


def test_ignore_index_takes_the_layer_by_layer_path():
    m1, m2 = mlp(), mlp()
    o1, o2 = optim.SGD(m1.parameters(), lr=0.1), optim.SGD(m2.parameters(), lr=0.1)
    step, loss2 = TrainStep(m1, nn.CrossEntropyLoss(), o1), nn.CrossEntropyLoss()
    for k, (x, y) in enumerate(batches(np.float32, "index")):
        if k % 2:
            y[::3] = -100  # ignored samples
        assert step(x, y) == layer_by_layer(m2, loss2, o2, x, y)[0]
        assert step.fused == (k % 2 == 0 and k > 0)
    assert_same_state(m1, o1, m2, o2)


def test_pending_calls_of_the_user_survive_fused_steps():
    m = mlp()
    step = TrainStep(m, nn.CrossEntropyLoss(), optim.Adam(m.parameters()))
    x, y = next(batches(np.float32, "index"))
    step(x, y)
    kept = m(x)  # a call of the user's own, pending
    step(x, y)
    step(x, y)
    assert step.fused and len(m._pending) == 1
    m.backward(np.ones_like(kept))  # still the latest unconsumed call
    assert len(m._pending) == 0


def test_trainer_fit_is_bitwise_the_layer_by_layer_fit():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((90, 6)).astype(np.float32), rng.integers(0, 5, 90)
    runs = []
    for hooked in (False, True):
        m = mlp()
        if hooked:
            m.register_forward_hook(lambda *a: None)
        tr = Trainer(m, nn.CrossEntropyLoss(), optim.Adam(m.parameters(), lr=1e-2))
        pydl.manual_seed(3)
        hist = tr.fit(x, y, epochs=3, batch_size=16, validation_split=0.2, verbose=0)
        runs.append((hist.history, [p.data.copy() for p in m.parameters()], tr._step_fn().fused))
    assert runs[0][2] and not runs[1][2]
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1]):
        assert np.array_equal(a, b)


def test_two_threads_step_two_models_at_once():
    x, y = next(batches(np.float32, "index"))

    def make(k):  # (in this thread: initialization draws from pydl's global generator)
        m = mlp(seed=k)
        return m, TrainStep(m, nn.CrossEntropyLoss(), optim.Adam(m.parameters()))

    def train(out, k, model, step):
        out[k] = ([step(x, y) for _ in range(200)], [p.data.copy() for p in model.parameters()])
    alone, together = {}, {}
    for k in range(2):
        train(alone, k, *make(k))
    threads = [threading.Thread(target=train, args=(together, k) + make(k)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(2):
        assert alone[k][0] == together[k][0]
        assert all(np.array_equal(a, b) for a, b in zip(alone[k][1], together[k][1]))


def test_copies_and_pickles_make_their_own_plan():
    _, step, x, y = warm_step()
    for clone in (copy.deepcopy, lambda s: pickle.loads(pickle.dumps(s))):
        other = clone(step)
        assert other._plan is None
        loss = other(x, y)
        assert other.fused and loss == step(x, y)  # the copy's plan is its own, on its own arrays


def test_the_compiled_plan_names_bad_arrays():
    from pydl import _C
    w = [np.ones((4, 3), np.float32), np.ones((2, 4), np.float32)]
    b = [np.ones(4, np.float32), None]
    gw, gb = [np.zeros_like(a) for a in w], [np.zeros(4, np.float32), None]
    states = [[np.zeros_like(a) for a in (w[0], b[0], w[1])] for _ in range(2)]
    args = [w, b, gw, gb, ["relu", "none"], [0.0, 0.0], "adam", states, [0, 0, 0]]
    plan = _C.MlpStep(*args)
    hyper, x = [(1e-3, 0.9, 0.999, 1e-8, 0.0, False, False, False)], np.ones((5, 3), np.float32)
    out = np.empty((5, 2), np.float32)
    assert plan.step(x, np.zeros(5, np.int64), out, None, 0.0, True, hyper, [1, 1, 1]) > 0
    assert plan.step(x, np.full(5, 2), out, None, 0.0, True, hyper, [2, 2, 2]) is None  # class 2 of 2: refused
    cases = [
        ({"states": [states[0], states[0]]}, ValueError, r"states\[\d\]\[\d\]: must not share memory with states\[\d\]\[\d\]"),
        ({"gw": [gw[0], gw[0][:2]]}, ValueError, r"grad_weights\[1\]: expected shape \(2,4\)"),
        ({"w": [w[0], np.ones((2, 5), np.float32)]}, ValueError, r"weights\[1\]: expected shape \(2,4\)"),
        ({"gb": [None, None]}, ValueError, r"grad_biases\[0\]: give one exactly"),
        ({"states": states[:1]}, ValueError, r"states: expected a list of 2 to 3 state lists"),
        ({"w": [w[0].astype(np.float64), w[1]]}, TypeError, r"biases\[0\]: expected dtype float64 \(as weights\[0\]\)"),
    ]
    names = ["w", "b", "gw", "gb", "acts", "slopes", "kind", "states", "groups"]
    for change, exc, msg in cases:
        bad = dict(zip(names, args), **change)
        with pytest.raises(exc, match=msg):
            _C.MlpStep(*[bad[k] for k in names])
    with pytest.raises(TypeError, match=r"input: expected dtype float32"):
        plan.step(x.astype(np.float64), np.zeros(5, np.int64), out, None, 0.0, True, hyper, [1, 1, 1])
    with pytest.raises(ValueError, match=r"input: must not share memory with weights\[0\]"):
        plan.forward(w[0][:, :3].reshape(4, 3), np.empty((4, 2), np.float32))
    with pytest.raises(ValueError, match=r"steps\[1\]: expected a step count >= 1"):
        plan.step(x, np.zeros(5, np.int64), out, None, 0.0, True, hyper, [1, 0, 1])
    with pytest.raises(ValueError, match=r"hyper: amsgrad needs max_exp_avg_sqs"):
        plan.step(x, np.zeros(5, np.int64), out, None, 0.0, True, [hyper[0][:5] + (True,) + hyper[0][6:]], [1, 1, 1])
    with pytest.raises(ValueError, match="backward_step: no forward"):
        plan.backward_step(np.ones((5, 2), np.float32), hyper, [1, 1, 1])
    stage_cases = [
        ([(0, 1, "none", 0.0, False)], ValueError, r"stages: expected them to cover the 2 layers, got 1"),
        ([(0, 1, "none", 0.0, False), (0, 2, "none", 0.0, False)], ValueError, r"stages\[1\]: expected layers \[1, last\)"),
        ([(0, 2, "none", 0.0, True)], ValueError, r"stages\[0\]: a residual stage must keep its width, got 3 -> 2"),
        ([(0, 2, "swish", 0.0, False)], ValueError, r"activation"),
        ([(0, 2)], TypeError, r"stages\[0\]: expected a \(first, last, pre, pre_slope, residual\) tuple"),
        ([], TypeError, r"stages: expected a non-empty list"),
        ([(0, -2, "none", 0.0, False)], TypeError, r"stages\[0\]: expected \(int >= 0, int >= 0, str, float, bool\)"),
    ]
    for stages, exc, msg in stage_cases:
        with pytest.raises(exc, match=msg):
            _C.MlpStep(*args, stages=stages)


def test_a_model_that_becomes_plannable_is_fused_soon():
    m1, m2 = mlp(), mlp()
    o1, o2 = optim.Adam(m1.parameters()), optim.Adam(m2.parameters())
    step, loss2 = TrainStep(m1, nn.CrossEntropyLoss(), o1), nn.CrossEntropyLoss()
    handle = m1[5].register_forward_hook(lambda *a: None)
    x, y = next(batches(np.float32, "index"))
    fused = []
    for k in range(300):
        if k == 20:
            handle.remove()
        assert step(x, y) == layer_by_layer(m2, loss2, o2, x, y)[0]
        fused.append(step.fused)
    assert not any(fused[:20]) and all(fused[20 + 32:])  # asked again after 1, 2, 4, ... calls
    assert_same_state(m1, o1, m2, o2)


def test_arguments_in_the_wrong_order_are_named():
    m = nn.Sequential(nn.Linear(6, 5))
    loss, opt = nn.CrossEntropyLoss(), optim.SGD(m.parameters(), lr=0.1)
    with pytest.raises(TypeError, match=r"TrainStep: loss_fn must be a loss .* got SGD"):
        TrainStep(m, opt, loss)
    with pytest.raises(TypeError, match=r"TrainStep: model must be an nn.Module .* got ndarray"):
        TrainStep(np.zeros(3), loss, opt)
    with pytest.raises(TypeError, match=r"TrainStep: optimizer must be an optimizer .* got NoneType"):
        TrainStep(m, loss, None)


# ---- whole epochs in C++ calls (TrainStep.run_batches, the Trainer's loop without Python between batches)

class _EveryBatch(pydl.train.callbacks.Callback):
    """A batch callback that does nothing: the Trainer then runs its per-batch loop."""

    def on_batch_end(self, batch, logs=None):
        pass


def fit_three_ways(make_model, make_opt, make_loss, x, y, monkeypatch, **fit_kw):
    """fit by epoch calls, by the per-batch loop (fused steps) and layer by layer (a hook);
    returns per way (history, parameters, optimizer state, batches run by epoch calls)."""
    calls = []
    real = TrainStep.run_batches

    def counting(self, *a, **k):
        res = real(self, *a, **k)
        calls.append(0 if res is None else len(res[0]))
        return res
    monkeypatch.setattr(TrainStep, "run_batches", counting)
    runs = []
    for way in ("epoch", "batch", "layer"):
        m = make_model()
        if way == "layer":
            m.register_forward_hook(lambda *a: None)
        tr = Trainer(m, make_loss(), make_opt(m.parameters()))
        calls.clear()
        pydl.manual_seed(3)
        hist = tr.fit(x, y, verbose=0, callbacks=[_EveryBatch()] if way == "batch" else None, **fit_kw)
        runs.append((hist.history, [p.data.copy() for p in m.parameters()], tr.optimizer.state_dict()["state"],
                     sum(calls)))
    return runs


def assert_runs_equal(runs):
    (h0, p0, s0, _), rest = runs[0], runs[1:]
    for h, p, s, _ in rest:
        assert h.keys() == h0.keys()
        for k in h0:  # losses and accuracies: the same floats (NaN where NaN)
            assert np.array_equal(h[k], h0[k], equal_nan=True), k
        for a, b in zip(p0, p):
            assert np.array_equal(a, b, equal_nan=True)
        for k in s0:
            for key in s0[k]:
                assert np.array_equal(s0[k][key], s[k][key], equal_nan=True), key


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("opt_name", ["sgd-nesterov", "adam", "adam-amsgrad", "adamw"])
@pytest.mark.parametrize("loss_name", ["ce", "ce-soft-sum", "ce-weighted"])
@pytest.mark.parametrize("model", [mlp, resmlp])
def test_epoch_calls_are_bitwise_the_per_batch_loop(monkeypatch, isa, dtype, opt_name, loss_name, model):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((83, 6)).astype(dtype)   # batches of 16 and a last one of 3
    y = rng.integers(0, 5, 83) if LOSSES[loss_name][1] == "index" else rng.random((83, 5)).astype(dtype)
    runs = fit_three_ways(lambda: model(dtype), OPTIMIZERS[opt_name], LOSSES[loss_name][0], x, y, monkeypatch,
                          epochs=3, batch_size=16)
    assert_runs_equal(runs)
    # class indices: every batch but the first two (the first makes the optimizer state, the
    # second the plan) ran in epoch calls; probabilities: accuracy is counted in Python, batch by batch
    assert runs[0][3] == (3 * 6 - 2 if LOSSES[loss_name][1] == "index" else 0)
    assert runs[1][3] == runs[2][3] == 0


@pytest.mark.parametrize("shuffle", [True, False])
def test_epoch_calls_in_chunks_without_metrics_or_shuffling(monkeypatch, shuffle):
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((301, 6)).astype(np.float32), rng.integers(0, 5, 301)  # 151 batches: 3 calls each
    runs = fit_three_ways(mlp, OPTIMIZERS["adam"], nn.CrossEntropyLoss, x, y, monkeypatch,
                          epochs=2, batch_size=2, shuffle=shuffle)
    assert_runs_equal(runs)
    assert runs[0][3] == 2 * 151 - 2
    m = mlp()
    tr = Trainer(m, nn.CrossEntropyLoss(), optim.SGD(m.parameters(), lr=0.1), metrics=[])
    hist = tr.fit(x, y, epochs=2, batch_size=32, verbose=0, shuffle=shuffle)
    assert list(hist.history) == ["loss"] and tr._step_fn().fused


def test_epoch_calls_count_accuracy_as_numpy_ties_and_nans(monkeypatch):
    rng = np.random.default_rng(7)
    x, y = rng.standard_normal((50, 6)).astype(np.float32), rng.integers(0, 5, 50)

    def tied():  # every output equal (lr 0 keeps them so): argmax 0
        m = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 5))
        for p in m.parameters():
            p.data[...] = 0
        return m

    def nan_column():  # output 3 is NaN, then (after the first step) every output: argmax 3, then 0
        m = mlp()
        m[5].weight.data[3, 0] = np.nan
        return m
    for make in (tied, nan_column):
        runs = fit_three_ways(make, lambda p: optim.SGD(p, lr=0.0), nn.CrossEntropyLoss, x, y, monkeypatch,
                              epochs=2, batch_size=8, shuffle=False)
        assert_runs_equal(runs)
        assert runs[0][3] > 0
        assert runs[0][0]["accuracy"][-1] == pytest.approx(float(np.mean(y == 0)))


def test_a_bad_class_index_mid_epoch_stops_the_call_before_it():
    rng = np.random.default_rng(8)
    x, y = rng.standard_normal((64, 6)).astype(np.float32), rng.integers(0, 5, 64)
    y[37] = 5                                       # in batch 4 of 8 (the Trainer checks this before fit)
    bounds = list(range(0, 65, 8))
    (m1, o1), (m2, o2) = [(m, optim.Adam(m.parameters(), lr=1e-2)) for m in (mlp(), mlp())]
    s1, s2 = TrainStep(m1, nn.CrossEntropyLoss(), o1), TrainStep(m2, nn.CrossEntropyLoss(), o2)
    for s in (s1, s2):                              # the first steps make the state, then the plan
        for _ in range(2):
            s(x[:8], y[:8])
    losses, correct = s1.run_batches(x, y, None, bounds, True)
    assert len(losses) == len(correct) == 4
    for b in range(4):
        assert losses[b] == s2(x[bounds[b]:bounds[b + 1]], y[bounds[b]:bounds[b + 1]])
        assert correct[b] == np.count_nonzero(s2.output.argmax(axis=1) == y[bounds[b]:bounds[b + 1]])
    assert_same_state(m1, o1, m2, o2)
    errors = []
    for s in (s1, s2):
        with pytest.raises((ValueError, IndexError)) as err:
            s(x[32:40], y[32:40])
        errors.append(str(err.value))
    assert errors[0] == errors[1] and "5" in errors[0]
    assert s1.run_batches(x, y, None, bounds[4:], True) == ([], [])


def test_the_epoch_call_names_bad_arguments():
    from pydl import _C
    w, b = [np.ones((4, 3), np.float32)], [np.zeros(4, np.float32)]
    plan = _C.MlpStep(w, b, [np.zeros_like(w[0])], [np.zeros(4, np.float32)], ["none"], [0.0], "sgd", [], [0, 0])
    x, y = np.ones((10, 3), np.float32), np.zeros(10, np.int64)
    out, hyper = np.empty((4, 4), np.float32), [(0.1, 0.0, 0.0, 0.0, False, False)]

    def epoch(order=None, bounds=(0, 4, 8, 10), out=out, y=y, nan=False):
        w[0][...], b[0][...] = 1, 0                    # equal outputs: argmax 0
        if nan:
            w[0][2, 1] = np.nan  # output 2 NaN in batch 0 (the first NaN: numpy's argmax), then every one
        return plan.epoch(x, y, order, list(bounds), out, None, 0.0, True, hyper, [], True)
    losses, correct = epoch(order=np.arange(10)[::-1].copy())
    assert len(losses) == 3 and correct == [4, 4, 2]   # (the steps keep class 0 the largest)
    assert epoch(bounds=(8, 10))[0] == [pytest.approx(np.log(4))]
    far = np.arange(10)
    far[9] = 99                                        # a position past the batches run: not read
    assert len(epoch(order=far, bounds=(0, 4, 8))[0]) == 2
    assert epoch(y=np.full(10, 3))[1][0] == 0
    assert epoch(y=np.full(10, 2), nan=True)[1] == [4, 0, 0]
    assert epoch(nan=True)[1] == [0, 4, 2]
    bad = np.zeros(10, np.int64)
    bad[5] = 4
    assert len(epoch(y=bad)[0]) == 1                   # stops before the batch with class 4 of 4
    cases = [
        ({"bounds": (0, 4, 4, 10)}, ValueError, r"bounds: expected batch boundaries 0 <= b_0 < b_1 < \.\.\. <= 10"),
        ({"bounds": (0, 11)}, ValueError, r"bounds: expected"),
        ({"bounds": (0,)}, ValueError, r"bounds: expected"),
        ({"order": np.arange(10.0)}, TypeError, r"order: expected int64 row indices, got float64"),
        ({"order": np.arange(9)}, ValueError, r"order: expected shape \(10,\)"),
        ({"order": np.arange(10) + 1}, ValueError, r"order: expected row indices in \[0, 10\), got 10"),
        ({"out": np.empty((3, 4), np.float32)}, ValueError, r"out: expected shape \(rows >= 4, 4\), got \(3,4\)"),
        ({"out": x[:4, :3]}, ValueError, r"out: expected shape|out: must not share memory"),
        ({"out": b[0].reshape(1, 4), "bounds": (0, 1)}, ValueError, r"out: must not share memory with biases\[0\]"),
    ]
    for change, exc, msg in cases:
        with pytest.raises(exc, match=msg):
            epoch(**change)
