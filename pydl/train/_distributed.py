"""What ``Trainer(distributed=True)`` adds to a fit: this rank's slice of every batch, sums over
the ranks, rank 0's state at the start (docs/API.md §2, "Distributed data parallel").

Every rank runs the same fit on the same full x, y. The Trainer draws each epoch's permutation
and cuts it into global batches exactly as one process would; rank r trains on the samples
``shard_range(nb, r, K)`` of each global batch of nb (contiguous, sizes differing by at most
one) and scales its loss gradient by K * n_r / nb (K for a summed loss), so that the
DistributedOptimizer's average of the K gradients is the gradient of the global batch's loss
even when nb is not a multiple of K. Logged losses and metrics are sums over the ranks divided by the global sample counts:
the numbers one process would log.
"""
import contextlib
import os

import numpy as np

from ..data.loader import shard_range
from . import _rng_state


def _fingerprint(a):
    """A cheap summary of an array (shape, dtype, the sum of at most ~256 rows), to catch ranks
    that were given different data."""
    step = max(1, a.shape[0] // 256)
    return (tuple(a.shape), str(a.dtype), float(np.sum(a[::step], dtype=np.float64)))


class DataParallel:
    """One rank's part in a data-parallel Trainer."""

    def __init__(self):
        from .. import distributed
        from ..distributed import _comm
        distributed.init()
        self.dist, self.comm = distributed, _comm
        self.rank, self.size = distributed.rank(), distributed.world_size()
        self.root = self.rank == 0

    def local(self, idx, sum_reduction=False):
        """This rank's part of a global batch's indices (a slice or an index array) and the
        scale of its loss gradient that makes the ranks' average the global batch's gradient:
        K * n_r / nb for a mean loss (rank r's gradient is a mean over its n_r samples), K for a
        summed one."""
        if isinstance(idx, slice):
            nb = idx.stop - idx.start
            a, b = shard_range(nb, self.rank, self.size)
            part = slice(idx.start + a, idx.start + b)
        else:
            nb = len(idx)
            a, b = shard_range(nb, self.rank, self.size)
            part = idx[a:b]
        return part, float(self.size) if sum_reduction else self.size * (b - a) / nb

    def local_rows(self, n):
        """slice of this rank's rows of an n-row array (validation, evaluate)."""
        return slice(*shard_range(n, self.rank, self.size))

    def sums(self, values):
        return self.comm.sum_values(values)

    def any(self, flag):
        return self.comm.any_true(flag)

    def bcast(self, obj):
        return self.comm.bcast_object(obj, 0)

    def begin_fit(self, trainer, x, y, validation, batch_size, epochs, initial_epoch, min_batch):
        """Check that every rank runs the same fit, then give every rank rank 0's parameters,
        buffers, optimizer state and random streams (so all draw the same permutations)."""
        facts = {"x": _fingerprint(x), "y": _fingerprint(y), "batch_size": batch_size, "epochs": epochs,
                 "initial_epoch": initial_epoch,
                 "validation": None if validation is None else (_fingerprint(validation[0]),
                                                                _fingerprint(validation[1]))}
        self.comm.check_same("Trainer.fit (distributed)", facts)
        if batch_size < min_batch:
            raise ValueError(f"batch_size: {batch_size} samples cannot be shared by {self.size} ranks "
                             f"(each needs at least {min_batch // self.size}); use batch_size >= {min_batch}")
        self.dist.broadcast_parameters(trainer.model, 0)
        self.dist.broadcast_optimizer_state(trainer.optimizer, 0)
        generators = trainer._owned_generators()
        _rng_state.restore(self.bcast(_rng_state.capture(generators)), generators)

    def progress_state(self, progress, state):
        """Fill a backup's epoch sums (``state``, from ``progress.state()``): the totals over the
        ranks (what one process holds) and, under "rank_sums", each rank's own. Collective."""
        mine = [float(progress.loss_sum), float(progress.seen)] + [float(v) for v in progress.metric_sums]
        per_rank = self.comm.allgather_object(mine)
        state["loss_sum"], state["seen"], *state["metric_sums"] = (sum(col) for col in zip(*per_rank))
        state["seen"] = int(state["seen"])
        state["rank_sums"] = per_rank

    def restore_progress(self, progress, state):
        """This rank's epoch sums from a backup: its own when the backup has one per rank (a run with
        as many ranks continues bitwise); otherwise rank 0 takes the totals, the others zeros."""
        per_rank = state.get("rank_sums")
        if per_rank is not None and len(per_rank) == self.size:
            mine = per_rank[self.rank]
        elif self.root:
            return
        else:
            mine = [0.0] * (2 + len(progress.metric_sums))
        progress.loss_sum, progress.seen = float(mine[0]), int(mine[1])
        progress.metric_sums = [float(v) for v in mine[2:]]

    def sync_buffers(self, model):
        """Rank 0's buffers (BatchNorm running statistics) on every rank (DDP's broadcast_buffers)."""
        for _, b in model.named_buffers():
            self.comm.bcast_array_(b, 0)

    def quiet(self):
        """A context in which this rank prints nothing (on every rank but 0)."""
        if self.root:
            return contextlib.nullcontext()
        stack = contextlib.ExitStack()
        devnull = stack.enter_context(open(os.devnull, "w"))
        stack.enter_context(contextlib.redirect_stdout(devnull))
        return stack
