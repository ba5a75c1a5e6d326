"""Losses: torch parity for every option, finite-difference gradients (float64), bad input."""
import numpy as np
import pytest

from pydl import nn
from pydl.testing import numerical_grad

DTYPES = [np.float32, np.float64]


def rand(*shape, dtype=np.float64, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def labels(n, c, seed=0):
    return np.random.default_rng(seed).integers(0, c, n)


def probs(n, c, seed=0):
    p = np.random.default_rng(seed).random((n, c))
    return p / p.sum(1, keepdims=True)


def check_grad(loss_fn, x, target):
    loss_fn(x, target)
    g = loss_fn.backward().copy()
    np.testing.assert_allclose(g, numerical_grad(lambda: loss_fn(x, target), x), rtol=1e-6, atol=1e-8)


def torch_call(torch, cls, x, target, kw):
    """torch.nn.<cls>(**kw) on a leaf copy of x: (its output, the leaf); array kwargs become tensors."""
    tkw = {k: (torch.from_numpy(v) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
    tx = torch.from_numpy(x.copy()).requires_grad_()
    return getattr(torch.nn, cls)(**tkw)(tx, torch.from_numpy(target)), tx


def torch_loss(torch, cls, x, target, **kw):
    tl, tx = torch_call(torch, cls, x, target, kw)
    tl.backward()
    return tl, tx.grad


def case_id(cases, skip=()):
    return [f"{c}-{'-'.join(f'{k}={v}' for k, v in kw.items() if k not in skip)}-{t}" for c, kw, t in cases]


def case_list():
    """(loss class, kwargs, target kind) for every option."""
    cases = []
    for red in ("mean", "sum"):
        cases += [("MSELoss", {"reduction": red}, "real"), ("L1Loss", {"reduction": red}, "real")]
        for ls in (0.0, 0.1):
            for w in (False, True):
                for tk in ("index", "prob"):
                    cases.append(("CrossEntropyLoss", {"reduction": red, "label_smoothing": ls, "weight": w}, tk))
        for w in (False, True):
            cases.append(("NLLLoss", {"reduction": red, "weight": w}, "index"))
        for pw in (False, True):
            for w in (False, True):
                cases.append(("BCEWithLogitsLoss", {"reduction": red, "pos_weight": pw, "weight": w}, "binary"))
    return cases


def make_case(cls, kw, tk, dtype, N=6, C=5):
    x = rand(N, C, dtype=dtype) * 3
    if cls == "NLLLoss":
        x = x - np.log(np.exp(x.astype(np.float64)).sum(1, keepdims=True)).astype(dtype)
    target = {"real": lambda: rand(N, C, dtype=dtype, seed=1), "index": lambda: labels(N, C),
              "prob": lambda: probs(N, C).astype(dtype),
              "binary": lambda: (np.random.default_rng(1).random((N, C)) > 0.5).astype(dtype)}[tk]()
    kw = dict(kw)
    if kw.get("weight"):
        kw["weight"] = (np.random.default_rng(2).random(C) + 0.5).astype(dtype)
        if cls == "BCEWithLogitsLoss":
            kw["weight"] = (np.random.default_rng(2).random((N, C)) + 0.5).astype(dtype)
    elif "weight" in kw:
        kw["weight"] = None
    if kw.get("pos_weight"):
        kw["pos_weight"] = (np.random.default_rng(3).random(C) * 3).astype(dtype)
    elif "pos_weight" in kw:
        kw["pos_weight"] = None
    return x, target, kw


CASES = case_list()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cls,kw,tk", CASES, ids=case_id(CASES))
def test_loss_matches_torch(parity, dtype, cls, kw, tk):
    torch = pytest.importorskip("torch")
    x, target, kw = make_case(cls, kw, tk, dtype)
    fn = getattr(nn, cls)(**kw)
    loss = fn(x, target)
    assert isinstance(loss, float)
    tl, tg = torch_loss(torch, cls, x, target, **kw)
    parity(np.array(loss, dtype), tl)
    g = fn.backward()
    assert g.dtype == dtype and g.shape == x.shape
    parity(g, tg)


@pytest.mark.parametrize("cls,kw,tk", CASES[::3])
def test_loss_gradcheck(cls, kw, tk):
    x, target, kw = make_case(cls, kw, tk, np.float64)
    check_grad(getattr(nn, cls)(**kw), x, target)


def test_cross_entropy_int32_labels_and_noncontiguous_logits():
    x = rand(8, 6)[::2]
    t = labels(4, 6).astype(np.int32)
    a = nn.CrossEntropyLoss()
    b = nn.CrossEntropyLoss()
    assert a(x, t) == pytest.approx(b(np.ascontiguousarray(x), t.astype(np.int64)), rel=1e-12)
    z = x - x.max(1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    assert a(x, t) == pytest.approx(-logp[np.arange(4), t].mean(), rel=1e-12)


def test_loss_bad_inputs():
    ce = nn.CrossEntropyLoss()
    x = rand(4, 3)
    with pytest.raises(ValueError, match=r"class index 3.*\[0, 3\)"):
        ce(x, np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="class index -1"):
        ce(x, np.array([0, -1, 2, 1]))
    with pytest.raises(ValueError, match=r"target.*\(4,\)"):
        ce(x, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"target.*\(4, 3\)"):
        ce(x, np.ones((4, 2)))
    with pytest.raises(ValueError, match="input"):
        ce(rand(4), np.array([0]))
    with pytest.raises(TypeError, match="input"):
        ce(x.astype(np.int64), np.array([0, 1, 2, 0]))
    with pytest.raises(ValueError, match="weight"):
        nn.CrossEntropyLoss(weight=np.ones(2))(x, np.array([0, 1, 2, 0]))
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss(reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing"):
        nn.CrossEntropyLoss(label_smoothing=1.5)
    with pytest.raises(ValueError, match=r"target.*\(4, 3\)"):
        nn.MSELoss()(x, rand(3, 4))
    with pytest.raises(TypeError, match="target"):
        nn.L1Loss()(x, "abc")
    with pytest.raises(ValueError, match="class index 5"):
        nn.NLLLoss()(x, np.array([0, 5, 1, 1]))
    with pytest.raises(TypeError, match="target"):
        nn.NLLLoss()(x, np.zeros(4))
    with pytest.raises(ValueError, match="pos_weight"):
        nn.BCEWithLogitsLoss(pos_weight=np.ones(5))(x, np.ones((4, 3)))
    with pytest.raises(RuntimeError, match="before"):
        nn.MSELoss().backward()


def test_bce_stable_for_large_logits():
    x = np.array([[-1000.0, 1000.0, 0.0]])
    y = np.array([[1.0, 0.0, 1.0]])
    fn = nn.BCEWithLogitsLoss(reduction="sum")
    assert fn(x, y) == pytest.approx(2000 + np.log(2))
    np.testing.assert_allclose(fn.backward(), [[-1.0, 1.0, -0.5]])


def test_cross_entropy_noncontiguous_int64_target():
    x = rand(4, 6)
    t = labels(8, 6)[::2]
    assert not t.flags.c_contiguous
    assert nn.CrossEntropyLoss()(x, t) == pytest.approx(nn.CrossEntropyLoss()(x, t.copy()), rel=1e-15)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_accepts_unpickled_arrays(dtype):
    import pickle

    x, t, p = rand(5, 4, dtype=dtype), labels(5, 4), probs(5, 4).astype(dtype)
    w = np.linspace(0.5, 2, 4).astype(dtype)
    ux, ut, up, uw = pickle.loads(pickle.dumps((x, t, p, w)))
    assert ux.dtype is not np.dtype(dtype)  # distinct dtype objects, as from joblib workers
    for tt, utt in ((t, ut), (p, up)):
        a = nn.CrossEntropyLoss(weight=w)(x, tt)
        fn = nn.CrossEntropyLoss(weight=uw)
        assert fn(ux, utt) == a
        assert fn.backward().dtype == dtype


@pytest.mark.parametrize("cls, kinds, classification", [
    (nn.MSELoss, ("regression",), False), (nn.L1Loss, ("regression",), False),
    (nn.CrossEntropyLoss, ("class_index", "probabilities"), True), (nn.NLLLoss, ("class_index",), True),
    (nn.BCEWithLogitsLoss, ("binary",), True)])
def test_losses_declare_their_targets(cls, kinds, classification):
    assert cls.target_kinds == kinds and cls().target_kinds == kinds
    assert cls.classification is classification


NONE_CASES = [c for c in CASES if c[1]["reduction"] == "sum"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cls,kw,tk", NONE_CASES, ids=case_id(NONE_CASES, skip=("reduction",)))
def test_reduction_none_matches_torch(parity, dtype, cls, kw, tk):
    """reduction="none": the unreduced losses, and backward(grad) with an upstream gradient."""
    torch = pytest.importorskip("torch")
    x, target, kw = make_case(cls, kw, tk, dtype)
    kw["reduction"] = "none"
    fn = getattr(nn, cls)(**kw)
    losses = fn(x, target)
    tl, tx = torch_call(torch, cls, x, target, kw)
    assert isinstance(losses, np.ndarray) and losses.dtype == dtype and losses.shape == tuple(tl.shape)
    parity(losses, tl.detach())
    up = (np.random.default_rng(7).random(losses.shape) + 0.5).astype(dtype)
    tl.backward(torch.from_numpy(up))
    parity(fn.backward(up), tx.grad)
    parity(fn(x, target), tl.detach())
    ones = fn.backward()                          # None: the gradient of the sum
    tl, tx = torch_call(torch, cls, x, target, kw)
    tl.sum().backward()
    parity(ones, tx.grad)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("cls,kw", [("CrossEntropyLoss", {}), ("CrossEntropyLoss", {"label_smoothing": 0.2}),
                                    ("CrossEntropyLoss", {"weight": True}), ("NLLLoss", {}),
                                    ("NLLLoss", {"weight": True})])
@pytest.mark.parametrize("ignore_index", [-100, 2])
def test_ignore_index_matches_torch(parity, dtype, reduction, cls, kw, ignore_index):
    torch = pytest.importorskip("torch")
    N, C = 7, 4
    x, _, _ = make_case(cls, {}, "index", dtype, N=N, C=C)
    t = labels(N, C, seed=3)
    t[[1, 4]] = ignore_index
    kw = dict(kw, reduction=reduction, ignore_index=ignore_index)
    if kw.pop("weight", False):
        kw["weight"] = np.linspace(0.5, 2.0, C).astype(dtype)
    fn = getattr(nn, cls)(**kw)
    out = fn(x, t)
    g = fn.backward()
    tl, tx = torch_call(torch, cls, x, t, kw)
    tl.sum().backward()
    parity(np.asarray(out, dtype), tl.detach())
    parity(g, tx.grad)
    assert not g[[1, 4]].any()


def test_ignore_index_every_sample_ignored():
    x = rand(3, 4)
    t = np.full(3, -100)
    fn = nn.CrossEntropyLoss()
    assert np.isnan(fn(x, t)) and not fn.backward().any()
    assert nn.CrossEntropyLoss(reduction="sum")(x, t) == 0.0
    np.testing.assert_array_equal(nn.CrossEntropyLoss(reduction="none")(x, t), np.zeros(3))


def test_reduction_none_bad_grad():
    fn = nn.MSELoss(reduction="none")
    fn(rand(3, 2), rand(3, 2, seed=1))
    with pytest.raises(ValueError, match=r"grad: expected shape \(3, 2\)"):
        fn.backward(np.ones(3))
    ce = nn.CrossEntropyLoss()
    ce(rand(3, 2), np.array([0, 1, 1]))
    with pytest.raises(ValueError, match="grad.*scalar"):
        ce.backward(np.ones(3))
    np.testing.assert_allclose(ce.backward(2.0), 2 * ce.backward())
    with pytest.raises(TypeError, match="ignore_index"):
        nn.CrossEntropyLoss(ignore_index=1.5)


def test_loss_value_is_a_float_whose_backward_names_the_fix():
    loss_fn = nn.CrossEntropyLoss()
    value = loss_fn(rand(4, 3), labels(4, 3))
    assert isinstance(value, float) and not isinstance(value, np.generic)
    assert type(value.item()) is float and value.item() == value and value + 1 == value.item() + 1
    assert not hasattr(value, "backward")          # (hasattr sees the AttributeError)
    with pytest.raises(AttributeError, match=r"pydl has no autograd tape.*grad = loss_fn.backward\(\); "
                                             r"model.backward\(grad\); then optimizer.step\(\)"):
        value.backward()
    for lf, args in ((nn.MSELoss(reduction="sum"), (rand(3, 2), rand(3, 2, seed=1))),
                     (nn.NLLLoss(), (rand(4, 3), labels(4, 3))), (nn.L1Loss(), (rand(2), rand(2, seed=2))),
                     (nn.BCEWithLogitsLoss(), (rand(3), probs(3, 1)[:, 0])),
                     (nn.CrossEntropyLoss(ignore_index=1), (rand(4, 3), np.array([1, 0, 1, 2])))):
        assert not hasattr(lf(*args), "backward"), type(lf).__name__
    assert isinstance(nn.MSELoss(reduction="none")(rand(2), rand(2)), np.ndarray)


@pytest.mark.parametrize("cls", [nn.CrossEntropyLoss, nn.NLLLoss])
def test_float_labels_name_the_cast(cls):
    x = rand(4, 3)
    with pytest.raises(TypeError, match=rf"target: float labels of shape \(4,\) \(dtype float64\), but {cls.__name__} "
                                        r"takes int class indices.*cast them to class indices with "
                                        r"target.astype\(np.int64\)"):
        cls()(x, np.array([0.0, 2.0, 1.0, 1.0]))
    with pytest.raises(TypeError, match=r"not class indices in \[0, 3\): for real-valued targets use MSELoss"):
        cls()(x, np.array([0.5, 2.0, 1.0, 1.0]))
    cls()(x, np.array([0.0, 2.0, 1.0, 1.0]).astype(np.int64))           # the fix named works
