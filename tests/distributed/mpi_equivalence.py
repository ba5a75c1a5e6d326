"""Run by tests/distributed/test_mpi.py under ``mpiexec -n 2``: data-parallel training on half
batches against one process on whole batches (rank 0 computes the one-process references).

Rank 0 prints one line ``RESULT <json>`` with, per case, the largest absolute difference of
the parameters (and buffers) from the reference and whether the ranks hold bitwise identical
arrays; the test asserts on them. Cases (float64, Adam, 30 steps unless said):

- mlp:          Linear-ReLU-Linear-Tanh-Linear, a StepLR schedule on the DistributedOptimizer;
                whole-batch reference.
- bn_per_rank:  with BatchNorm1d, per-rank statistics (the default); reference: two replicas,
                replica r on half r, gradients averaged, so replica r's buffers are rank r's.
- sync_bn:      Conv2d-BatchNorm2d-ReLU-Flatten-Linear-BatchNorm1d-ReLU-Linear converted by
                convert_sync_batchnorm; whole-batch reference with plain BatchNorm.
- trainer:      Trainer(distributed=True).fit (shuffled, uneven slices: batch 7 of 50 samples,
                SyncBatchNorm, validation) against Trainer.fit in one process: histories,
                evaluate(), final weights; CSVLogger writes on rank 0 only. Again with a summed
                loss and sample weights (trainer_sum_weighted).
- backup:       the same distributed fit interrupted mid-epoch (an exception from a callback on
                every rank) and started again with BackupAndRestore(save_freq=4): it resumes
                and ends bitwise as the uninterrupted distributed run (weights, history).
"""
import json
import os
import sys

import numpy as np

import pydl
from pydl import distributed as dist
from pydl import nn, optim
from pydl.train import Trainer
from pydl.train.callbacks import BackupAndRestore, Callback, CSVLogger

F64 = np.float64
STEPS, BATCH, HALF = 30, 16, 8


# A layer followed by BatchNorm has no bias (as in ResNets): its gradient would be zero up to
# rounding, noise that Adam's normalized step turns into ~lr * 1e-17 / eps moves per step.
def mlp(seed, batchnorm=False):
    pydl.manual_seed(seed)
    layers = [nn.Linear(5, 12, bias=not batchnorm, dtype=F64)]
    if batchnorm:
        layers.append(nn.BatchNorm1d(12, dtype=F64))
    layers += [nn.ReLU(), nn.Linear(12, 8, dtype=F64), nn.Tanh(), nn.Linear(8, 3, dtype=F64)]
    return nn.Sequential(*layers)


def cnn(seed):
    pydl.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, bias=False, dtype=F64), nn.BatchNorm2d(3, dtype=F64), nn.ReLU(),
                         nn.Flatten(), nn.Linear(3 * 4 * 4, 6, bias=False, dtype=F64), nn.BatchNorm1d(6, dtype=F64),
                         nn.ReLU(), nn.Linear(6, 3, dtype=F64))


def batches(shape, seed=1):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((BATCH,) + shape), rng.integers(0, 3, BATCH)) for _ in range(STEPS)]


def step(model, opt, x, y, grad_scale=1.0):
    loss_fn = nn.CrossEntropyLoss()
    opt.zero_grad()
    loss_fn(model(x), y)
    model.backward(loss_fn.backward() * grad_scale)
    opt.step()


def arrays(model):
    return {k: np.array(v) for k, v in model.state_dict().items()}


def compare(mine, ref, keys=None):
    keys = list(ref) if keys is None else keys
    return max(float(np.max(np.abs(mine[k] - ref[k]))) for k in keys)


def ranks_identical(state):
    """True on rank 0 when every rank's arrays equal rank 0's bit for bit."""
    gathered = dist._comm.comm().gather(state, root=0)
    if dist.rank() != 0:
        return None
    return all(set(g) == set(state) and all(g[k].dtype == state[k].dtype and g[k].tobytes() == state[k].tobytes()
                                            for k in state) for g in gathered)


def distributed_run(model, data, rank, schedule=False):
    dist.broadcast_parameters(model, root=0)
    opt = dist.DistributedOptimizer(optim.Adam(model.parameters(), lr=1e-2))
    sched = optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5) if schedule else None
    lo, hi = rank * HALF, (rank + 1) * HALF
    for x, y in data:
        step(model, opt, x[lo:hi], y[lo:hi])
        if sched is not None:
            sched.step()
    return opt


def case_mlp(rank):
    data = batches((5,))
    model = mlp(seed=rank)       # different on each rank: broadcast_parameters must fix it
    opt = distributed_run(model, data, rank, schedule=True)
    same = ranks_identical(arrays(model))
    if rank != 0:
        return None
    ref = mlp(seed=0)
    ref_opt = optim.Adam(ref.parameters(), lr=1e-2)
    sched = optim.lr_scheduler.StepLR(ref_opt, step_size=10, gamma=0.5)
    for x, y in data:
        step(ref, ref_opt, x, y)
        sched.step()
    return {"params": compare(arrays(model), arrays(ref)), "ranks_identical": same,
            "allreduce_calls": opt.allreduce_calls, "moved": compare(arrays(model), arrays(mlp(seed=0))),
            "lr": opt.param_groups[0]["lr"]}


def case_bn_per_rank(rank):
    data = batches((5,), seed=2)
    model = mlp(seed=rank, batchnorm=True)
    distributed_run(model, data, rank)
    mine = arrays(model)
    params = [k for k, _ in model.named_parameters()]
    buffers = [k for k, _ in model.named_buffers()]
    same = ranks_identical({k: mine[k] for k in params})
    all_buffers = dist._comm.comm().gather({k: mine[k] for k in buffers}, root=0)
    if rank != 0:
        return None
    replicas = [mlp(seed=0, batchnorm=True), mlp(seed=0, batchnorm=True)]
    ref_opt = optim.Adam(replicas[0].parameters(), lr=1e-2)
    for x, y in data:
        grads = []
        for r, m in enumerate(replicas):
            m.zero_grad()
            loss_fn = nn.CrossEntropyLoss()
            loss_fn(m(x[r * HALF:(r + 1) * HALF]), y[r * HALF:(r + 1) * HALF])
            m.backward(loss_fn.backward())
            grads.append([p.grad for p in m.parameters()])
        for p, g0, g1 in zip(replicas[0].parameters(), *grads):
            p.grad = (g0 + g1) / 2
        ref_opt.step()
        replicas[1].load_state_dict({**arrays(replicas[1]), **{k: v for k, v in arrays(replicas[0]).items()
                                                               if k in params}})
    ref = [arrays(m) for m in replicas]
    return {"params": compare(mine, ref[0], params), "ranks_identical": same,
            "buffers": max(compare(all_buffers[r], ref[r], buffers) for r in range(2)),
            "buffers_differ_between_ranks": compare(all_buffers[0], all_buffers[1], buffers)}


def case_sync_bn(rank):
    data = batches((2, 4, 4), seed=3)
    model = dist.convert_sync_batchnorm(cnn(seed=rank))
    kinds = sorted({type(m).__name__ for m in model.modules()})
    distributed_run(model, data, rank)
    mine = arrays(model)
    same = ranks_identical(mine)
    if rank != 0:
        return None
    ref = cnn(seed=0)
    ref_opt = optim.Adam(ref.parameters(), lr=1e-2)
    for x, y in data:
        step(ref, ref_opt, x, y)
    buffers = [k for k, _ in ref.named_buffers()]
    return {"params": compare(mine, arrays(ref), [k for k, _ in ref.named_parameters()]),
            "buffers": compare(mine, arrays(ref), buffers), "ranks_identical": same, "layers": kinds}


def trainer_data():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((50, 5))
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 1)
    return x, y, rng.standard_normal((13, 5)), rng.integers(0, 3, 13)


def case_trainer(rank, out_dir, reduction="mean"):
    x, y, xv, yv = trainer_data()
    weights = None if reduction == "mean" else np.linspace(0.5, 2.0, len(y))

    def run(model, distributed, log):
        opt = optim.Adam(model.parameters(), lr=1e-2)
        trainer = Trainer(model, nn.CrossEntropyLoss(reduction=reduction), opt, distributed=distributed,
                          callbacks=[CSVLogger(log)])
        pydl.manual_seed(7)
        hist = trainer.fit(x, y, epochs=3, batch_size=7, validation_data=(xv, yv), sample_weight=weights,
                           verbose=2 if distributed and reduction == "mean" else 0)
        return hist.history, trainer.evaluate(x, y), arrays(model)

    model = dist.convert_sync_batchnorm(mlp(seed=10 + rank, batchnorm=True))
    hist, ev, mine = run(model, True, os.path.join(out_dir, f"log-{reduction}-rank{rank}.csv"))
    same = ranks_identical(mine)
    if rank != 0:
        return None
    ref_hist, ref_ev, ref = run(mlp(seed=10, batchnorm=True), False, os.path.join(out_dir, f"log-{reduction}-ref.csv"))
    return {"params": compare(mine, ref), "ranks_identical": same,
            "history": max(abs(a - b) for k in ref_hist for a, b in zip(hist[k], ref_hist[k])),
            "history_keys": sorted(hist) == sorted(ref_hist), "evaluate": max(abs(ev[k] - ref_ev[k]) for k in ref_ev),
            "logs": sorted(f for f in os.listdir(out_dir) if f.startswith(f"log-{reduction}-rank"))}


class Interrupt(Exception):
    pass


class InterruptAt(Callback):
    """Raise at the end of batch ``batch`` of epoch ``epoch`` (on every rank: no collective waits);
    epoch None: never (the restarted run keeps the same list of callbacks, as BackupAndRestore requires)."""

    def __init__(self, epoch, batch):
        self.at, self.epoch = (epoch, batch), None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            raise Interrupt


def case_backup(rank, out_dir):
    x, y, xv, yv = trainer_data()

    def run(callbacks):
        model = dist.convert_sync_batchnorm(mlp(seed=10, batchnorm=True))
        trainer = Trainer(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=1e-2),
                          distributed=True, callbacks=callbacks)
        pydl.manual_seed(7)
        try:
            hist = trainer.fit(x, y, epochs=3, batch_size=7, validation_data=(xv, yv), verbose=0)
        except Interrupt:
            return None, None
        return {k: [float(v).hex() for v in vs] for k, vs in hist.history.items()}, arrays(model)

    ref_hist, ref = run([])
    backup_dir = os.path.join(out_dir, "backup")
    first = run([InterruptAt(epoch=1, batch=5), BackupAndRestore(backup_dir, save_freq=4)])
    saved = os.path.exists(os.path.join(backup_dir, "backup.npz"))
    resumer = BackupAndRestore(backup_dir, save_freq=4)
    hist, mine = run([InterruptAt(epoch=None, batch=None), resumer])
    if rank != 0:
        return None
    return {"interrupted": first == (None, None), "backup_written": saved, "restored": resumer.restored,
            "history_bitwise": hist == ref_hist,
            "weights_bitwise": all(mine[k].tobytes() == ref[k].tobytes() for k in ref),
            "backup_deleted": not os.path.exists(backup_dir)}


def main():
    out_dir = sys.argv[1]
    dist.init()
    rank = dist.rank()
    results = {"world_size": dist.world_size(), "threads": pydl.get_num_threads(),
               "mlp": case_mlp(rank), "bn_per_rank": case_bn_per_rank(rank),
               "sync_bn": case_sync_bn(rank), "trainer": case_trainer(rank, out_dir),
               "trainer_sum_weighted": case_trainer(rank, out_dir, reduction="sum"),
               "backup": case_backup(rank, out_dir)}
    if rank == 0:
        print("RESULT " + json.dumps(results), flush=True)


if __name__ == "__main__":
    main()
