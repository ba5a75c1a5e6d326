"""Shared benchmark helpers (pytest-benchmark).

Run a bench file with, e.g.::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m pytest bench/bench_gemm.py --benchmark-enable

(unsetting those lets numpy's OpenBLAS pick its AVX-512 kernel on this machine kind; the header
line shows the kernel threadpoolctl reports). ``--threads N`` (default 1) sets the threads of
pydl, numpy's BLAS and torch alike. ``throughput`` records each timing; a table of throughput
and the ratio to the baseline measured in the same run is printed at the end.
"""
import collections
import os
import sys
import time

import numpy as np
import pytest

import pydl

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None

try:
    from threadpoolctl import threadpool_info, threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_info = threadpool_limits = None

# the bench files import their shared helpers (_baselines) by name, as they can when run as scripts;
# under --import-mode=importlib that needs bench/ on sys.path (the checkout itself stays off it)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def pytest_collect_file(file_path, parent):
    # bench_*.py files are collected as test modules (the test session itself only looks in tests/)
    if file_path.suffix == ".py" and file_path.name.startswith("bench_") and parent.session.isinitpath(file_path):
        return None  # given explicitly: pytest collects it already
    if file_path.suffix == ".py" and file_path.name.startswith("bench_"):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


def pytest_addoption(parser):
    parser.addoption("--threads", type=int, default=1, help="threads for pydl, numpy's BLAS and torch (default 1)")


def blas_kernels():
    """[(internal_api, architecture, num_threads)] of the BLAS libraries numpy has loaded."""
    if threadpool_info is None:
        return []
    return [(i.get("internal_api"), i.get("architecture"), i.get("num_threads"))
            for i in threadpool_info() if i.get("user_api") == "blas"]


def pytest_report_header(config):
    info = pydl.cpu_info()
    lines = [f"pydl isa={info['isa']} (detected {info['detected_isa']}), bench threads={config.getoption('--threads')}",
             f"numpy {np.__version__} BLAS: {blas_kernels() or 'unknown (threadpoolctl missing)'}",
             f"torch: {torch.__version__ if torch is not None else 'not installed'}"]
    return lines


@pytest.fixture(scope="session")
def bench_threads(request):
    """Threads for every library in the run; pydl, numpy's BLAS and torch are set to it."""
    n = request.config.getoption("--threads")
    before = pydl.get_num_threads()
    pydl.set_num_threads(n)
    limits = threadpool_limits(n) if threadpool_limits is not None else None
    _THROUGHPUT.blas = blas_kernels()  # as the benchmarks ran (the summary prints it)
    if torch is not None:
        torch_before = torch.get_num_threads()
        torch.set_num_threads(n)
    yield n
    pydl.set_num_threads(before)
    if limits is not None:
        limits.restore_original_limits()
    if torch is not None:
        torch.set_num_threads(torch_before)


@pytest.fixture
def settle(bench_threads):
    """Call before timing: with several threads, lets other libraries' workers stop spinning.

    OpenBLAS and torch's OpenMP workers busy-wait for a while after each call; on a 2-core machine
    that steals the core the next library's worker needs.
    """
    def wait(seconds=0.5):
        if bench_threads > 1:
            time.sleep(seconds)
    return wait


class Throughput:
    """Collects (group, impl) -> best seconds and work; prints rate and ratio to the baseline."""

    def __init__(self):
        self.rows = collections.OrderedDict()
        self.blas = None

    def record(self, benchmark, group, impl, work, unit="GFLOP/s", scale=1e-9, baseline="numpy"):
        """Store benchmark's best time for `impl` in `group`; work / time * scale is the rate."""
        stats = getattr(benchmark, "stats", None)
        if stats is None:  # --benchmark-disable: nothing was timed
            return
        best = stats.stats.min
        rate = work / best * scale
        benchmark.extra_info[unit] = round(rate, 2)
        self.rows.setdefault(group, {"unit": unit, "baseline": baseline, "impls": {}})["impls"][impl] = rate

    def lines(self):
        out = []
        for group, g in self.rows.items():
            base = g["impls"].get(g["baseline"])
            parts = []
            for impl, rate in g["impls"].items():
                ratio = f" ({rate / base:.2f}x)" if base and impl != g["baseline"] else ""
                parts.append(f"{impl} {rate:.1f}{ratio}")
            out.append(f"{group:<40} {g['unit']}: " + ", ".join(parts))
        return out


_THROUGHPUT = Throughput()


@pytest.fixture(scope="session")
def throughput():
    return _THROUGHPUT


def pytest_terminal_summary(terminalreporter):
    lines = _THROUGHPUT.lines()
    if lines:
        terminalreporter.section("throughput (ratio to the baseline measured in the same run)")
        terminalreporter.write_line(f"numpy BLAS during the run: {_THROUGHPUT.blas or blas_kernels()}")
        for line in lines:
            terminalreporter.write_line(line)
