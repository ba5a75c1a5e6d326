// Portable primitives (one float per "vector"), then the shared algorithms (vmath_core.inc) in
// pydl::ops::generic: the same arithmetic as the SIMD paths, written so the compiler may
// vectorise the loops with the baseline ISA. Include only from *_generic.cpp files.
#pragma once

#include <cstdint>
#include <cstring>

#include "ops/vmath.h"

namespace pydl::ops::generic {

constexpr int kLanes = 1;
using V = float;
using M = bool;
using VI = int32_t;

static inline uint32_t bits(float a) { uint32_t u; std::memcpy(&u, &a, 4); return u; }
static inline float from_bits(uint32_t u) { float a; std::memcpy(&a, &u, 4); return a; }

static inline V set1(float a) { return a; }
static inline V loadu(const float* p) { return *p; }
static inline void storeu(float* p, V v) { *p = v; }
// kLanes == 1: a partial vector never occurs; these keep the shared code compiling.
static inline V load_part(const float* p, int64_t, float) { return *p; }
static inline void store_part(float* p, V v, int64_t) { *p = v; }
static inline V keep_first(V v, int64_t) { return v; }

static inline V add(V a, V b) { return a + b; }
static inline V sub(V a, V b) { return a - b; }
static inline V mul(V a, V b) { return a * b; }
static inline V div(V a, V b) { return a / b; }
static inline V fma(V a, V b, V c) { return a * b + c; }
static inline V fnma(V a, V b, V c) { return c - a * b; }
// Same NaN rule as x86 min/max: the second operand when either is NaN.
static inline V min(V a, V b) { return a < b ? a : b; }
static inline V max(V a, V b) { return a > b ? a : b; }
static inline V abs(V a) { return from_bits(bits(a) & 0x7fffffffu); }
static inline V sign_of(V a) { return from_bits(bits(a) & 0x80000000u); }
static inline V or_bits(V a, V b) { return from_bits(bits(a) | bits(b)); }
static inline M lt(V a, V b) { return a < b; }
static inline M gt(V a, V b) { return a > b; }
static inline V select(M m, V a, V b) { return m ? a : b; }
// Round to nearest (ties to even) for |a| < 2^22 by adding and removing 1.5 * 2^23; NaN stays NaN.
static inline V round_int(V a) { return (a + 12582912.0f) - 12582912.0f; }
static inline int32_t to_int(V n) { return n == n ? static_cast<int32_t>(n) : 0; }  // n integral
static inline V pow2i(int32_t n) { return from_bits(static_cast<uint32_t>(n + 127) << 23); }
// 2^n for integral n in [-126, 127].
static inline V pow2(V n) { return pow2i(to_int(n)); }
// p * 2^n for integral n in [-150, 128]: (p * 2^(n>>1)) * 2^(n - (n>>1)), one rounding.
static inline V ldexp(V p, V n) {
  int32_t ni = to_int(n), n1 = ni >> 1;
  return p * pow2i(n1) * pow2i(ni - n1);
}
static inline V recip(V d) { return 1.0f / d; }
static inline VI index8(V a) { return a < 7.0f ? static_cast<int32_t>(a) : 7; }  // a >= 0 or NaN
static inline V lookup8(const float* table, VI idx) { return table[idx]; }
static inline V to_float(VI i) { return static_cast<float>(i); }
static inline float hsum(V v) { return v; }
static inline float hmax(V v) { return v; }
// Bits of k shifted left by 23: with k = v + (1.5 * 2^23 + 127) rounded to an integer, the
// float 2^(k - 1.5*2^23 - 127) for exponents in [-127, 128) (the magic-number trick).
static inline V shl23(V k) { return from_bits(bits(k) << 23); }
// a * b as p + *lo exactly (Dekker's product: halves of 12 bits, 4097 = 2^12 + 1 splits), for
// |a|, |b| < 2^100 and no underflow. (No FMA at the baseline ISA; GCC does not contract a*b + c
// under -std=c++17.)
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
static inline VI octave_index8(V a) { return static_cast<VI>(((bits(a) >> 22) - 254u) & 7u); }

#include "ops/vmath_core.inc"

}  // namespace pydl::ops::generic
