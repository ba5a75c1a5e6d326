"""ModuleList, ModuleDict, Module.to / float / double, named_modules with shared modules: PyTorch semantics."""
import numpy as np
import pytest

import pydl
from pydl import nn, optim


def rand(*shape, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def Stack(lib):
    """A module of ``lib`` (pydl.nn or torch.nn): Linear layers in a ModuleList, heads in a ModuleDict."""

    class Stack(lib.Module):
        def __init__(self):
            super().__init__()
            self.layers = lib.ModuleList([lib.Linear(3, 4), lib.Linear(4, 4)])
            self.layers.append(lib.Linear(4, 2))
            self.heads = lib.ModuleDict({"cls": lib.Linear(2, 3), "reg": lib.Linear(2, 1)})

    return Stack()


def test_state_dict_names_as_torch():
    torch = pytest.importorskip("torch")
    names = list(Stack(nn).state_dict())
    assert names[:2] == ["layers.0.weight", "layers.0.bias"]
    assert names == list(Stack(torch.nn).state_dict())
    assert [n for n, _ in Stack(nn).named_modules()] == [n for n, _ in Stack(torch.nn).named_modules()]


def test_module_list_protocol():
    a, b, c, d = nn.Linear(1, 1), nn.ReLU(), nn.Tanh(), nn.Sigmoid()
    ml = nn.ModuleList([a, b])
    assert len(ml) == 2 and ml[0] is a and ml[-1] is b and list(ml) == [a, b]
    assert ml.append(c) is ml and ml[2] is c
    ml.extend([d])
    ml += [nn.Identity()]
    assert len(ml) == 5 and isinstance(ml[4], nn.Identity)
    sub = ml[1:3]
    assert isinstance(sub, nn.ModuleList) and list(sub) == [b, c]
    ml.insert(0, d)
    assert list(ml)[:3] == [d, a, b] and [n for n, _ in ml.named_children()] == [str(i) for i in range(6)]
    del ml[0]
    assert list(ml)[:2] == [a, b] and [n for n, _ in ml.named_children()] == [str(i) for i in range(5)]
    ml[1] = c
    assert ml[1] is c
    both = nn.ModuleList([a]) + nn.ModuleList([b])
    assert isinstance(both, nn.ModuleList) and list(both) == [a, b]
    assert [n for n, _ in nn.ModuleList([a, nn.Linear(2, 2)]).named_parameters()] == ["0.weight", "0.bias",
                                                                                     "1.weight", "1.bias"]
    with pytest.raises(IndexError):
        ml[9]
    with pytest.raises(TypeError, match="modules"):
        ml.extend(["relu"])
    with pytest.raises(TypeError, match="module"):
        ml.append(3)
    with pytest.raises(TypeError, match="modules"):
        nn.ModuleList(5)
    with pytest.raises(NotImplementedError):
        ml(np.zeros(1))


def test_module_list_matches_torch_list_semantics():
    torch = pytest.importorskip("torch")
    ours, theirs = nn.ModuleList(), torch.nn.ModuleList()
    for lib, ml in ((nn, ours), (torch.nn, theirs)):
        ml.extend([lib.ReLU(), lib.Tanh(), lib.Sigmoid()])
        ml.insert(1, lib.Identity())
        ml.insert(3, lib.Linear(1, 1))
        del ml[0]
        ml += [lib.ReLU()]
    assert [type(m).__name__ for m in ours] == [type(m).__name__ for m in theirs]
    assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()]


def test_module_dict_protocol():
    a, b, c = nn.Linear(2, 2), nn.ReLU(), nn.Tanh()
    md = nn.ModuleDict({"a": a})
    md["b"] = b
    md.update([("c", c)])
    assert len(md) == 3 and "b" in md and "z" not in md
    assert list(md) == list(md.keys()) == ["a", "b", "c"]
    assert list(md.values()) == [a, b, c] and list(md.items())[1] == ("b", b)
    assert md.pop("b") is b and list(md) == ["a", "c"]
    md.update({"a": nn.Sigmoid()})  # replaced in place
    assert list(md) == ["a", "c"] and isinstance(md["a"], nn.Sigmoid)
    del md["c"]
    assert list(md) == ["a"]
    md.clear()
    assert len(md) == 0
    with pytest.raises(KeyError):
        md["missing"]
    with pytest.raises(KeyError):
        md["x.y"] = nn.ReLU()
    with pytest.raises(KeyError, match="keys"):
        md["keys"] = nn.ReLU()  # an attribute of the class, as torch refuses
    with pytest.raises(TypeError, match="name"):
        md[3] = nn.ReLU()
    with pytest.raises(TypeError, match="module"):
        md["a"] = "relu"
    with pytest.raises(ValueError, match="pair"):
        md.update([("a", nn.ReLU(), 1)])
    with pytest.raises(TypeError, match="modules"):
        md.update(5)


def test_module_dict_matches_torch_update_order():
    torch = pytest.importorskip("torch")
    ours, theirs = nn.ModuleDict(), torch.nn.ModuleDict()
    for lib, md in ((nn, ours), (torch.nn, theirs)):
        md.update({"x": lib.ReLU(), "y": lib.Tanh()})
        md.update([("z", lib.Sigmoid()), ("x", lib.Identity())])
        md.pop("y")
    assert list(ours.keys()) == list(theirs.keys())
    assert [type(m).__name__ for m in ours.values()] == [type(m).__name__ for m in theirs.values()]


@pytest.mark.parametrize("method, dtype", [("double", np.float64), ("float", np.float32)])
def test_to_float_double_keep_parameters_and_cast_grads(method, dtype):
    other = np.float32 if dtype == np.float64 else np.float64
    pydl.manual_seed(0)
    m = nn.Sequential(nn.Linear(3, 4, dtype=other), nn.BatchNorm1d(4, dtype=other), nn.ReLU(),
                      nn.Linear(4, 2, dtype=other))
    x = rand(5, 3, dtype=other)
    opt = optim.Adam(m.parameters(), lr=0.1)
    m.backward(np.ones_like(m(x)))
    params = list(m.parameters())
    before = [p.data.astype(np.float64) for p in params]
    assert getattr(m, method)() is m
    assert list(m.parameters()) == params  # the same Parameter objects
    for p, b in zip(params, before):
        assert p.dtype == dtype and p.grad.dtype == dtype
        np.testing.assert_allclose(p.data, b, rtol=1e-6)
    bn = m[1]
    assert bn.running_mean.dtype == dtype and bn.running_var.dtype == dtype
    assert bn.num_batches_tracked.dtype == np.int64 and bn.dtype == dtype
    assert all(not mod._pending for mod in m.modules())  # state of the old dtype dropped
    opt.step()  # an optimizer built before the cast updates the cast parameters
    assert all(p.dtype == dtype and not np.array_equal(p.data, b) for p, b in zip(params, before))
    y = m(x.astype(dtype))
    assert y.dtype == dtype
    m.backward(np.ones_like(y))
    with pytest.raises(TypeError, match="input"):
        m(x.astype(other))
    with pytest.raises(TypeError, match="dtype"):
        m.to(np.int32)
    with pytest.raises(TypeError, match="dtype"):
        m.to("cuda")


def test_to_matches_torch_grad_casting():
    torch = pytest.importorskip("torch")
    t = torch.nn.Linear(2, 2)
    t(torch.ones(1, 2)).sum().backward()
    t.double()
    pydl.manual_seed(0)
    m = nn.Linear(2, 2)
    m.backward(np.ones_like(m(np.ones((1, 2), np.float32))))
    m.double()
    assert str(t.weight.grad.dtype) == "torch." + str(m.weight.grad.dtype)


def test_named_modules_lists_a_shared_module_once_as_torch():
    torch = pytest.importorskip("torch")
    lin, tlin = nn.Linear(2, 2), torch.nn.Linear(2, 2)
    ours = nn.Sequential(lin, nn.ReLU(), lin)
    theirs = torch.nn.Sequential(tlin, torch.nn.ReLU(), tlin)
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()] == ["", "0", "1"]
    assert list(ours.state_dict()) == list(theirs.state_dict())  # state_dict lists it under each name
    assert [n for n, _ in ours.named_modules(remove_duplicate=False)] == ["", "0", "1", "2"]
