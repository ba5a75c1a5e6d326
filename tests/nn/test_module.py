"""nn.Module infrastructure: registration, traversal, modes, state_dict, repr, Sequential."""
from collections import OrderedDict

import numpy as np
import pytest

import pydl
from pydl import nn


def mlp(dtype=np.float32):
    pydl.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8, dtype=dtype), nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, 3, dtype=dtype),
                         nn.BatchNorm1d(3, dtype=dtype))


class TwoLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 5)
        self.act = nn.Tanh()
        self.head = nn.Sequential(nn.Linear(5, 2))
        self.scale = nn.Parameter(np.ones(2, np.float32))
        self.register_buffer("count", np.zeros((), np.int64))

    def forward(self, x):
        return self.head(self.act(self.fc(x))) * self.scale.data

    def backward(self, g):
        return self.fc.backward(self.act.backward(self.head.backward(g * self.scale.data)))


def test_named_parameters_dotted_names_as_torch():
    m = mlp()
    assert [n for n, _ in m.named_parameters()] == ["0.weight", "0.bias", "3.weight", "3.bias", "4.weight", "4.bias"]
    assert list(m.state_dict()) == ["0.weight", "0.bias", "3.weight", "3.bias", "4.weight", "4.bias",
                                    "4.running_mean", "4.running_var", "4.num_batches_tracked"]
    t = TwoLayer()
    assert [n for n, _ in t.named_parameters()] == ["scale", "fc.weight", "fc.bias", "head.0.weight", "head.0.bias"]
    assert [n for n, _ in t.named_buffers()] == ["count"]
    assert [n for n, _ in t.named_modules()] == ["", "fc", "act", "head", "head.0"]
    assert len(list(t.children())) == 3 and len(list(t.modules())) == 5
    assert all(isinstance(p, nn.Parameter) for p in t.parameters())


def test_names_match_torch():
    torch = pytest.importorskip("torch")
    tm = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Dropout(0.2), torch.nn.Linear(8, 3),
                             torch.nn.BatchNorm1d(3))
    assert list(mlp().state_dict()) == list(tm.state_dict())
    assert [n for n, _ in mlp().named_parameters()] == [n for n, _ in tm.named_parameters()]


def test_shared_parameter_listed_once():
    lin = nn.Linear(3, 3)
    seq = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(seq.parameters())) == 2


def test_setattr_registration_and_reassignment():
    t = TwoLayer()
    t.fc = nn.Linear(3, 5, bias=False)
    assert [n for n, _ in t.named_parameters()] == ["scale", "fc.weight", "head.0.weight", "head.0.bias"]
    with pytest.raises(TypeError, match="scale"):
        t.scale = np.ones(2)
    t.scale = None
    assert "scale" not in dict(t.named_parameters())
    t.count = np.ones((), np.int64)
    assert t.state_dict()["count"] == 1
    with pytest.raises(TypeError, match="count"):
        t.count = 3
    del t.head
    assert "head.0.weight" not in t.state_dict()


def test_train_eval_propagate():
    m = mlp()
    assert m.training and all(c.training for c in m.modules())
    assert m.eval() is m
    assert not m.training and not any(c.training for c in m.modules())
    m.train()
    assert all(c.training for c in m.modules())
    with pytest.raises(TypeError, match="mode"):
        m.train("no")


def test_zero_grad_sets_none_and_drops_pending_calls():
    m = mlp()
    x = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    m.backward(np.ones_like(m(x)))
    unconsumed = m(x)
    assert all(p.grad is not None for p in m.parameters()) and unconsumed.shape == (6, 3)
    assert all(len(c._pending) == 1 for c in (m, m[0], m[2], m[3], m[4]))  # m[0] ran fused with m[1]
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())
    assert not any(c._pending for c in m.modules())
    m.zero_grad(set_to_none=False)  # grads None stay None
    assert all(p.grad is None for p in m.parameters())


def test_state_dict_copies_and_round_trip():
    a, b = mlp(), mlp()
    pydl.manual_seed(1)
    b = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, 3), nn.BatchNorm1d(3))
    sd = a.state_dict()
    sd["0.weight"][...] = 7  # a copy: the module is untouched
    assert not np.any(a[0].weight.data == 7)
    sd = a.state_dict()
    w_before = b[0].weight.data
    b.load_state_dict(sd)
    assert b[0].weight.data is w_before  # loaded in place (optimizers keep their references)
    for k, v in b.state_dict().items():
        np.testing.assert_array_equal(v, sd[k])
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    a.eval(), b.eval()
    np.testing.assert_array_equal(a(x), b(x))


def test_load_state_dict_errors_name_keys():
    m = mlp()
    sd = m.state_dict()
    w = m[0].weight.data.copy()
    bad = OrderedDict(sd)
    del bad["3.bias"]
    bad["extra.weight"] = np.zeros(3)
    bad["0.weight"] = np.zeros((8, 5), np.float32)
    with pytest.raises(RuntimeError) as e:
        m.load_state_dict(bad)
    msg = str(e.value)
    assert "3.bias" in msg and "extra.weight" in msg and "0.weight" in msg and "(8, 5)" in msg
    assert isinstance(e.value, KeyError) and isinstance(e.value, ValueError)
    np.testing.assert_array_equal(m[0].weight.data, w)  # nothing modified
    sd2 = m.state_dict()
    del sd2["3.bias"]
    sd2["extra"] = np.zeros(1)
    res = m.load_state_dict(sd2, strict=False)
    assert res.missing_keys == ["3.bias"] and res.unexpected_keys == ["extra"]
    sd3 = m.state_dict()
    sd3["0.bias"] = np.zeros(9, np.float32)
    with pytest.raises(ValueError, match="0.bias"):
        m.load_state_dict(sd3, strict=False)
    with pytest.raises(TypeError, match="state_dict"):
        m.load_state_dict([1, 2])


def test_repr_like_torch():
    m = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Sequential(nn.Dropout(0.5), nn.Linear(8, 2, bias=False)))
    assert repr(m) == (
        "Sequential(\n"
        "  (0): Linear(in_features=4, out_features=8, bias=True)\n"
        "  (1): ReLU()\n"
        "  (2): Sequential(\n"
        "    (0): Dropout(p=0.5)\n"
        "    (1): Linear(in_features=8, out_features=2, bias=False)\n"
        "  )\n"
        ")")
    assert repr(nn.LeakyReLU(0.2)) == "LeakyReLU(negative_slope=0.2)"


def test_sequential_container_protocol():
    layers = [nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)]
    s = nn.Sequential(*layers)
    assert len(s) == 3 and s[0] is layers[0] and s[-1] is layers[2]
    assert list(s) == layers
    sub = s[1:]
    assert isinstance(sub, nn.Sequential) and list(sub) == layers[1:]
    s.append(nn.Sigmoid())
    assert len(s) == 4 and isinstance(s[3], nn.Sigmoid)
    s[1] = nn.Tanh()
    assert isinstance(s[1], nn.Tanh)
    del s[1]
    assert len(s) == 3 and [n for n, _ in s.named_children()] == ["0", "1", "2"]
    with pytest.raises(IndexError):
        s[5]
    with pytest.raises(TypeError):
        nn.Sequential(nn.ReLU(), "relu")
    od = nn.Sequential(OrderedDict(fc=nn.Linear(2, 2), act=nn.ReLU()))
    assert [n for n, _ in od.named_parameters()] == ["fc.weight", "fc.bias"]


def test_sequential_modification_rebuilds_plan():
    pydl.manual_seed(0)
    s = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    y1 = s(x)
    assert np.all(y1 >= 0)
    s[1] = nn.Identity()
    y2 = s(x)
    np.testing.assert_allclose(np.maximum(y2, 0), y1, rtol=1e-6)
    assert np.any(y2 < 0)


def test_backward_accumulates_like_torch():
    pydl.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 2), nn.BatchNorm1d(2))
    rng = np.random.default_rng(1)
    x1, x2 = rng.standard_normal((6, 4)), rng.standard_normal((6, 4))
    x1, x2 = x1.astype(np.float32), x2.astype(np.float32)
    g1, g2 = rng.standard_normal((6, 2)).astype(np.float32), rng.standard_normal((6, 2)).astype(np.float32)
    grads = []
    for x, g in ((x1, g1), (x2, g2)):
        m.zero_grad()
        m(x)
        m.backward(g)
        grads.append([p.grad.copy() for p in m.parameters()])
    m.zero_grad()
    m(x1), m.backward(g1)
    m(x2), m.backward(g2)
    for p, a, b in zip(m.parameters(), *grads):
        np.testing.assert_allclose(p.grad, a + b, rtol=1e-5, atol=1e-6)


def test_backward_before_forward_raises():
    for m in (nn.Linear(2, 2), nn.ReLU(), nn.Sequential(nn.Linear(2, 2)), nn.Dropout(0.5), nn.BatchNorm1d(2),
              nn.Softmax(), nn.Flatten(), nn.GaussianNoise(0.1), nn.Residual(nn.Tanh())):
        with pytest.raises(RuntimeError, match="before forward"):
            m.backward(np.zeros((2, 2), np.float32))


def test_user_module_unimplemented():
    class M(nn.Module):
        pass

    with pytest.raises(NotImplementedError):
        M()(np.zeros(1))


def test_parameter_before_init_raises():
    class Bad(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(np.zeros(1))

    with pytest.raises(AttributeError, match="__init__"):
        Bad()


def test_deepcopy_and_pickle_are_independent():
    import copy
    import pickle

    m = mlp()
    x = np.random.default_rng(0).standard_normal((4, 4)).astype(np.float32)
    m.eval()
    y = m(x)
    for c in (copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
        np.testing.assert_array_equal(c(x), y)
        c[0].weight.data[...] = 0
        c[0].bias.data[...] = 0
        assert not np.array_equal(c(x), y)
        np.testing.assert_array_equal(m(x), y)


def test_unpickled_model_trains_like_the_original():
    import pickle

    from pydl import optim

    x = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    y = np.array([0, 1, 2, 0, 1, 2])
    losses = []
    for model, xx, yy in ((mlp(), x, y), (pickle.loads(pickle.dumps(mlp())),) + pickle.loads(pickle.dumps((x, y)))):
        pydl.manual_seed(5)
        opt, lf = optim.Adam(model.parameters(), lr=0.01), nn.CrossEntropyLoss()
        run = []
        for _ in range(3):
            opt.zero_grad()
            run.append(lf(model(xx), yy))
            model.backward(lf.backward(), input_grad=False)
            opt.step()
        losses.append(run)
    assert losses[0] == losses[1]
