"""The MPI layer of pydl.distributed: mpi4py imported on first use, the communicator, the abort
handler and the few collectives the rest of pydl uses.

Importing pydl (or pydl.distributed) never imports mpi4py: ``from mpi4py import MPI`` starts MPI
(MPI_Init), so it happens in :func:`init` only.
"""
import os
import sys
import time
import traceback

import numpy as np

_INSTALL_HINT = 'pip install ".[mpi]" (installs mpi4py and the mpich wheel; mpiexec comes with it)'


class _State:
    MPI = None          # the mpi4py.MPI module, once imported
    comm = None         # the communicator of the ranks (COMM_WORLD), once init() ran
    previous_hook = None


_state = _State()


def _mpi():
    """The ``mpi4py.MPI`` module (imported now: this starts MPI), or a clear ImportError."""
    if _state.MPI is None:
        try:
            from mpi4py import MPI
        except ImportError as e:
            raise ImportError(f"pydl.distributed needs mpi4py and an MPI library: {_INSTALL_HINT}. "
                              f"(import failed: {e})") from e
        _state.MPI = MPI
    return _state.MPI


def init():
    """Start MPI (if needed) and make pydl.distributed use ``MPI.COMM_WORLD``. Idempotent.

    Run the script under ``mpiexec -n K python script.py`` (without mpiexec, one rank). Every rank
    calls it. It also:

    - installs an abort handler: an exception that escapes on any rank prints
      ``pydl.distributed: rank r of K failed; aborting every rank`` and its traceback, then calls
      ``MPI_Abort``, which ends every rank (instead of the others waiting forever in a
      collective), as ``python -m mpi4py script.py`` does;
    - unless ``PYDL_NUM_THREADS`` is set, sets pydl's kernel threads to
      max(1, available CPUs // ranks on this node), so the ranks of one machine do not
      oversubscribe its cores (torchrun sets one OpenMP thread per process for the same reason).
    """
    if _state.comm is not None:
        return
    MPI = _mpi()
    comm = MPI.COMM_WORLD
    _state.comm = comm
    _install_abort_hook()
    if not os.environ.get("PYDL_NUM_THREADS"):
        from .. import _runtime
        node = comm.Split_type(MPI.COMM_TYPE_SHARED)
        local = node.Get_size()
        node.Free()
        cpus = _runtime.cpu_info()["available_cpus"]
        _runtime.set_num_threads(max(1, cpus // local))


def is_initialized():
    """True once :func:`init` has run in this process."""
    return _state.comm is not None


def comm():
    """The communicator; RuntimeError if :func:`init` has not run."""
    if _state.comm is None:
        raise RuntimeError("pydl.distributed is not initialized: call pydl.distributed.init() first "
                           "(on every rank)")
    return _state.comm


def rank():
    """This process's rank, 0 <= rank < world_size()."""
    return comm().Get_rank()


def world_size():
    """The number of ranks (processes) K."""
    return comm().Get_size()


# Seconds between writing a rank's last words and MPI_Abort. mpiexec (MPICH's hydra) forwards a
# rank's output through a proxy that MPI_Abort tears down: called at once, the message was lost
# now and then (1 run in 30 of `mpiexec -n 2 python -m pydl train --distributed --data missing.npz`
# printed nothing at all). The pause lets the proxy forward what is already in the pipe.
_FORWARD_GRACE = 0.2


def _flush_then_abort(c, code):
    sys.stdout.flush()
    sys.stderr.flush()
    time.sleep(_FORWARD_GRACE)
    c.Abort(code)


def abort(code=1):
    """End every rank now (``MPI_Abort``) with exit status ``code``, after what they printed."""
    _flush_then_abort(comm(), code)


def _abort_hook(kind, value, tb):
    """sys.excepthook: report the exception with the rank, then end every rank."""
    c = _state.comm
    if c is None or c.Get_size() == 1:
        (_state.previous_hook or sys.__excepthook__)(kind, value, tb)
        return
    text = "".join(traceback.format_exception(kind, value, tb))
    sys.stderr.write(f"pydl.distributed: rank {c.Get_rank()} of {c.Get_size()} failed; aborting every "
                     f"rank (MPI_Abort).\n{text}")
    _flush_then_abort(c, 1)


def _install_abort_hook():
    if sys.excepthook is not _abort_hook:
        _state.previous_hook = sys.excepthook
        sys.excepthook = _abort_hook


# ---------------------------------------------------------------- collectives used by pydl
def allreduce_sum_(buf):
    """Sum ``buf`` (a contiguous ndarray) over the ranks, in place; returns the seconds it took."""
    MPI = _state.MPI
    t0 = time.perf_counter()
    comm().Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
    return time.perf_counter() - t0


def sum_values(values):
    """Sums over the ranks of a few numbers (float64); returns an ndarray."""
    buf = np.array(values, dtype=np.float64)
    if world_size() > 1:
        allreduce_sum_(buf)
    return buf


def any_true(flag):
    """True on every rank when ``flag`` is true on any rank."""
    return bool(sum_values([1.0 if flag else 0.0])[0] > 0)


def bcast_array_(array, root=0):
    """Overwrite ``array`` (an ndarray of the same shape and dtype on every rank) with root's."""
    if world_size() == 1:
        return
    if array.flags.c_contiguous:
        comm().Bcast(array, root=root)
    else:
        tmp = np.ascontiguousarray(array)
        comm().Bcast(tmp, root=root)
        array[...] = tmp


def bcast_object(obj, root=0):
    """Root's ``obj`` on every rank (pickled: nested dicts of arrays and numbers)."""
    return obj if world_size() == 1 else comm().bcast(obj, root=root)


def allgather_object(obj):
    """[rank 0's obj, rank 1's obj, ...] on every rank."""
    return [obj] if world_size() == 1 else comm().allgather(obj)


def check_same(what, values):
    """Raise ValueError on every rank when ``values`` (a dict of picklable values) differs between
    ranks, naming the first differing key and each rank's value. Collective."""
    gathered = allgather_object(values)
    for key in values:
        seen = [g[key] for g in gathered]
        if any(s != seen[0] for s in seen[1:]):
            per_rank = ", ".join(f"rank {r}: {s!r}" for r, s in enumerate(seen))
            raise ValueError(f"{what}: {key} differs between ranks ({per_rank}); every rank must "
                             "run the same code on the same arguments")
