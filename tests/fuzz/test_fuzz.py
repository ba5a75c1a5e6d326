"""The fuzz harness in the test suite (docs/RELIABILITY.md "Fuzzing").

- every public ``pydl._C`` binding, ``pydl.ops`` function, ``pydl.nn`` layer and ``pydl.optim``
  optimizer has a target (a new binding without one fails here);
- a bounded run in a subprocess (``PYDL_FUZZ_SECONDS``, default 10 s here; ``.ci/run`` runs a
  longer one per ISA) exits normally: a crash shows as a signal, with the case that caused it;
- the harness really detects a crash (a self-test target that dereferences NULL).
"""
import inspect
import os
import signal
import subprocess
import sys

import pytest

import pydl
from pydl import _C, nn, ops, optim

HERE = os.path.dirname(os.path.abspath(__file__))
RUN = os.path.join(HERE, "run.py")
sys.path.insert(0, HERE)
import targets  # noqa: E402

SECONDS = float(os.environ.get("PYDL_FUZZ_SECONDS", 10))


def test_every_binding_has_a_target():
    public = {n for n in dir(_C) if not n.startswith("_")}
    missing = public - set(targets.BINDINGS) - targets.BINDING_CONSTANTS
    stale = set(targets.BINDINGS) - public
    assert not missing, f"pydl._C bindings without a fuzz target in tests/fuzz/targets.py: {sorted(missing)}"
    assert not stale, f"fuzz targets for bindings that no longer exist: {sorted(stale)}"


def test_every_ops_function_has_a_target():
    public = {n for n in dir(ops) if not n.startswith("_") and not inspect.ismodule(getattr(ops, n))}
    missing = public - set(targets.OPS) - targets.OPS_NON_FUNCTIONS
    assert not missing, f"pydl.ops functions without a fuzz target in tests/fuzz/targets.py: {sorted(missing)}"


def test_every_layer_and_optimizer_has_a_target():
    layers = {n for n in dir(nn) if not n.startswith("_") and inspect.isclass(getattr(nn, n))
              and issubclass(getattr(nn, n), nn.Module)} - targets.NN_NOT_LAYERS
    assert layers <= set(targets.nn_targets())
    opts = {n for n in dir(optim) if inspect.isclass(getattr(optim, n)) and issubclass(getattr(optim, n), optim.Optimizer)}
    missing = opts - set(targets.OPTIM) - targets.OPTIM_NOT_OPTIMIZERS
    assert not missing, f"optimizers without a fuzz target: {sorted(missing)}"


def _run(args, tmp_path, timeout):
    trace = tmp_path / "last_case.txt"
    # the subprocess fuzzes the pydl this test imported (the checkout or the installed copy)
    root = os.path.dirname(os.path.dirname(os.path.abspath(pydl.__file__)))
    env = dict(os.environ, PYTHONFAULTHANDLER="1",
               PYTHONPATH=os.pathsep.join([root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    proc = subprocess.run([sys.executable, RUN, "--trace", str(trace)] + args, capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=str(tmp_path))
    last = trace.read_text().strip() if trace.exists() else ""
    return proc, last


@pytest.mark.fuzz
def test_fuzz_run_has_no_crash(tmp_path):
    seed = int(os.environ.get("PYDL_FUZZ_SEED", 0))
    proc, last = _run(["--seconds", str(SECONDS), "--seed", str(seed)], tmp_path, timeout=SECONDS * 5 + 300)
    if proc.returncode < 0:
        pytest.fail(f"the fuzz run died with {signal.Signals(-proc.returncode).name} (seed {seed}); last case:\n"
                    f"{last}\n--- stderr:\n{proc.stderr[-6000:]}")
    assert proc.returncode == 0, f"exit status {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    summary = [line for line in proc.stdout.splitlines() if " cases in " in line]
    assert summary and "0 crashes" in summary[0], proc.stdout[-4000:]
    assert f"pydl {pydl.__file__}" in proc.stdout  # the same pydl as this test
    print(proc.stdout)


@pytest.mark.fuzz
def test_harness_detects_a_crash(tmp_path):
    """A segfault in a case ends the run with SIGSEGV and the trace names the case."""
    proc, last = _run(["--seconds", "5", "--targets", "selftest.segfault"], tmp_path, timeout=120)
    assert proc.returncode == -signal.SIGSEGV, (proc.returncode, proc.stdout, proc.stderr[-2000:])
    assert "selftest.segfault" in last
    assert "Fatal Python error: Segmentation fault" in proc.stderr


def test_a_case_replays_from_its_seed(tmp_path):
    """Same seed, same targets: the same cases (the counts per exception type agree)."""
    args = ["--seconds", "0.01", "--seed", "5", "--targets", "_C.gemm,ops.softmax", "--batch", "30"]
    a, _ = _run(args, tmp_path, timeout=120)
    b, _ = _run(args, tmp_path, timeout=120)
    assert a.returncode == b.returncode == 0, a.stderr + b.stderr
    strip = [line.split(" cases in ")[0] + line.split("0 crashes")[1] for line in (a.stdout.splitlines()[1],
                                                                                   b.stdout.splitlines()[1])]
    assert strip[0] == strip[1]
