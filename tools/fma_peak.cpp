// The FMA ceiling GEMM figures are measured against (docs/GEMM.md): float32 multiply-adds on
// independent chains, enough of them to cover the FMA latency at full throughput (AVX-512: 24 zmm
// chains; AVX2: 12 ymm chains), timed by the thread's CPU time so that other processes' turns on
// the core do not count. One build per vector width, from the compiler flags:
//
//   g++ -O2 -mavx512f tools/fma_peak.cpp -o /tmp/fma_peak_avx512 && /tmp/fma_peak_avx512
//   g++ -O2 -mavx2 -mfma tools/fma_peak.cpp -o /tmp/fma_peak_avx2 && /tmp/fma_peak_avx2
//
// GFLOP/s = chains x lanes x 2 flops x iterations / seconds, the best of 7 runs.
#include <cstdio>
#include <ctime>

#if defined(__AVX512F__)
constexpr int kLanes = 16, kChains = 24;
constexpr const char* kName = "zmm (AVX-512)";
#elif defined(__AVX2__) && defined(__FMA__)
constexpr int kLanes = 8, kChains = 12;
constexpr const char* kName = "ymm (AVX2)";
#else
#error "build with -mavx512f, or -mavx2 -mfma"
#endif

typedef float V __attribute__((vector_size(kLanes * sizeof(float))));

static double cpu_seconds() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

// a[i] = a[i] * x + y on every chain, `iters` times; returns GFLOP/s. The sum of the chains is
// returned through `sink` so that the loop is not removed.
static double run(long iters, float* sink) {
  V a[kChains];
  const V x = V{} + 0.999f, y = V{} + 1e-4f;
  for (int i = 0; i < kChains; ++i) a[i] = V{} + float(i);
  const double t0 = cpu_seconds();
  for (long n = 0; n < iters; ++n) {
#pragma GCC unroll 24
    for (int i = 0; i < kChains; ++i) a[i] = a[i] * x + y;  // contracted to one FMA (GNU C++ default)
  }
  const double t = cpu_seconds() - t0;
  float s = 0;
  for (int i = 0; i < kChains; ++i)
    for (int l = 0; l < kLanes; ++l) s += a[i][l];
  *sink = s;
  return double(iters) * kChains * kLanes * 2 / t * 1e-9;
}

int main() {
  double best = 0;
  float sink = 0;
  for (int r = 0; r < 7; ++r) {
    const double g = run(400000000L / kLanes, &sink);
    best = g > best ? g : best;
  }
  std::printf("float32 FMA loop, %s, %d chains: %.1f GFLOP/s (sum %g)\n", kName, kChains, best, double(sink));
  return 0;
}
