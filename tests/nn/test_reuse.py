"""Module reuse (design card §2b): per-call saved state consumed last in, first out, against torch
autograd; pydl.no_grad; grad_out checked against the pending call; flat memory over long loops."""
import gc
import tracemalloc

import numpy as np
import pytest

import pydl
from pydl import nn, optim

DTYPES = [np.float32, np.float64]


def rand(*shape, dtype=np.float64, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def tdtype(torch, dtype):
    return getattr(torch, np.dtype(dtype).name)


def leaf(torch, a):
    return torch.from_numpy(a.copy()).requires_grad_()


def copy_linear(torch, lin, dtype):
    """A torch.nn.Linear holding ``lin``'s weights."""
    t = torch.nn.Linear(lin.in_features, lin.out_features, bias=lin.bias is not None).to(tdtype(torch, dtype))
    t.load_state_dict({k: torch.from_numpy(v) for k, v in lin.state_dict().items()})
    return t


def pending(model):
    return sum(len(m._pending) for m in model.modules())


# ---------------------------------------------------------------- a siamese module
class Siamese(nn.Module):
    """out = head(relu(fc(a)) * relu(fc(b))): fc and relu each called twice per forward."""

    def __init__(self, dtype):
        super().__init__()
        self.fc = nn.Linear(5, 4, dtype=dtype)
        self.act = nn.ReLU()
        self.head = nn.Linear(4, 2, dtype=dtype)

    def forward(self, a, b):
        ha = self.act(self.fc(a))
        hb = self.act(self.fc(b))
        return self._save_for_backward(self.head(ha * hb), ha, hb)

    def backward(self, grad_out):
        ha, hb = self._saved_for_backward(grad_out)
        gp = self.head.backward(grad_out)
        gb = self.fc.backward(self.act.backward(gp * ha))  # branch b ran last: its calls are on top
        ga = self.fc.backward(self.act.backward(gp * hb))
        return ga, gb


@pytest.mark.parametrize("dtype", DTYPES)
def test_siamese_shared_linear_and_relu_match_torch(parity, dtype):
    torch = pytest.importorskip("torch")
    pydl.manual_seed(0)
    m = Siamese(dtype)
    fc, head = copy_linear(torch, m.fc, dtype), copy_linear(torch, m.head, dtype)
    a, b, g = rand(6, 5, dtype=dtype), rand(6, 5, dtype=dtype, seed=1), rand(6, 2, dtype=dtype, seed=2)
    ta, tb = leaf(torch, a), leaf(torch, b)
    ty = head(torch.relu(fc(ta)) * torch.relu(fc(tb)))
    ty.backward(torch.from_numpy(g))
    parity(m(a, b), ty)
    ga, gb = m.backward(g)
    parity(ga, ta.grad)
    parity(gb, tb.grad)
    for name, t in (("fc", fc), ("head", head)):
        parity(getattr(m, name).weight.grad, t.weight.grad, err_msg=name)
        parity(getattr(m, name).bias.grad, t.bias.grad, err_msg=name)
    assert pending(m) == 0


# ---------------------------------------------------------------- a whole model called twice
@pytest.mark.parametrize("dtype", DTYPES)
def test_model_called_twice_then_backward_twice_matches_torch(parity, dtype):
    torch = pytest.importorskip("torch")
    pydl.manual_seed(0)
    lin = nn.Linear(4, 4, dtype=dtype)
    m = nn.Sequential(nn.Linear(3, 4, dtype=dtype), nn.Tanh(), lin, nn.ReLU(), lin, nn.BatchNorm1d(4, dtype=dtype),
                      nn.Dropout(p=0.0), nn.Linear(4, 2, dtype=dtype))
    assert m.plan() == [("0", "1"), ("2", "3"), ("4",), ("5",), ("6",), ("7",)]
    tdt = tdtype(torch, dtype)
    tl = copy_linear(torch, lin, dtype)
    t = torch.nn.Sequential(copy_linear(torch, m[0], dtype), torch.nn.Tanh(), tl, torch.nn.ReLU(), tl,
                            torch.nn.BatchNorm1d(4).to(tdt), torch.nn.Dropout(0.0), copy_linear(torch, m[7], dtype))
    x1, x2 = rand(7, 3, dtype=dtype), rand(7, 3, dtype=dtype, seed=1)
    g1, g2 = rand(7, 2, dtype=dtype, seed=2), rand(7, 2, dtype=dtype, seed=3)
    tx1, tx2 = leaf(torch, x1), leaf(torch, x2)
    ty1, ty2 = t(tx1), t(tx2)
    (ty1 * torch.from_numpy(g1)).sum().add((ty2 * torch.from_numpy(g2)).sum()).backward()
    y1, y2 = m(x1), m(x2)
    parity(y1, ty1)
    parity(y2, ty2)
    parity(m.backward(g2), tx2.grad)  # the latest call first
    parity(m.backward(g1), tx1.grad)
    tp = dict(t.named_parameters())
    for name, p in m.named_parameters():
        parity(p.grad, tp[name].grad, err_msg=name)
    parity(m[5].running_mean, t[5].running_mean)
    parity(m[5].running_var, t[5].running_var)
    assert pending(m) == 0
    with pytest.raises(RuntimeError, match="no pending"):
        m.backward(g1)


# ---------------------------------------------------------------- an Elman RNN cell unrolled in time
class ElmanCell(nn.Module):
    """h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh), as torch.nn.RNNCell."""

    def __init__(self, n_in, n_hidden, dtype):
        super().__init__()
        self.ih = nn.Linear(n_in, n_hidden, dtype=dtype)
        self.hh = nn.Linear(n_hidden, n_hidden, dtype=dtype)
        self.act = nn.Tanh()

    def forward(self, x, h):
        return self.act(self.ih(x) + self.hh(h))

    def backward(self, grad_out):
        """(dL/dx, dL/dh) of the latest pending step."""
        gz = self.act.backward(grad_out)
        return self.ih.backward(gz), self.hh.backward(gz)


def unroll(cell, xs, h):
    hs = []
    for x in xs:
        h = cell(x, h)
        hs.append(h)
    return hs


def backward_through_time(cell, grads):
    """grads[t] = dL/dh_t from the loss at step t; returns (dL/dx_t for each t, dL/dh_0)."""
    gh = np.zeros_like(grads[-1])
    gxs = []
    for g in reversed(grads):
        gx, gh = cell.backward(g + gh)
        gxs.append(gx)
    return gxs[::-1], gh


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss_on", ["every_step", "last_step"])
def test_rnn_cell_backward_through_time_matches_torch(parity, dtype, loss_on):
    torch = pytest.importorskip("torch")
    T, N, n_in, n_h = 6, 3, 4, 5
    pydl.manual_seed(0)
    cell = ElmanCell(n_in, n_h, dtype)
    tc = torch.nn.RNNCell(n_in, n_h, nonlinearity="tanh").to(tdtype(torch, dtype))
    with torch.no_grad():
        for tname, (lin, pname) in {"weight_ih": (cell.ih, "weight"), "bias_ih": (cell.ih, "bias"),
                                    "weight_hh": (cell.hh, "weight"), "bias_hh": (cell.hh, "bias")}.items():
            getattr(tc, tname).copy_(torch.from_numpy(getattr(lin, pname).data))
    xs = [rand(N, n_in, dtype=dtype, seed=t) for t in range(T)]
    h0 = rand(N, n_h, dtype=dtype, seed=99)
    grads = [rand(N, n_h, dtype=dtype, seed=10 + t) * (loss_on == "every_step" or t == T - 1) for t in range(T)]
    txs, th = [leaf(torch, x) for x in xs], leaf(torch, h0)
    th0, loss = th, 0
    for tx, g in zip(txs, grads):
        th = tc(tx, th)
        loss = loss + (th * torch.from_numpy(g)).sum()
    loss.backward()

    hs = unroll(cell, xs, h0)
    parity(hs[-1], th)
    gxs, gh0 = backward_through_time(cell, grads)
    for t in range(T):
        parity(gxs[t], txs[t].grad, err_msg=f"dx_{t}")
    parity(gh0, th0.grad)
    for tname, p in (("weight_ih", cell.ih.weight), ("bias_ih", cell.ih.bias), ("weight_hh", cell.hh.weight),
                     ("bias_hh", cell.hh.bias)):
        parity(p.grad, getattr(tc, tname).grad, err_msg=tname)
    assert pending(cell) == 0


# ---------------------------------------------------------------- central differences (float64)
class Unrolled(nn.Module):
    """x (T, N, n_in) -> the hidden states (T, N, n_h) of an ElmanCell from h_0 = 0."""

    def __init__(self, cell):
        super().__init__()
        self.cell = cell

    def forward(self, x):
        hs = unroll(self.cell, list(x), np.zeros((x.shape[1], self.cell.hh.in_features)))
        return self._save_for_backward(np.stack(hs))

    def backward(self, grad_out):
        self._saved_for_backward(grad_out)
        gxs, _ = backward_through_time(self.cell, list(grad_out))
        return np.stack(gxs)


def test_reused_module_graphs_gradcheck(check_module_grads):
    pydl.manual_seed(1)
    lin = nn.Linear(4, 4, dtype=np.float64)
    check_module_grads(nn.Sequential(lin, nn.Tanh(), lin, nn.Sigmoid(), nn.Residual(lin), lin), rand(3, 4))
    check_module_grads(Unrolled(ElmanCell(3, 4, np.float64)), rand(5, 2, 3))


# ---------------------------------------------------------------- explicit fusion
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act, module", [("relu", nn.ReLU), ("sigmoid", nn.Sigmoid), ("tanh", nn.Tanh),
                                         ("leaky_relu", lambda: nn.LeakyReLU(0.2))])
def test_linear_activation_equals_linear_then_activation(dtype, act, module):
    pydl.manual_seed(0)
    fused = nn.Linear(6, 5, dtype=dtype, activation=act, negative_slope=0.2)
    pair = nn.Sequential(nn.Linear(6, 5, dtype=dtype), module())
    pair[0].load_state_dict(fused.state_dict())
    x, g = rand(4, 6, dtype=dtype), rand(4, 5, dtype=dtype, seed=1)
    np.testing.assert_array_equal(fused(x), pair(x))
    np.testing.assert_array_equal(fused.backward(g), pair.backward(g))
    for p, q in zip(fused.parameters(), pair.parameters()):
        np.testing.assert_array_equal(p.grad, q.grad)
    assert "activation=" in repr(fused)


def test_linear_activation_must_be_fusable():
    for bad in ("gelu", "softmax", 3):
        with pytest.raises(ValueError, match="activation"):
            nn.Linear(2, 3, activation=bad)
    with pytest.raises(ValueError, match="negative_slope"):
        nn.Linear(2, 3, activation="leaky_relu", negative_slope=-0.1)
    assert nn.Linear(2, 3, activation="none").activation is None


def test_overridden_passes_and_hooks_are_not_fused():
    class MyLinear(nn.Linear):
        def forward(self, x):
            return super().forward(x) * 2

        def backward(self, grad_out, input_grad=True):
            return super().backward(grad_out * 2, input_grad)

    class MyReLU(nn.ReLU):
        def backward(self, grad_out):
            return super().backward(grad_out)

    assert nn.Sequential(MyLinear(2, 3), nn.ReLU()).plan() == [("0",), ("1",)]
    assert nn.Sequential(nn.Linear(2, 3), MyReLU()).plan() == [("0",), ("1",)]
    assert nn.Sequential(nn.Linear(2, 3, activation="tanh"), nn.ReLU()).plan() == [("0",), ("1",)]
    s = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), MyLinear(3, 3), nn.ReLU())
    x = rand(4, 2, dtype=np.float32)
    y = s(x)
    np.testing.assert_array_equal(y, np.maximum(s[2].forward(np.maximum(s[0].forward(x), 0)), 0))
    s.zero_grad()
    seen = []
    handle = s[1].register_forward_hook(lambda mod, args, out: seen.append(out.shape))
    assert s.plan() == [("0",), ("1",), ("2",), ("3",)]  # the hooked ReLU runs alone, so its hook sees it
    np.testing.assert_array_equal(s(x), y)
    assert seen == [(4, 3)]
    handle.remove()
    assert s.plan() == [("0", "1"), ("2",), ("3",)]


def test_forward_hook_can_replace_the_output():
    lin = nn.Linear(2, 2)
    with lin.register_forward_hook(lambda mod, args, out: out * 0):
        assert not lin(np.ones((1, 2), np.float32)).any()
    assert lin(np.ones((1, 2), np.float32)).any()
    with pytest.raises(TypeError, match="hook"):
        lin.register_forward_hook(3)


def test_linear_backward_refuses_a_fused_call_and_keeps_it():
    s = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    y = s(np.ones((1, 2), np.float32))
    with pytest.raises(RuntimeError, match="fused"):
        s[0].backward(np.ones_like(y))
    s.backward(np.ones_like(y))  # the Sequential still consumes it


# ---------------------------------------------------------------- no_grad and grad_out checks
LAYERS = {
    "Linear": lambda: nn.Linear(3, 3), "ReLU": nn.ReLU, "Sigmoid": nn.Sigmoid, "Softmax": nn.Softmax,
    "Dropout": lambda: nn.Dropout(0.5), "Dropout0": lambda: nn.Dropout(0.0), "Noise": lambda: nn.GaussianNoise(0.1),
    "BatchNorm1d": lambda: nn.BatchNorm1d(3), "Flatten": nn.Flatten, "Identity": nn.Identity,
    "Residual": lambda: nn.Residual(nn.Tanh()), "Sequential": lambda: nn.Sequential(nn.Linear(3, 3), nn.ReLU()),
    "LinearTanh": lambda: nn.Linear(3, 3, activation="tanh"),
}


@pytest.mark.parametrize("name", list(LAYERS))
@pytest.mark.parametrize("training", [True, False])
def test_no_grad_saves_nothing(name, training):
    m = LAYERS[name]().train(training)
    x = rand(4, 3, dtype=np.float32)
    with pydl.no_grad():
        y = m(x)
    assert pending(m) == 0
    with pytest.raises(RuntimeError, match=r"before forward.*no_grad"):
        m.backward(np.ones_like(y))
    y = m(x)
    assert pending(m) >= 1
    m.backward(np.ones_like(y))
    assert pending(m) == 0


@pytest.mark.parametrize("name", list(LAYERS))
def test_grad_out_is_checked_against_the_pending_call(name):
    m = LAYERS[name]()
    y1 = m(rand(4, 3, dtype=np.float32))
    y2 = m(rand(6, 3, dtype=np.float32, seed=1))
    with pytest.raises(ValueError, match=r"grad_out.*\(6, 3\).*\(4, 3\)"):
        m.backward(np.ones_like(y1))  # the latest call is y2's
    with pytest.raises(TypeError, match=r"grad_out.*float32.*float64"):
        m.backward(np.ones(y2.shape))
    with pytest.raises(TypeError, match="grad_out"):
        m.backward(y2.tolist())
    m.backward(np.ones_like(y2))  # a rejected grad_out left the record in place
    m.backward(np.ones_like(y1))
    assert pending(m) == 0


def test_zero_grad_drops_pending_calls():
    m = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    x = rand(5, 3, dtype=np.float32)
    ys = [m(x) for _ in range(3)]
    assert pending(m) == 3  # 3 calls of a dense chain: one record each, on the Sequential
    m.register_forward_hook(lambda *a: None)  # now step by step
    ys += [m(x) for _ in range(3)]
    assert pending(m) == 3 + 9  # Sequential + 2 steps, 3 calls (Linear+ReLU fused: one record)
    m.zero_grad()
    assert pending(m) == 0
    with pytest.raises(RuntimeError, match="zero_grad"):
        m.backward(np.ones_like(ys[0]))


def test_failed_call_leaves_no_records():
    m = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(5, 2))
    with pytest.raises(ValueError, match=r"input.*\(\*, 5\).*Linear\(5, 2\)"):
        m(rand(2, 3, dtype=np.float32))
    assert pending(m) == 0


# ---------------------------------------------------------------- flat memory
def mlp():
    pydl.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 32), nn.BatchNorm1d(32), nn.Tanh(),
                         nn.Dropout(0.2), nn.Linear(32, 3))


def growth(step, warmup=200, steps=1000):
    """Bytes traced by tracemalloc after ``steps`` calls of ``step`` beyond those after ``warmup``."""
    for _ in range(warmup):
        step()
    gc.collect()
    tracemalloc.start()
    try:
        for _ in range(warmup):
            step()
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(steps):
            step()
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def test_memory_flat_in_a_pytorch_style_training_loop():
    model, loss_fn = mlp(), nn.CrossEntropyLoss()
    opt = optim.Adam(model.parameters())
    x, y = rand(16, 8, dtype=np.float32), np.arange(16) % 3

    def step():
        opt.zero_grad()
        loss_fn(model(x), y)
        model.backward(loss_fn.backward(), input_grad=False)
        opt.step()
        assert pending(model) == 0

    assert growth(step) < 32 * 1024


def test_memory_flat_in_a_forward_only_loop():
    model = mlp()  # training mode, no backward, no zero_grad, outputs discarded
    x = rand(16, 8, dtype=np.float32)
    most = []

    def step():
        model(x)
        most.append(max(len(m._pending) for m in model.modules()))

    assert growth(step) < 32 * 1024
    assert max(most) <= 8  # pruned once a stack holds 8 records whose outputs are gone


def test_memory_flat_with_metric_calls_and_zero_grad():
    model, loss_fn = mlp(), nn.CrossEntropyLoss()
    opt = optim.SGD(model.parameters(), lr=0.01)
    x, y = rand(16, 8, dtype=np.float32), np.arange(16) % 3

    def step():
        model.zero_grad()
        loss_fn(model(x), y)
        model.backward(loss_fn.backward())
        opt.step()
        float(np.mean(model(x).argmax(1) == y))  # an extra forward for a metric, never consumed

    assert growth(step) < 32 * 1024


def test_memory_flat_unrolling_a_cell_forward_only():
    cell = ElmanCell(3, 8, np.float32)
    xs = [rand(4, 3, dtype=np.float32, seed=t) for t in range(10)]
    h0 = np.zeros((4, 8), np.float32)
    assert growth(lambda: unroll(cell, xs, h0), warmup=50, steps=500) < 32 * 1024


def test_live_outputs_keep_their_records():
    """Pruning drops only calls whose output is gone: 100 kept calls (pruning runs several times
    meanwhile) all backpropagate, after the discarded calls made before them were dropped."""
    pydl.manual_seed(0)
    lin = nn.Linear(3, 2, dtype=np.float64)
    for i in range(50):
        lin(rand(2, 3, seed=1000 + i))  # discarded
    xs = [rand(2, 3, seed=i) for i in range(100)]
    ys = [lin(x) for x in xs]
    g = np.ones((2, 2))
    for x, y in zip(reversed(xs), reversed(ys)):
        np.testing.assert_array_equal(lin.backward(g), g @ lin.weight.data)
    np.testing.assert_allclose(lin.weight.grad, sum(g.T @ x for x in xs), rtol=1e-12)
    assert not lin._pending
