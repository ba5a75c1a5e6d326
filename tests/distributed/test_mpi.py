"""pydl.distributed under ``mpiexec -n 2 -host localhost``, started by the tests themselves.

Skipped when mpi4py or mpiexec is missing (``pip install ".[mpi]"`` installs both). Each test
starts one MPI job with a timeout; the job's ranks import the pydl these tests import.
"""
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

import pydl

pytest.importorskip("mpi4py")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(pydl.__file__)))   # the imported pydl's parent


def _mpiexec():
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return beside if os.path.exists(beside) else shutil.which("mpiexec")


MPIEXEC = _mpiexec()
pytestmark = pytest.mark.skipif(MPIEXEC is None, reason="mpiexec not found (pip install '.[mpi]')")


def mpirun(args, cwd, timeout=120, ranks=2):
    """Run ``mpiexec -n ranks -host localhost python args...``; returns (CompletedProcess, seconds)."""
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("PYDL_NUM_THREADS", None)
    t0 = time.perf_counter()
    res = subprocess.run([MPIEXEC, "-n", str(ranks), "-host", "localhost", sys.executable, *args],
                         env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    return res, time.perf_counter() - t0


@pytest.fixture(scope="module")
def equivalence(tmp_path_factory):
    out = tmp_path_factory.mktemp("mpi")
    res, _ = mpirun([os.path.join(HERE, "mpi_equivalence.py"), str(out)], cwd=ROOT)
    assert res.returncode == 0, res.stderr[-4000:]
    lines = [l for l in res.stdout.splitlines() if l.startswith("RESULT ")]
    assert len(lines) == 1, res.stdout[-4000:]
    return json.loads(lines[0][len("RESULT "):]), res.stdout


def test_two_ranks_one_thread_each(equivalence):
    r, _ = equivalence
    assert r["world_size"] == 2 and r["threads"] == max(1, pydl.cpu_info()["available_cpus"] // 2)


def test_half_batches_equal_whole_batches_mlp(equivalence):
    """30 Adam steps, float64: 2 ranks on half batches vs one process on the whole batches."""
    r = equivalence[0]["mlp"]
    assert r["moved"] > 1e-2                     # training changed the weights...
    assert r["params"] <= 1e-12                  # ...the same way as one process
    assert r["ranks_identical"] is True
    assert r["allreduce_calls"] == 30            # one Allreduce per step (one dtype)
    assert r["lr"] == 1e-2 * 0.5 ** 3            # a scheduler drives the wrapped optimizer


def test_batchnorm_per_rank_statistics(equivalence):
    """Default BatchNorm: each rank normalizes with its own half (PyTorch DDP's default): equal
    to two replicas on the two halves with averaged gradients; running statistics per rank."""
    r = equivalence[0]["bn_per_rank"]
    assert r["params"] <= 1e-12 and r["buffers"] <= 1e-12
    assert r["ranks_identical"] is True
    assert r["buffers_differ_between_ranks"] > 1e-6


def test_sync_batchnorm_equals_whole_batch(equivalence):
    """convert_sync_batchnorm: BatchNorm1d/2d statistics over both ranks' halves = one process on
    the whole batch, running statistics included; ranks bitwise identical."""
    r = equivalence[0]["sync_bn"]
    assert r["layers"].count("SyncBatchNorm") == 1 and "BatchNorm2d" not in r["layers"]
    assert r["params"] <= 1e-12 and r["buffers"] <= 1e-12
    assert r["ranks_identical"] is True


@pytest.mark.parametrize("case", ["trainer", "trainer_sum_weighted"])
def test_trainer_distributed_equals_one_process(equivalence, case):
    """Trainer(distributed=True): shuffled batches of 7 split 3/4 between the ranks, SyncBatchNorm,
    validation (and a summed, sample-weighted loss): the history, evaluate() and final weights
    equal one process's; rank 0 alone prints and writes the CSV log."""
    r, stdout = equivalence
    t = r[case]
    assert t["history_keys"] is True
    assert t["history"] <= 1e-12 and t["evaluate"] <= 1e-12 and t["params"] <= 1e-12
    assert t["ranks_identical"] is True
    reduction = "mean" if case == "trainer" else "sum"
    assert t["logs"] == [f"log-{reduction}-rank0.csv"]
    assert stdout.count("Epoch 1/3") == 1 and stdout.count("Epoch 3/3") == 1


def test_trainer_distributed_backup_and_restore(equivalence):
    """Interrupted mid-epoch (both ranks), started again: BackupAndRestore (read on rank 0, sent to
    rank 1; epoch sums restored per rank) ends bitwise as the uninterrupted distributed run."""
    b = equivalence[0]["backup"]
    assert b["interrupted"] is True and b["backup_written"] is True
    # 7 batches per epoch (50 = 7 x 7 + a 1-sample tail merged), a backup every 4 batches counted
    # across epochs: the last one before the interruption (after batch 5 of epoch 1) is after batch 4
    assert b["restored"] == {"epoch": 1, "batch": 5}
    assert b["history_bitwise"] is True and b["weights_bitwise"] is True
    assert b["backup_deleted"] is True


def test_one_rank_raising_ends_every_rank(tmp_path):
    """Rank 1 raises while rank 0 waits in the gradient Allreduce: the job ends (no hang), nonzero,
    naming the rank and the error."""
    res, seconds = mpirun([os.path.join(HERE, "mpi_abort.py")], cwd=ROOT, timeout=60)
    assert res.returncode != 0
    assert seconds < 30
    assert "rank 1 of 2 failed" in res.stderr and "ValueError: rank 1 fails on purpose" in res.stderr
    assert "rank 0 finished" not in res.stdout


def test_cli_distributed_digits(tmp_path):
    """`mpiexec -n 2 python -m pydl train --distributed` on the bundled digits: exit 0, one report,
    test accuracy >= 0.96, outputs written once (by rank 0)."""
    out = tmp_path / "run"
    res, _ = mpirun(["-m", "pydl", "train", "--distributed", "--out", str(out)], cwd=tmp_path, timeout=300)
    assert res.returncode == 0, res.stderr[-4000:]
    assert res.stdout.count("test accuracy") == 1 and res.stdout.count("data: digits") == 1
    acc = float(res.stdout.split("test accuracy")[1].split()[0])
    assert acc >= 0.96
    assert sorted(os.listdir(out)) == sorted(["model.npz", "history.csv"] + (
        ["curves.png"] if "curves: " + str(out / "curves.png") in res.stdout else []))
    with open(out / "history.csv") as f:
        assert len(f.read().splitlines()) == 51          # header + 50 epochs, written once


def test_cli_distributed_error_ends_every_rank(tmp_path):
    """A user error under --distributed: `error: ...` and a nonzero exit, not a hang."""
    res, seconds = mpirun(["-m", "pydl", "train", "--distributed", "--data", "missing.npz"], cwd=tmp_path, timeout=60)
    assert res.returncode != 0 and seconds < 30
    assert "error: --data: no such file: missing.npz" in res.stderr and "Traceback" not in res.stderr
