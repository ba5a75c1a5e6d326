"""A ResNet basic block with a projection shortcut (He et al. 2016) trained 5 Adam steps beside the
identical torch model: losses, weights, running statistics and the block's repr/structure match."""
import numpy as np
import pytest

import pydl
from pydl import nn, optim

torch = pytest.importorskip("torch")

TOL = {np.float32: 1e-4, np.float64: 1e-9}


def basic_block(lib, cin, cout, stride, **dt):
    """conv3x3-BN-ReLU-conv3x3-BN + conv1x1-BN shortcut, summed, then ReLU; for nn or torch.nn."""
    body = lib.Sequential(lib.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False, **dt),
                          lib.BatchNorm2d(cout, **dt), lib.ReLU(),
                          lib.Conv2d(cout, cout, 3, padding=1, bias=False, **dt), lib.BatchNorm2d(cout, **dt))
    shortcut = lib.Sequential(lib.Conv2d(cin, cout, 1, stride=stride, bias=False, **dt), lib.BatchNorm2d(cout, **dt))
    return body, shortcut


class TorchResidual(torch.nn.Module):
    def __init__(self, module, shortcut):
        super().__init__()
        self.module, self.shortcut = module, shortcut

    def forward(self, x):
        return self.module(x) + self.shortcut(x)


def models(dtype):
    pydl.manual_seed(0)
    body, shortcut = basic_block(nn, 3, 8, 2, dtype=dtype)
    model = nn.Sequential(nn.Residual(body, shortcut), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(8, 5, dtype=dtype))
    tbody, tshortcut = basic_block(torch.nn, 3, 8, 2)
    tmodel = torch.nn.Sequential(TorchResidual(tbody, tshortcut), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                 torch.nn.Flatten(), torch.nn.Linear(8, 5)).to(getattr(torch, np.dtype(dtype).name))
    tmodel.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in model.state_dict().items()})
    return model, tmodel


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_basic_block_trains_as_torch(dtype):
    model, tmodel = models(dtype)
    assert list(model.state_dict()) == list(tmodel.state_dict())
    opt = optim.Adam(model.parameters(), lr=1e-2)
    topt = torch.optim.Adam(tmodel.parameters(), lr=1e-2)
    loss_fn, tloss_fn = nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss()
    rng = np.random.default_rng(0)
    tol = TOL[dtype]
    for step in range(5):
        x = rng.standard_normal((6, 3, 9, 10)).astype(dtype)
        y = rng.integers(0, 5, 6)
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        model.backward(loss_fn.backward())
        opt.step()
        topt.zero_grad()
        tloss = tloss_fn(tmodel(torch.from_numpy(x)), torch.from_numpy(y))
        tloss.backward()
        topt.step()
        assert loss == pytest.approx(tloss.item(), rel=tol)
    tstate = tmodel.state_dict()
    for k, v in model.state_dict().items():
        ref = tstate[k].numpy()
        np.testing.assert_allclose(v, ref, rtol=tol, atol=tol * max(np.abs(ref).max(), 1e-3), err_msg=k)
    # eval mode uses the running statistics, as torch
    model.eval(), tmodel.eval()
    x = rng.standard_normal((4, 3, 9, 10)).astype(dtype)
    with pydl.no_grad(), torch.no_grad():
        out, tout = model(x), tmodel(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(out, tout, rtol=tol, atol=tol * np.abs(tout).max())
