// Inverted dropout with a counter-based RNG: element i of a call seeded with s is kept iff
// u(s, i) >= p, where u is the top bits of splitmix64(s + i * golden) scaled to [0, 1).
// The decision for an element depends only on (seed, index), so any thread split gives the
// same mask, and one 64-bit seed per forward (pydl._random.next_seed()) makes it reproducible.
#pragma once

#include <cstdint>

namespace pydl::ops {

// x, y are (n,), mask is (n,) uint8. mask[i] = keep(seed, i); y = x * mask * scale,
// scale = 1 / (1 - p) (0 when p == 1). y may alias x.
template <class T>
void dropout_forward(T* y, uint8_t* mask, const T* x, int64_t n, double p, uint64_t seed);

// dx = dy * mask * scale over n elements (dx may alias dy).
template <class T>
void dropout_backward(T* dx, const T* dy, const uint8_t* mask, int64_t n, double p);

// The reference mask generator (the oracle in tests): mask[i] = keep(seed, i).
void dropout_mask(uint8_t* mask, int64_t n, double p, uint64_t seed);

}  // namespace pydl::ops
