"""Run by tests/distributed/test_mpi.py under ``mpiexec -n 2``: rank 1 raises while rank 0 waits
in a DistributedOptimizer's Allreduce. pydl.distributed.init()'s abort handler must end both."""
import numpy as np

from pydl import distributed as dist
from pydl import nn, optim

dist.init()
model = nn.Linear(3, 2)
opt = dist.DistributedOptimizer(optim.SGD(model.parameters(), lr=0.1))
if dist.rank() == 1:
    raise ValueError("rank 1 fails on purpose")
out = model(np.ones((4, 3), np.float32))
model.backward(np.ones_like(out))
opt.step()                       # waits for rank 1 forever, unless the job is aborted
print("rank 0 finished", flush=True)
