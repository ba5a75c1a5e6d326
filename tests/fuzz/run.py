"""Run the fuzz harness for a bounded time (docs/RELIABILITY.md "Fuzzing").

    python tests/fuzz/run.py --seconds 60 --seed 1            # what CI runs (PYDL_FUZZ_SECONDS)
    python tests/fuzz/run.py --seconds 3600 --seed 7          # longer, on demand
    python tests/fuzz/run.py --targets '_C.cross*' --seed 3   # some targets (fnmatch patterns)
    python tests/fuzz/run.py --list                            # the target names

Every target is a hypothesis test over ``st.data()`` (targets.py builds a plausible call,
mutate.py makes it hostile). Targets run round-robin, ``--batch`` examples each per round, each
round with its own hypothesis seed derived from ``--seed``, the target and the round number,
so a run replays exactly. A case passes when the call returns or raises an ordinary Python
exception; an exception type outside ``EXPECTED`` (AttributeError, ZeroDivisionError,
SystemError, ...) is reported as *unexpected* and fails the run with ``--strict``. A crash kills
the process: faulthandler prints the Python stack, and ``--trace FILE`` holds the last case.
The run's own address space is capped (``--memory-gb``, not under ASan) so a huge allocation is
a MemoryError, never a machine-wide OOM.

Prints ``fuzz: <cases> cases ... 0 crashes`` and exits 0 (or 1 with unexpected exceptions under
``--strict``).
"""
import argparse
import collections
import faulthandler
import fnmatch
import os
import resource
import sys
import time
import warnings
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

faulthandler.enable()

import numpy as np  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings, strategies as st  # noqa: E402
from hypothesis import seed as hypothesis_seed  # noqa: E402
from hypothesis.errors import HypothesisException  # noqa: E402

import pydl  # noqa: E402
import targets  # noqa: E402

# What a hostile call may raise. MemoryError: a lazily huge array that something tried to
# materialize under the address-space cap. OSError: save/load on missing or odd paths.
EXPECTED = (TypeError, ValueError, RuntimeError, OverflowError, MemoryError, IndexError, KeyError, BufferError,
            OSError, NotImplementedError)


class Stats:
    def __init__(self):
        self.cases = 0
        self.returned = 0
        self.expected = collections.Counter()
        self.unexpected = collections.Counter()
        self.first_unexpected = {}
        self.per_target = collections.Counter()
        self.seconds = collections.Counter()     # time spent per target
        self.slow = {}                           # target -> (seconds, case) of its slowest case over --case-seconds


def _under_asan():
    try:
        with open("/proc/self/maps") as f:
            return "libasan" in f.read()
    except OSError:
        return False


def _case_seed(seed, name, rnd):
    return zlib.crc32(f"{seed}:{name}:{rnd}".encode())


def make_test(name, build, stats, args, trace_fd):
    @settings(max_examples=args.batch, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck), report_multiple_bugs=False)
    @given(st.data())
    def case(data):
        g = targets.Gen(data, st)
        t0 = time.monotonic()
        stats.cases += 1
        stats.per_target[name] += 1
        call = None
        try:
            call = targets.build_call(g, build)
            if trace_fd is not None:
                desc = f"{stats.cases} {name}: " + (call.describe() if isinstance(call, targets.Call) else "scenario")
                os.pwrite(trace_fd, desc.encode()[:4000].ljust(4000) + b"\n", 0)
            call()
            stats.returned += 1
        except HypothesisException:
            raise
        except EXPECTED as e:
            stats.expected[type(e).__name__] += 1
        except Exception as e:  # an ordinary exception, but not one a hostile argument should give
            key = (name, type(e).__name__)
            stats.unexpected[key] += 1
            if key not in stats.first_unexpected:
                desc = call.describe() if isinstance(call, targets.Call) else "scenario"
                stats.first_unexpected[key] = f"{e!r:.300}\n      case: {desc:.600}"
        finally:
            dt = time.monotonic() - t0
            stats.seconds[name] += dt
            if dt > args.case_seconds and dt > stats.slow.get(name, (0.0,))[0]:
                desc = call.describe() if isinstance(call, targets.Call) else "scenario"
                stats.slow[name] = (dt, f"{desc:.600}")
            if pydl.get_num_threads() > 8:  # a fuzzed set_num_threads: keep the process small
                pydl.set_num_threads(2)
    return case


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=float(os.environ.get("PYDL_FUZZ_SECONDS", 60)))
    p.add_argument("--seed", type=int, default=int(os.environ.get("PYDL_FUZZ_SEED", 0)))
    p.add_argument("--targets", default="*", help="comma-separated fnmatch patterns of target names")
    p.add_argument("--batch", type=int, default=25, help="hypothesis examples per target per round")
    p.add_argument("--strict", action="store_true", help="exit 1 on exception types outside EXPECTED")
    p.add_argument("--trace", help="file holding the case being run (the culprit after a crash)")
    p.add_argument("--memory-gb", type=float, default=8.0, help="address-space cap (0: none; ignored under ASan)")
    p.add_argument("--case-seconds", type=float, default=5.0,
                   help="a case slower than this is reported (a generator that builds too much work)")
    p.add_argument("--list", action="store_true")
    args = p.parse_args(argv)

    all_t = targets.all_targets()
    pats = args.targets.split(",")
    chosen = {n: b for n, b in all_t.items() if any(fnmatch.fnmatchcase(n, q) for q in pats)}
    chosen.update({n: b for n, b in targets.SELFTEST.items() if n in pats})  # only when named exactly
    if args.list:
        print("\n".join(chosen))
        return 0
    if not chosen:
        print(f"fuzz: no target matches {args.targets!r}", file=sys.stderr)
        return 2
    if args.memory_gb > 0 and not _under_asan():
        cap = int(args.memory_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    warnings.simplefilter("ignore")
    np.seterr(all="ignore")
    trace_fd = os.open(args.trace, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644) if args.trace else None

    stats = Stats()
    print(f"fuzz: {len(chosen)} targets, seed {args.seed}, {args.seconds:g} s, isa {pydl._C.active_isa()}, "
          f"pydl {pydl.__file__}", flush=True)
    start = time.monotonic()
    deadline = start + args.seconds
    rnd = 0
    while time.monotonic() < deadline:
        for name, build in chosen.items():
            if time.monotonic() >= deadline:
                break
            test = make_test(name, build, stats, args, trace_fd)
            hypothesis_seed(_case_seed(args.seed, name, rnd))(test)()
        rnd += 1
    elapsed = time.monotonic() - start

    n_unexp = sum(stats.unexpected.values())
    print(f"fuzz: {stats.cases} cases in {elapsed:.1f} s ({stats.cases / max(elapsed, 1e-9):.0f} cases/s), "
          f"{len(chosen)} targets, {rnd} rounds, 0 crashes; returned {stats.returned}, "
          f"expected exceptions {sum(stats.expected.values())} {dict(stats.expected.most_common())}, "
          f"unexpected {n_unexp}", flush=True)
    slowest = ", ".join(f"{n} {t:.1f} s" for n, t in stats.seconds.most_common(5))
    print(f"fuzz: slowest targets: {slowest}")
    for name, (dt, desc) in sorted(stats.slow.items()):
        print(f"  slow case in {name}: {dt:.1f} s (over --case-seconds {args.case_seconds:g}): {desc}")
    for (name, exc), n in sorted(stats.unexpected.items()):
        print(f"  unexpected {exc} x{n} in {name}: {stats.first_unexpected[(name, exc)]}")
    return 1 if (args.strict and n_unexp) else 0


if __name__ == "__main__":
    sys.exit(main())
