"""BatchNorm1d: torch parity (training, eval, running stats), gradients, state_dict, bad input."""
import numpy as np
import pytest

from pydl import nn


def rand(*shape, dtype=np.float64, seed=0):
    return (np.random.default_rng(seed).standard_normal(shape) * 2 + 1).astype(dtype)


@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm_gradcheck_train_and_eval(check_module_grads, affine):
    bn = nn.BatchNorm1d(4, dtype=np.float64, affine=affine)
    if affine:
        bn.weight.data[:] = [0.5, 1.5, -1.0, 2.0]
        bn.bias.data[:] = [0.1, -0.2, 0.3, 0.0]
    bn.momentum = 0.0  # keep the running stats fixed across finite-difference evaluations
    check_module_grads(bn, rand(5, 4))
    bn.running_mean[:] = [0.1, 0.2, -0.3, 1.0]
    bn.running_var[:] = [1.5, 0.5, 2.0, 1.0]
    bn.eval()
    check_module_grads(bn, rand(5, 4, seed=1))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm_matches_torch(parity, dtype, momentum, affine):
    torch = pytest.importorskip("torch")
    tdt = getattr(torch, np.dtype(dtype).name)
    bn = nn.BatchNorm1d(6, momentum=momentum, affine=affine, dtype=dtype)
    t = torch.nn.BatchNorm1d(6, momentum=momentum, affine=affine).to(tdt)
    if affine:
        w = rand(6, dtype=dtype, seed=5)
        b = rand(6, dtype=dtype, seed=6)
        bn.weight.data[:], bn.bias.data[:] = w, b
        with torch.no_grad():
            t.weight.copy_(torch.from_numpy(w))
            t.bias.copy_(torch.from_numpy(b))
    for step in range(3):  # running statistics over several batches
        x, g = rand(10, 6, dtype=dtype, seed=step), rand(10, 6, dtype=dtype, seed=10 + step)
        tx = torch.from_numpy(x.copy()).requires_grad_()
        ty = t(tx)
        ty.backward(torch.from_numpy(g))
        parity(bn(x), ty)
        parity(bn.backward(g), tx.grad)
        if affine:  # accumulated over the steps, as torch
            parity(bn.weight.grad, t.weight.grad)
            parity(bn.bias.grad, t.bias.grad)
    parity(bn.running_mean, t.running_mean)
    parity(bn.running_var, t.running_var)
    assert int(bn.num_batches_tracked) == int(t.num_batches_tracked) == 3
    bn.eval(), t.eval()
    x, g = rand(7, 6, dtype=dtype, seed=20), rand(7, 6, dtype=dtype, seed=21)
    tx = torch.from_numpy(x.copy()).requires_grad_()
    ty = t(tx)
    ty.backward(torch.from_numpy(g))
    parity(bn(x), ty)
    parity(bn.backward(g), tx.grad)
    if affine:
        parity(bn.weight.grad, t.weight.grad)
        parity(bn.bias.grad, t.bias.grad)
    assert int(bn.num_batches_tracked) == 3  # eval leaves the statistics alone


def test_batchnorm_formulas():
    bn = nn.BatchNorm1d(3, momentum=0.25, dtype=np.float64)
    x = rand(8, 3)
    y = bn(x)
    mu, var = x.mean(0), x.var(0)
    np.testing.assert_allclose(y, (x - mu) / np.sqrt(var + 1e-5), rtol=1e-12)
    np.testing.assert_allclose(bn.running_mean, 0.25 * mu, rtol=1e-12)
    np.testing.assert_allclose(bn.running_var, 0.75 + 0.25 * x.var(0, ddof=1), rtol=1e-12)
    sd = bn.state_dict()
    assert set(sd) == {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}
    assert sd["num_batches_tracked"].dtype == np.int64 and sd["num_batches_tracked"] == 1
    bn2 = nn.BatchNorm1d(3, dtype=np.float64)
    bn2.load_state_dict(sd)
    bn.eval(), bn2.eval()
    np.testing.assert_array_equal(bn(x), bn2(x))


def test_batchnorm_bad_inputs():
    bn = nn.BatchNorm1d(3)
    with pytest.raises(ValueError, match=r"\(N, 3\).*\(4, 2\)"):
        bn(np.zeros((4, 2), np.float32))
    with pytest.raises(TypeError, match="input"):
        bn(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="more than 1 value"):
        bn(np.zeros((1, 3), np.float32))
    bn.eval()
    assert bn(np.zeros((1, 3), np.float32)).shape == (1, 3)
    with pytest.raises(ValueError, match="num_features"):
        nn.BatchNorm1d(0)
    with pytest.raises(ValueError, match="momentum"):
        nn.BatchNorm1d(3, momentum=2.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batchnorm_large_threaded_matches_numpy_and_is_deterministic(dtype):
    import pydl

    x = rand(300, 256, dtype=dtype)  # N * C above the kernel's threading threshold
    g = rand(300, 256, dtype=dtype, seed=1)
    outs = []
    for threads in (1, 2):
        pydl.set_num_threads(threads)
        bn = nn.BatchNorm1d(256, dtype=dtype)
        bn.weight.data[:] = np.linspace(0.5, 1.5, 256)
        y = bn(x)
        outs.append((y, bn.backward(g), bn.weight.grad, bn.running_var.copy()))
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)
    x64, g64 = x.astype(np.float64), g.astype(np.float64)
    mu, var = x64.mean(0), x64.var(0)
    xhat = (x64 - mu) / np.sqrt(var + 1e-5)
    w = np.linspace(0.5, 1.5, 256)
    dx = w / np.sqrt(var + 1e-5) * (g64 - g64.mean(0) - xhat * (g64 * xhat).mean(0))
    tol = 2e-5 if dtype == np.float32 else 1e-10
    y, gx, gw, rv = outs[0]
    np.testing.assert_allclose(y, xhat * w, rtol=tol, atol=tol)
    np.testing.assert_allclose(gx, dx, rtol=tol, atol=tol * np.abs(dx).max())
    np.testing.assert_allclose(gw, (g64 * xhat).sum(0), rtol=tol, atol=tol * 300)
    np.testing.assert_allclose(rv, 0.9 + 0.1 * x64.var(0, ddof=1), rtol=tol)
