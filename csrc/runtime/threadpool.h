// A small fork-safe thread pool. Kernels do not call it directly: they split their work with
// runtime/parallel.h.
//
// run_ranges splits [0, n) into contiguous ranges, one per thread, and calls fn(lo, hi) on each;
// the caller's thread takes the first range, and any range no worker has started by the time it
// is done (so a descheduled worker never holds the caller up).
//
// The pool grows to the chunks a call needs and shrinks when the thread count is lowered, so it
// never holds more than get_num_threads() - 1 workers once idle.
//
// Fork safety: a child of fork() starts with no worker threads; the pool is rebuilt lazily on
// its first parallel call. A run_ranges issued while the pool is busy (another Python
// thread, or a nested call) runs serially on the calling thread instead of waiting.
#pragma once

#include <cstdint>
#include <functional>

namespace pydl::runtime {

int get_num_threads();
// n >= 1. Takes effect at the next parallel call. Lowering it joins the surplus workers before
// returning (or, if a parallel call is running on another thread, at the next parallel call).
// Thread counts are clamped to [1, kMaxThreads] (each thread is a real worker: a huge count would
// exhaust the process's threads and hang). pydl.set_num_threads rejects larger values.
constexpr int kMaxThreads = 1024;
void set_num_threads(int n);
// Threads the machine offers this process (sched_getaffinity).
int available_cpus();

void run_ranges(int64_t n, const std::function<void(int64_t, int64_t)>& fn);

// Number of ranges worth using for n items when each should hold at least min_per_range items (>= 1).
int threads_for(int64_t n, int64_t min_per_range);

}  // namespace pydl::runtime
