#!/usr/bin/env bash
# Build pydl._C with AddressSanitizer + UndefinedBehaviorSanitizer (gcc) in a temporary
# directory, never the source tree, and run the kernel tests under it. Must be clean.
#
#   tools/sanitize.sh                 # the CI subset (SANITIZE_TESTS below), ~5 min on 2 cores
#   tools/sanitize.sh tests/ops -k gemm   # any pytest arguments instead of the subset
#
# Environment:
#   PYDL_SANITIZE_KEEP=1      keep the temporary directory (its path is printed)
#   PYDL_SANITIZE_FUZZ=N      seconds of the fuzz harness under the sanitizers (default 30, 0: none)
#   PYDL_SANITIZE_JOBS=N      parallel compile jobs (default: CPUs)
#
# Needs gcc/g++ with libasan and libubsan (installed with apt-get when missing, as root), and a
# Python with numpy, pybind11, Cython, pytest and hypothesis (a venv is created in the temporary
# directory and filled with pip when the current Python lacks them).
#
# Runtime notes (docs/RELIABILITY.md "Sanitizers"):
# - the interpreter is not instrumented, so the ASan runtime is LD_PRELOADed (it must be the
#   first library loaded); libubsan comes in as a dependency of the instrumented _C;
# - detect_leaks=0: CPython frees neither its interned objects nor its modules at exit, so
#   LeakSanitizer would report the interpreter itself; pydl's leaks are tested separately;
# - allocator_may_return_null=1: a huge allocation is a MemoryError (as without ASan), not an
#   ASan abort; tests that ask for too much memory on purpose keep working;
# - halt_on_error / -fno-sanitize-recover=all: the first report ends the process with an error;
# - libstdc++ is preloaded after the ASan runtime (see below);
# - torch is made unimportable (its comparisons run in the normal CI pass): loading it under
#   the preloaded ASan runtime is slow and tests nothing of pydl's.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/pydl-sanitize.XXXXXX")
if [ "${PYDL_SANITIZE_KEEP:-0}" = 1 ]; then
  echo "sanitize: keeping $work"
else
  trap 'rm -rf "$work"' EXIT
fi
start=$(date +%s)

# The kernel tests: every op family, the optimizer kernels, a few layers, the fused MLP step,
# bad input, runtime.
SANITIZE_TESTS=(
  tests/ops
  tests/optim/test_kernels.py
  tests/nn/test_layers.py
  tests/nn/test_batchnorm.py
  tests/nn/test_losses.py
  tests/nn/test_inplace.py
  tests/nn/test_sequential_dense.py
  tests/train/test_step.py
  tests/test_bad_input.py
  tests/runtime
  tests/test_concurrency.py
)

# ---------------------------------------------------------------- toolchain
need_apt=()
command -v g++ >/dev/null 2>&1 || need_apt+=(g++)
if command -v g++ >/dev/null 2>&1; then
  [ -e "$(g++ -print-file-name=libasan.so)" ] && [ "$(g++ -print-file-name=libasan.so)" != libasan.so ] || need_apt+=(libasan8)
  [ -e "$(g++ -print-file-name=libubsan.so)" ] && [ "$(g++ -print-file-name=libubsan.so)" != libubsan.so ] || need_apt+=(libubsan1)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "sanitize: installing ${need_apt[*]} with apt-get"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
asan_rt=$(g++ -print-file-name=libasan.so)
asan_rt=$(readlink -f "$asan_rt")
echo "sanitize: $(g++ --version | head -1); ASan runtime $asan_rt"

# ---------------------------------------------------------------- python
py=${PYTHON:-python3}
if ! "$py" -c "import numpy, pybind11, Cython, pytest, hypothesis" >/dev/null 2>&1; then
  echo "sanitize: creating a venv with the build and test requirements"
  "$py" -m venv "$work/venv"
  py="$work/venv/bin/python"
  "$py" -m pip install -q --upgrade pip
  "$py" -m pip install -q "numpy>=1.23" "pybind11>=2.12" "Cython>=3.0" "setuptools>=77" wheel \
    "pytest>=7" "hypothesis>=6" "pytest-benchmark>=4"
fi

# ---------------------------------------------------------------- build (a copy of the sources)
src="$work/src"
mkdir -p "$src"
(cd "$repo" && tar --exclude='*.so' --exclude='__pycache__' --exclude='*.o' -cf - \
   setup.py pyproject.toml README.md csrc pydl tests) | (cd "$src" && tar -xf -)
san="-fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all -fno-omit-frame-pointer -g"
# A compiler wrapper puts the sanitizer flags on every compile and link, and turns setup.py's -O3
# into -O1: the usual level for ASan (precise reports), and a build several times faster than
# -O3 with sanitizers. The ISA flags of *_avx2.cpp / *_avx512.cpp are kept.
cat >"$work/cxx" <<EOF
#!/bin/sh
for a do
  shift
  case "\$a" in -O3) a=-O1;; -g0) a=-g;; esac   # pybind11 adds -g0: keep line numbers in reports
  set -- "\$@" "\$a"
done
exec g++ $san "\$@"
EOF
chmod +x "$work/cxx"
echo "sanitize: building in $src with: $san -O1"
t0=$(date +%s)
(cd "$src" && CC="$work/cxx" CXX="$work/cxx" LDSHARED="$work/cxx -shared" \
   PYDL_BUILD_JOBS="${PYDL_SANITIZE_JOBS:-0}" "$py" setup.py build_ext --inplace >"$work/build.log" 2>&1) || {
  tail -50 "$work/build.log"; echo "sanitize: build failed"; exit 1; }
echo "sanitize: built in $(( $(date +%s) - t0 )) s"

cat >"$src/_pydl_no_torch.py" <<'EOF'
"""pytest plugin for the sanitizer run: `import torch` raises ImportError (tests skip)."""
import sys

sys.modules["torch"] = None
EOF

# ---------------------------------------------------------------- run
# libstdc++ is preloaded too: the interpreter does not link it, and ASan's __cxa_throw interceptor
# must find the real one at startup ("CHECK failed: ... real___cxa_throw" on the first C++ throw).
stdcxx=$(readlink -f "$(g++ -print-file-name=libstdc++.so)")
export LD_PRELOAD="$asan_rt $stdcxx"
# Reports go to files as well (pytest captures stderr, and a halted process cannot print it).
# No RLIMIT_AS under ASan (its shadow needs terabytes of address space), so one allocation is
# capped instead: 2 GiB, above which malloc/new fail (MemoryError). With 8 GiB, three valid but
# hostile fuzz allocations reached 24 GB and the OOM killer ended the run.
export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:max_allocation_size_mb=2048:halt_on_error=1:abort_on_error=0:print_summary=1:log_path=$work/report"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$work/report"
export PYTHONFAULTHANDLER=1
cd "$src"
"$py" - <<'EOF'
import os, pydl, pydl._C
here = os.getcwd()
assert pydl.__file__.startswith(here), f"pydl imported from {pydl.__file__}, not the sanitized copy"
maps = open("/proc/self/maps").read()
assert "libasan" in maps and "libubsan" in maps, "sanitizer runtimes are not loaded"
print("sanitize: pydl", pydl.__file__, pydl.cpu_info())
EOF

status=0
if [ $# -gt 0 ]; then
  "$py" -m pytest -q -p no:cacheprovider -p _pydl_no_torch "$@" || status=$?
else
  t0=$(date +%s)
  "$py" -m pytest -q -p no:cacheprovider -p _pydl_no_torch "${SANITIZE_TESTS[@]}" || status=$?
  echo "sanitize: tests took $(( $(date +%s) - t0 )) s"
  fuzz=${PYDL_SANITIZE_FUZZ:-30}
  if [ "$status" = 0 ] && [ "$fuzz" -gt 0 ]; then
    for isa in avx2 generic; do  # the default ISA ran above; the others through the fuzz harness
      PYDL_ISA=$isa PYTHONPATH="$src" "$py" tests/fuzz/run.py --seconds $(( fuzz / 2 )) --seed 1 || status=$?
    done
  fi
fi
# A report ends its process with an error, so a failing test or fuzz run already set status; the
# files are for reading. Expected ones come from the xfail cases of tests/test_concurrency.py.
if ls "$work"/report.* >/dev/null 2>&1; then
  if [ "$status" != 0 ]; then
    echo "sanitize: sanitizer reports:"; cat "$work"/report.*
  else
    echo "sanitize: $(ls "$work"/report.* | wc -l) log(s) of processes that passed: warnings for refused huge" \
         "allocations (MemoryError), reports of xfail cases (first lines):"
    for f in "$work"/report.*; do sed -n 2p "$f"; done
  fi
fi
echo "sanitize: total $(( $(date +%s) - start )) s, status $status"
exit $status
