"""pydl.distributed: data-parallel training over MPI (mpi4py), on the Horovod model.

K processes (ranks), started by ``mpiexec -n K python script.py`` (or ``mpiexec -n K python -m
pydl train --distributed``), each hold the whole model and take their slice of every global
batch. Before each optimizer step the gradients are averaged over the ranks, so every rank
applies the same update and the K ranks follow the trajectory of one process training on
the whole batch (equal within the rounding of the average)::

    import pydl
    from pydl import distributed as dist

    dist.init()
    model = ...; optimizer = pydl.optim.Adam(model.parameters())
    dist.broadcast_parameters(model, root=0)            # same start on every rank
    optimizer = dist.DistributedOptimizer(optimizer)    # averages the gradients in step()
    loader = pydl.data.DataLoader(x, y, batch_size=64, shuffle=True, seed=0,
                                  shard=(dist.rank(), dist.world_size()))
    for xb, yb in loader: ...                           # this rank's slice of each global batch

or ``pydl.train.Trainer(..., distributed=True)``, which does all of it, averages the logged
metrics over the ranks and writes checkpoints and logs from rank 0 only.

BatchNorm: each rank normalizes with its own slice's statistics (PyTorch DDP's default);
:func:`convert_sync_batchnorm` switches a model to :class:`SyncBatchNorm` (global-batch
statistics). See docs/SCALING.md for the cost model and the measured scaling, docs/API.md for
the contract. mpi4py is optional: ``pip install ".[mpi]"`` installs it with the mpich wheel;
this module imports without it, and :func:`init` raises an ImportError saying so.
"""
from .._validate import check_int
from ..data.loader import shard_range
from ._batchnorm import SyncBatchNorm, convert_sync_batchnorm
from ._comm import abort, init, is_initialized, rank, world_size
from ._optimizer import DistributedOptimizer, broadcast_optimizer_state, broadcast_parameters


def shard(n_samples):
    """This rank's part of ``n_samples`` consecutive samples: ``slice(n*r // K, n*(r+1) // K)``
    (contiguous, sizes differing by at most one; the K slices cover every sample once)."""
    lo, hi = shard_range(check_int(n_samples, "n_samples"), rank(), world_size())
    return slice(lo, hi)


__all__ = ["init", "is_initialized", "rank", "world_size", "abort", "broadcast_parameters",
           "broadcast_optimizer_state", "DistributedOptimizer", "SyncBatchNorm",
           "convert_sync_batchnorm", "shard"]
