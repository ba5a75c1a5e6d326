// How kernels split work over threads: the two helpers below, nothing else.
//
// The determinism rule: split outputs (elements, rows, channels, GEMM tiles, fixed optimizer
// blocks), never a reduction dimension, and compute each output the same way whichever range
// it lands in. Results are then bitwise identical for any thread count. Where the arithmetic of
// an item depends on how items are grouped (the optimizer's vector loops), make the items fixed
// blocks whose size does not depend on the thread count, and split the list of blocks.
//
// Baseline translation units only (templates: an ISA translation unit including this header
// could hand its AVX-512 copy of an instantiation to every caller, numpy#25274).
#pragma once

#include <atomic>
#include <cstdint>

#include "runtime/threadpool.h"

namespace pydl::runtime {

// fn(lo, hi) on contiguous ranges covering [0, n): on the calling thread alone when n < 2 * grain
// (threading does not pay below `grain` items per thread), else one range per thread.
template <class Fn>
void parallel_for(int64_t n, int64_t grain, const Fn& fn) {
  if (n <= 0) return;
  if (threads_for(n, grain) <= 1) {
    fn(int64_t(0), n);
    return;
  }
  run_ranges(n, [&](int64_t lo, int64_t hi) { fn(lo, hi); });
}

// fn(i, i + 1) for every i in [0, n), items claimed one at a time from a shared counter by
// `nthreads` threads (the caller included): for items of uneven cost, or when a descheduled
// thread should delay only the item it holds. nthreads <= 1: fn(0, n) on the calling thread.
template <class Fn>
void parallel_for_dynamic(int64_t n, int nthreads, const Fn& fn) {
  if (n <= 0) return;
  if (nthreads <= 1 || n == 1) {
    fn(int64_t(0), n);
    return;
  }
  std::atomic<int64_t> next{0};
  run_ranges(nthreads, [&](int64_t, int64_t) {
    for (int64_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < n;) fn(i, i + 1);
  });
}

}  // namespace pydl::runtime
