#include "runtime/threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <new>
#include <thread>
#include <vector>

namespace pydl::runtime {
namespace {

void cpu_relax() {
#if defined(PYDL_X86)
  __builtin_ia32_pause();
#endif
}

// How long an idle worker polls for the next job before it sleeps: back-to-back parallel calls
// (the blocks of one GEMM, the layers of a training step) then find it awake.
constexpr auto kWorkerSpin = std::chrono::microseconds(50);

// Workers wait for a new generation (polling briefly, then on a condition variable) and claim
// chunks from a counter tagged with the generation. The caller runs chunk 0, then claims what is
// left itself, so it only ever waits for chunks a worker has actually started: a worker that is
// slow to wake (descheduled on a busy machine) never holds up a parallel call.
class Pool {
 public:
  explicit Pool(int workers) : limit_(workers) {
    for (int i = 0; i < workers; ++i) threads_.emplace_back([this, i] { loop(i); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lk(m_);
      stop_ = true;
      generation_.store(generation_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  int workers() const { return static_cast<int>(threads_.size()); }

  // Joins the workers numbered k and above (0 <= k < workers()). Only between jobs: the caller
  // holds g_busy, so no run() is in flight and no worker holds a chunk.
  void shrink(int k) {
    {
      std::lock_guard<std::mutex> lk(m_);
      limit_ = k;
    }
    cv_.notify_all();
    for (size_t i = static_cast<size_t>(k); i < threads_.size(); ++i) threads_[i].join();
    threads_.resize(static_cast<size_t>(k));
  }

  // Runs job(0..nchunks-1), each chunk exactly once; chunk 0 on the caller.
  void run(int nchunks, const std::function<void(int)>& job) {
    uint64_t gen;
    {
      std::lock_guard<std::mutex> lk(m_);
      job_ = &job;
      nchunks_ = nchunks;
      done_.store(0, std::memory_order_relaxed);
      gen = (generation_.load(std::memory_order_relaxed) + 1) & 0xffffffffu;
      claim_.store((gen << 32) | 1u, std::memory_order_relaxed);  // chunk 0 is the caller's
      generation_.store(gen, std::memory_order_release);
    }
    cv_.notify_all();
    job(0);
    for (int c; (c = claim(gen, nchunks)) >= 0;) {
      job(c);
      done_.fetch_add(1, std::memory_order_acq_rel);
    }
    // The other chunks are running on workers: short spin, then sleep.
    for (int spin = 0; done_.load(std::memory_order_acquire) != nchunks - 1; ++spin) {
      cpu_relax();
      if (spin > 20000) {
        std::unique_lock<std::mutex> lk(m_);
        done_cv_.wait(lk, [&] { return done_.load(std::memory_order_acquire) == nchunks - 1; });
        break;
      }
    }
  }

 private:
  // Next unclaimed chunk of generation `gen`, or -1 when all are taken or the generation is over.
  int claim(uint64_t gen, int nchunks) {
    uint64_t v = claim_.load(std::memory_order_acquire);
    for (;;) {
      if ((v >> 32) != gen || static_cast<int>(v & 0xffffffffu) >= nchunks) return -1;
      if (claim_.compare_exchange_weak(v, v + 1, std::memory_order_acq_rel)) return static_cast<int>(v & 0xffffffffu);
    }
  }

  void loop(int id) {
    uint64_t seen = 0;
    for (;;) {
      if (generation_.load(std::memory_order_acquire) == seen) {
        const auto t0 = std::chrono::steady_clock::now();
        for (int i = 1; generation_.load(std::memory_order_acquire) == seen; ++i) {
          cpu_relax();
          if ((i & 127) == 0 && std::chrono::steady_clock::now() - t0 > kWorkerSpin) break;
        }
      }
      const std::function<void(int)>* job;
      int nchunks;
      {
        std::unique_lock<std::mutex> lk(m_);
        cv_.wait(lk, [&] { return stop_ || id >= limit_ || generation_.load(std::memory_order_relaxed) != seen; });
        if (stop_ || id >= limit_) return;
        seen = generation_.load(std::memory_order_relaxed);
        job = job_;
        nchunks = nchunks_;
      }
      // job is dereferenced only after a successful claim: the caller is then still waiting for it.
      for (int c; (c = claim(seen, nchunks)) >= 0;) {
        (*job)(c);
        if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == nchunks - 1) {
          std::lock_guard<std::mutex> lk(m_);
          done_cv_.notify_all();
        }
      }
    }
  }

  std::vector<std::thread> threads_;
  std::mutex m_;
  std::condition_variable cv_, done_cv_;
  std::atomic<uint64_t> generation_{0};   // 32-bit generation number, changed under m_
  std::atomic<uint64_t> claim_{0};        // generation << 32 | next chunk to claim
  std::atomic<int> done_{0};              // chunks other than 0 finished in this generation
  bool stop_ = false;
  int limit_;  // workers numbered limit_ and above exit (shrink)
  const std::function<void(int)>* job_ = nullptr;
  int nchunks_ = 0;
};

int default_threads() {
  if (const char* s = std::getenv("PYDL_NUM_THREADS")) {
    long n = std::strtol(s, nullptr, 10);  // (atoi overflows on huge values)
    if (n >= 1) return n > kMaxThreads ? kMaxThreads : static_cast<int>(n);
  }
  return available_cpus();
}

std::atomic<int> g_num_threads{0};       // 0: not yet read
Pool* g_pool = nullptr;                  // leaked in a forked child, never destroyed there
std::atomic<bool> g_busy{false};
std::once_flag g_atfork_once;

void after_fork_in_child() {
  // The parent's workers do not exist here. Forget the pool (leak it: its threads and locks
  // are unusable) and start over on the next parallel call.
  g_pool = nullptr;
  g_busy.store(false);
}

}  // namespace

int available_cpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n >= 1) return n;
  }
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n >= 1 ? static_cast<int>(n) : 1;
}

int get_num_threads() {
  int n = g_num_threads.load();
  if (n == 0) {
    n = default_threads();
    g_num_threads.store(n);
  }
  return n;
}

// Makes the pool hold at most `workers` threads, joining the others (none: no pool). Caller holds g_busy.
static void trim_pool(int workers) {
  if (!g_pool || g_pool->workers() <= workers) return;
  if (workers == 0) {
    delete g_pool;
    g_pool = nullptr;
  } else {
    g_pool->shrink(workers);
  }
}

void set_num_threads(int n) {
  n = n < 1 ? 1 : n > kMaxThreads ? kMaxThreads : n;
  g_num_threads.store(n);
  // Shrink now, so the surplus threads are gone when this returns (and a count of 1, which never
  // reaches the pool, still frees them). If a parallel call is running (another Python thread),
  // that call leaves the pool as it is and the next one trims it.
  bool expected = false;
  if (g_busy.compare_exchange_strong(expected, true)) {
    trim_pool(n - 1);
    g_busy.store(false);
  }
}

int threads_for(int64_t n, int64_t min_per_range) {
  if (min_per_range < 1) min_per_range = 1;
  int64_t t = n / min_per_range;
  int64_t nt = get_num_threads();
  if (t > nt) t = nt;
  return t < 1 ? 1 : static_cast<int>(t);
}

void run_ranges(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  int nchunks = get_num_threads();
  if (nchunks > n) nchunks = static_cast<int>(n);
  bool expected = false;
  if (nchunks <= 1 || !g_busy.compare_exchange_strong(expected, true)) {
    fn(0, n);
    return;
  }
  std::call_once(g_atfork_once, [] { pthread_atfork(nullptr, nullptr, after_fork_in_child); });
  // Grow to this call's chunks; a pool bigger than this call needs is kept (a small call after a
  // big one) unless the thread count went down since it was built: then join the surplus.
  if (!g_pool || g_pool->workers() < nchunks - 1) {
    delete g_pool;
    g_pool = new Pool(nchunks - 1);
  } else {
    const int keep = get_num_threads() - 1;  // (>= nchunks - 1 unless changed meanwhile)
    trim_pool(keep > nchunks - 1 ? keep : nchunks - 1);
  }
  auto job = [&](int c) {
    const int64_t lo = n * c / nchunks, hi = n * (c + 1) / nchunks;
    if (lo < hi) fn(lo, hi);
  };
  g_pool->run(nchunks, job);
  g_busy.store(false);
}

}  // namespace pydl::runtime
