"""pydl.save / pydl.load of nested state: an optimizer's state_dict() resumes bit-identically;
the structure (tuples, int keys, numpy scalars, None, strings) comes back as saved; no pickle."""
import math
import zipfile

import numpy as np
import pytest

import pydl
from pydl import nn, optim


def _model():
    pydl.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))


def _batches(n):
    rng = np.random.default_rng(1)
    return [(rng.standard_normal((16, 5)).astype(np.float32), rng.standard_normal((16, 3)).astype(np.float32))
            for _ in range(n)]


def _train(model, opt, batches):
    loss = nn.MSELoss()
    for x, y in batches:
        opt.zero_grad()
        out = model(x)
        loss(out, y)
        model.backward(loss.backward())
        opt.step()


OPTIMIZERS = [("Adam", dict(lr=1e-2)), ("SGD", dict(lr=0.05, momentum=0.9)),
              ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)),
              ("AdamW", dict(lr=1e-2, amsgrad=True)), ("RMSprop", dict(lr=1e-3, centered=True, momentum=0.5)),
              ("Adagrad", dict(lr=0.1)), ("Adadelta", dict(lr=1.0))]


@pytest.mark.parametrize("name,opts", OPTIMIZERS)
def test_optimizer_checkpoint_resumes_bit_identically(tmp_path, name, opts):
    batches = _batches(12)
    ref_model = _model()
    ref_opt = getattr(optim, name)(ref_model.parameters(), **opts)
    _train(ref_model, ref_opt, batches)  # uninterrupted

    model = _model()
    opt = getattr(optim, name)(model.parameters(), **opts)
    _train(model, opt, batches[:5])
    pydl.save(model, tmp_path / "model.npz")
    pydl.save(opt.state_dict(), tmp_path / "opt.npz")
    del model, opt

    model = _model()  # fresh objects, as a restarted process has
    model[0].weight.data[...] = 0
    model.load_state_dict(pydl.load(tmp_path / "model.npz"))
    opt = getattr(optim, name)(model.parameters(), lr=123.0)  # hyperparameters come from the file
    opt.load_state_dict(pydl.load(tmp_path / "opt.npz"))
    assert opt.param_groups[0]["lr"] == opts["lr"]
    _train(model, opt, batches[5:])
    for (k, a), (_, b) in zip(ref_model.state_dict().items(), model.state_dict().items()):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), k
    ref_state = ref_opt.state_dict()["state"]
    state = opt.state_dict()["state"]
    assert state.keys() == ref_state.keys()
    for i in state:
        for k, v in ref_state[i].items():
            assert type(state[i][k]) is type(v)
            assert np.asarray(v).tobytes() == np.asarray(state[i][k]).tobytes(), (i, k)


def test_optimizer_state_dict_structure_comes_back(tmp_path):
    model = _model()
    opt = optim.Adam([{"params": model[0].parameters()}, {"params": model[2].parameters(), "lr": 0.5}],
                     lr=1e-3, betas=(0.8, 0.99))
    _train(model, opt, _batches(2))
    sd = opt.state_dict()
    pydl.save(sd, tmp_path / "opt.npz")
    back = pydl.load(tmp_path / "opt.npz")
    assert back.keys() == sd.keys()
    assert back["param_groups"] == sd["param_groups"]  # tuples stay tuples, lists lists
    assert isinstance(back["param_groups"][0]["betas"], tuple)
    assert list(back["state"]) == list(sd["state"]) and all(isinstance(k, int) for k in back["state"])
    for i, st in sd["state"].items():
        assert back["state"][i].keys() == st.keys()
        for k, v in st.items():
            assert type(back["state"][i][k]) is type(v)
            np.testing.assert_array_equal(back["state"][i][k], v)
    with zipfile.ZipFile(tmp_path / "opt.npz") as z:  # arrays as .npy members, structure as JSON
        assert "__pydl__.json" in z.namelist()
        assert all(n.endswith(".npy") for n in z.namelist() if n != "__pydl__.json")


def test_nested_values_round_trip_exactly(tmp_path):
    state = {
        "none": None, "true": True, "false": False, "int": -7, "big": 2 ** 100, "float": 0.1,
        "neg0": -0.0, "inf": math.inf, "str": "héllo\0\ud800", "empty_list": [], "empty_tuple": (),
        "empty_dict": {}, "nested": [(1, [2.5, {"a": (None,)}]), {3: "x", -4: {"y": [np.ones(2)]}}],
        "f32": np.float32(0.1), "i64": np.int64(-3), "b": np.bool_(True), "c": np.complex64(1 + 2j),
        "arrays": {"f": np.arange(6.0).reshape(2, 3), "t": np.asfortranarray(np.ones((2, 2), np.float32)),
                   "p": nn.Parameter(np.arange(3.0))},
        "same_array_twice": [np.zeros(1)] * 2,
    }
    pydl.save(state, tmp_path / "n.npz")
    back = pydl.load(tmp_path / "n.npz")
    assert list(back) == list(state)

    def check(a, b, where):
        if isinstance(b, nn.Parameter):
            b = b.data
        assert type(a) is type(b), where
        if isinstance(b, dict):
            assert list(a) == list(b), where
            for k in b:
                check(a[k], b[k], f"{where}[{k!r}]")
        elif isinstance(b, (list, tuple)):
            assert len(a) == len(b), where
            for i, (x, y) in enumerate(zip(a, b)):
                check(x, y, f"{where}[{i}]")
        elif isinstance(b, (np.ndarray, np.generic)):
            assert a.dtype == b.dtype and np.shape(a) == np.shape(b) and np.array_equal(a, b), where
        elif isinstance(b, float):
            assert a == b and math.copysign(1, a) == math.copysign(1, b), where
        else:
            assert a == b, where

    check(back, state, "state")
    pydl.save({"nan": math.nan}, tmp_path / "nan.npz")
    assert math.isnan(pydl.load(tmp_path / "nan.npz")["nan"])


def test_flat_dicts_still_load_as_flat_arrays(tmp_path):
    sd = {"w": nn.Parameter(np.ones(2)), "x": np.array(3, np.int64)}
    pydl.save(sd, tmp_path / "f.npz")
    with zipfile.ZipFile(tmp_path / "f.npz") as z:
        assert z.namelist() == ["w.npy", "x.npy"]  # no manifest: an ordinary .npz
    back = pydl.load(tmp_path / "f.npz")
    assert list(back) == ["w", "x"] and all(isinstance(v, np.ndarray) for v in back.values())


@pytest.mark.parametrize("state,error,match", [
    ({"a": {1.5: np.ones(1)}}, TypeError, "dict keys must be str or int"),
    ({"a": {True: 1}}, TypeError, "dict keys must be str or int"),
    ({"a": [{1, 2}]}, TypeError, r"obj\['a'\]\[0\]: cannot save a set"),
    ({"a": {"b": np.array([{}], dtype=object)}}, TypeError, r"obj\['a'\]\['b'\].*pickle"),
    ({"a": object()}, TypeError, "cannot save a object"),
    ({"a": 1 + 2j}, TypeError, "cannot save a complex"),
    ({1: {"a": 1}}, TypeError, "keys must be str"),
])
def test_unsupported_nested_values(tmp_path, state, error, match):
    path = tmp_path / "x.npz"
    with pytest.raises(error, match=match):
        pydl.save(state, path)
    assert not path.exists()


def test_self_referencing_state_is_refused(tmp_path):
    loop = {"a": []}
    loop["a"].append(loop)
    with pytest.raises(ValueError, match="deeper than"):
        pydl.save(loop, tmp_path / "x.npz")
    assert list(tmp_path.iterdir()) == []
