"""pydl.distributed without MPI: importing it starts nothing, a missing mpi4py is a clear
ImportError, and the API refuses use before init(). (The MPI behaviour: test_mpi.py.)"""
import os
import subprocess
import sys

import numpy as np
import pytest

import pydl
from pydl import distributed as dist
from pydl import nn, optim
from pydl.distributed import _comm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(pydl.__file__)))


def test_import_does_not_start_mpi():
    code = "import sys, pydl, pydl.distributed; print('mpi4py.MPI' in sys.modules, pydl.distributed.is_initialized())"
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["False", "False"]


def test_missing_mpi4py_names_the_extra(monkeypatch):
    monkeypatch.setattr(_comm._state, "MPI", None)
    monkeypatch.setattr(_comm._state, "comm", None)
    monkeypatch.setitem(sys.modules, "mpi4py", None)       # import mpi4py -> ImportError
    with pytest.raises(ImportError, match=r'pip install "\.\[mpi\]"'):
        dist.init()
    assert not dist.is_initialized()


def test_use_before_init_is_an_error(monkeypatch):
    monkeypatch.setattr(_comm._state, "comm", None)
    for call in (dist.rank, dist.world_size, lambda: dist.shard(10),
                 lambda: dist.DistributedOptimizer(optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1))):
        with pytest.raises(RuntimeError, match=r"call pydl.distributed.init\(\) first"):
            call()


def test_bad_arguments(monkeypatch):
    with pytest.raises(TypeError, match="distributed: expected a bool"):
        m = nn.Linear(2, 2)
        pydl.train.Trainer(m, nn.MSELoss(), optim.SGD(m.parameters(), lr=0.1), distributed="yes")
    with pytest.raises(TypeError, match="module: expected a pydl.nn.Module"):
        dist.convert_sync_batchnorm(np.zeros(3))


def test_convert_sync_batchnorm_keeps_parameters_and_buffers():
    bn1, bn2 = nn.BatchNorm1d(3), nn.BatchNorm2d(4)
    model = nn.Sequential(nn.Linear(2, 3), bn1, nn.ReLU(), nn.Sequential(nn.Identity(), bn2))
    params = list(model.parameters())
    bn1.running_mean += 1.5
    before = model.state_dict()
    out = dist.convert_sync_batchnorm(model)
    assert out is model
    assert type(model[1]) is dist.SyncBatchNorm and type(model[3][1]) is dist.SyncBatchNorm
    assert list(model.parameters()) == params                       # the same Parameter objects
    after = model.state_dict()
    assert list(after) == list(before) and all(np.array_equal(after[k], before[k]) for k in before)
    assert model[1].running_mean is bn1.running_mean
    # without MPI (or with one rank) it is plain BatchNorm
    x = np.random.default_rng(0).standard_normal((5, 4, 3, 3)).astype(np.float32)
    ref = nn.BatchNorm2d(4)
    np.testing.assert_array_equal(model[3][1](x), ref(x))
    np.testing.assert_array_equal(model[3][1].backward(np.ones_like(x)), ref.backward(np.ones_like(x)))
