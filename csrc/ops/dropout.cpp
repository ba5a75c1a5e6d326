// Inverted dropout: y = x * m / (1 - p), m_i ~ Bernoulli(1 - p), the same m reused by backward.
//
// Random bits: splitmix64 (Steele, Lea, Flood, "Fast splittable pseudorandom number
// generators", OOPSLA 2014) evaluated at counter seed + (i + 1) * 0x9E3779B97F4A7C15, i.e.
// the i-th output of a splitmix64 stream started at seed. Counter-based, so the mask of an
// element is independent of the thread that computes it.
#include "ops/dropout.h"

#include "runtime/parallel.h"

namespace pydl::ops {

static inline uint64_t splitmix64_at(uint64_t seed, uint64_t i) {
  uint64_t z = seed + (i + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// keep iff u >= p with u = bits53 * 2^-53 in [0, 1): P(keep) = 1 - p up to 2^-53.
static inline uint64_t threshold(double p) {
  double t = p * 9007199254740992.0;  // 2^53
  return t >= 9007199254740992.0 ? (uint64_t(1) << 53) : static_cast<uint64_t>(t);
}

static constexpr int64_t kGrain = 1 << 15;  // elements per thread at least

// mask is (n,).
void dropout_mask(uint8_t* mask, int64_t n, double p, uint64_t seed) {
  const uint64_t thr = threshold(p);
  runtime::parallel_for(n, kGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) mask[i] = (splitmix64_at(seed, uint64_t(i)) >> 11) >= thr;
  });
}

// y, mask, x are (n,).
template <class T>
void dropout_forward(T* y, uint8_t* mask, const T* x, int64_t n, double p, uint64_t seed) {
  dropout_mask(mask, n, p, seed);
  const T scale = p < 1.0 ? T(1.0 / (1.0 - p)) : T(0);
  runtime::parallel_for(n, kGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) y[i] = mask[i] ? x[i] * scale : T(0);
  });
}

// dx, dy, mask are (n,).
template <class T>
void dropout_backward(T* dx, const T* dy, const uint8_t* mask, int64_t n, double p) {
  const T scale = p < 1.0 ? T(1.0 / (1.0 - p)) : T(0);
  runtime::parallel_for(n, kGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) dx[i] = mask[i] ? dy[i] * scale : T(0);
  });
}

template void dropout_forward<float>(float*, uint8_t*, const float*, int64_t, double, uint64_t);
template void dropout_forward<double>(double*, uint8_t*, const double*, int64_t, double, uint64_t);
template void dropout_backward<float>(float*, const float*, const uint8_t*, int64_t, double);
template void dropout_backward<double>(double*, const double*, const uint8_t*, int64_t, double);

}  // namespace pydl::ops
