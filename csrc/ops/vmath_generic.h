// Portable vector primitives (GCC/Clang vector extensions: 4 floats, one SSE2 register on x86-64,
// one NEON register on ARM), then the shared algorithms (vmath_core.inc) in pydl::ops::generic:
// the same arithmetic as the SIMD paths, branch-free, with no ISA flag beyond the baseline.
// Include only from *_generic.cpp files.
#pragma once

#include <cstdint>
#include <cstring>
#if defined(__SSE2__)
#include <emmintrin.h>  // baseline on x86-64: minps / maxps, which GCC does not form from a ternary
#endif

#include "ops/vmath.h"

namespace pydl::ops::generic {

constexpr int kLanes = 4;
typedef float V __attribute__((vector_size(16)));     // 4 floats
typedef int32_t VI __attribute__((vector_size(16)));  // 4 int32; also the lane mask (-1 / 0)
typedef uint32_t VU __attribute__((vector_size(16)));
using M = VI;

static inline V set1(float a) { return V{a, a, a, a}; }
static inline VI set1i(int32_t a) { return VI{a, a, a, a}; }
static inline V loadu(const float* p) {
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
static inline void storeu(float* p, V v) { std::memcpy(p, &v, sizeof v); }
static inline VU bits(V a) { return reinterpret_cast<VU>(a); }  // vector casts keep the bits
static inline V from_bits(VU u) { return reinterpret_cast<V>(u); }
static inline M lanes_below(int64_t n) { return VI{0, 1, 2, 3} < set1i(static_cast<int32_t>(n)); }
// Lanes [0, n) from p (0 < n < kLanes), the others set to fill (never read from memory).
static inline V load_part(const float* p, int64_t n, float fill) {
  V v = set1(fill);
  for (int64_t j = 0; j < n; ++j) v[j] = p[j];
  return v;
}
static inline void store_part(float* p, V v, int64_t n) {
  for (int64_t j = 0; j < n; ++j) p[j] = v[j];
}
static inline V keep_first(V v, int64_t n) { return from_bits(bits(v) & reinterpret_cast<VU>(lanes_below(n))); }

static inline V add(V a, V b) { return a + b; }
static inline V sub(V a, V b) { return a - b; }
static inline V mul(V a, V b) { return a * b; }
static inline V div(V a, V b) { return a / b; }
// No FMA at the baseline ISA: a product and a sum, each rounded (GCC does not contract a*b + c
// under -std=c++17).
static inline V fma(V a, V b, V c) { return a * b + c; }
static inline V fnma(V a, V b, V c) { return c - a * b; }
// Same NaN rule as x86 min/max: the second operand when either is NaN.
#if defined(__SSE2__)
static inline __m128 sse(V a) { return reinterpret_cast<__m128>(a); }
static inline V min(V a, V b) { return reinterpret_cast<V>(_mm_min_ps(sse(a), sse(b))); }
static inline V max(V a, V b) { return reinterpret_cast<V>(_mm_max_ps(sse(a), sse(b))); }
#else
static inline V min(V a, V b) { return a < b ? a : b; }
static inline V max(V a, V b) { return a > b ? a : b; }
#endif
static inline V abs(V a) { return from_bits(bits(a) & 0x7fffffffu); }
static inline V sign_of(V a) { return from_bits(bits(a) & 0x80000000u); }
static inline V or_bits(V a, V b) { return from_bits(bits(a) | bits(b)); }
static inline M lt(V a, V b) { return a < b; }
static inline M gt(V a, V b) { return a > b; }
static inline V select(M m, V a, V b) { return m ? a : b; }
// Round to nearest (ties to even) for |a| < 2^22 by adding and removing 1.5 * 2^23; NaN stays NaN.
static inline V round_int(V a) { return (a + 12582912.0f) - 12582912.0f; }
static inline VI to_int(V n) { return __builtin_convertvector(n, VI) & (n == n); }  // n integral; NaN -> 0
static inline V pow2i(VI n) { return from_bits(reinterpret_cast<VU>(n + 127) << 23); }
// 2^n for integral n in [-126, 127].
static inline V pow2(V n) { return pow2i(to_int(n)); }
// p * 2^n for integral n in [-150, 128]: (p * 2^(n>>1)) * 2^(n - (n>>1)), one rounding.
static inline V ldexp(V p, V n) {
  VI ni = to_int(n), n1 = ni >> 1;
  return p * pow2i(n1) * pow2i(ni - n1);
}
static inline V recip(V d) { return 1.0f / d; }
// Interval index floor(a) clamped to [0, 7] for a >= 0 (NaN gives 7).
static inline VI index8(V a) { return __builtin_convertvector(min(a, set1(7.0f)), VI); }
// table[idx] per lane, table of 8 floats (no gather before AVX2: one load per lane).
static inline V lookup8(const float* table, VI idx) {
  return V{table[idx[0]], table[idx[1]], table[idx[2]], table[idx[3]]};
}
static inline V to_float(VI i) { return __builtin_convertvector(i, V); }
static inline float hsum(V v) { return (v[0] + v[2]) + (v[1] + v[3]); }
static inline float hmax(V v) {
  V m = max(v, V{v[2], v[3], v[0], v[1]});
  return m[0] > m[1] ? m[0] : m[1];
}
// Bits of k shifted left by 23: with k = v + (1.5 * 2^23 + 127) rounded to an integer, the
// float 2^(k - 1.5*2^23 - 127) for exponents in [-127, 128) (the magic-number trick).
static inline V shl23(V k) { return from_bits(bits(k) << 23); }
// a * b as p + *lo exactly (Dekker's product: halves of 12 bits, 4097 = 2^12 + 1 splits), for
// |a|, |b| < 2^100 and no underflow.
static inline V split_hi(V a) {
  V c = a * 4097.0f;
  return c - (c - a);
}
static inline V two_prod(V a, V b, V* lo) {
  V p = a * b;
  V ah = split_hi(a), al = a - ah, bh = split_hi(b), bl = b - bh;
  *lo = ((ah * bh - p) + ah * bl + al * bh) + al * bl;
  return p;
}
// Half-octave index of a in [1, 16): (exponent - 127) * 2 + top mantissa bit, in [0, 7] (masked:
// any input, NaN included, gives an index in range).
static inline VI octave_index8(V a) { return reinterpret_cast<VI>(((bits(a) >> 22) - 254u) & 7u); }

#include "ops/vmath_core.inc"

}  // namespace pydl::ops::generic
