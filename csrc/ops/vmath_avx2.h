// AVX2 + FMA vector primitives, then the shared algorithms (vmath_core.inc) in pydl::ops::avx2.
// Include only from *_avx2.cpp files (compiled with -mavx2 -mfma). All functions are static:
// each translation unit keeps its own copy, none is shared with other ISAs.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "ops/vmath.h"

namespace pydl::ops::avx2 {

constexpr int kLanes = 8;
using V = __m256;    // 8 floats
using M = __m256;    // lane mask: all ones / all zeros per lane
using VI = __m256i;  // 8 int32

static inline V set1(float a) { return _mm256_set1_ps(a); }
static inline V loadu(const float* p) { return _mm256_loadu_ps(p); }
static inline void storeu(float* p, V v) { _mm256_storeu_ps(p, v); }
static inline __m256i first(int64_t n) {  // 0 < n < kLanes
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
// Lanes [0, n) from p, the others set to fill (never read from memory).
static inline V load_part(const float* p, int64_t n, float fill) {
  __m256i m = first(n);
  return _mm256_blendv_ps(set1(fill), _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m));
}
static inline void store_part(float* p, V v, int64_t n) { _mm256_maskstore_ps(p, first(n), v); }
static inline V keep_first(V v, int64_t n) { return _mm256_and_ps(v, _mm256_castsi256_ps(first(n))); }

static inline V add(V a, V b) { return _mm256_add_ps(a, b); }
static inline V sub(V a, V b) { return _mm256_sub_ps(a, b); }
static inline V mul(V a, V b) { return _mm256_mul_ps(a, b); }
static inline V div(V a, V b) { return _mm256_div_ps(a, b); }
static inline V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }    // a*b + c
static inline V fnma(V a, V b, V c) { return _mm256_fnmadd_ps(a, b, c); }  // c - a*b
// x86 semantics: if either operand is NaN (or both are zeros) the second operand is returned.
static inline V min(V a, V b) { return _mm256_min_ps(a, b); }
static inline V max(V a, V b) { return _mm256_max_ps(a, b); }
static inline V abs(V a) { return _mm256_andnot_ps(set1(-0.0f), a); }
static inline V sign_of(V a) { return _mm256_and_ps(a, set1(-0.0f)); }
static inline V or_bits(V a, V b) { return _mm256_or_ps(a, b); }
static inline M lt(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
static inline M gt(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
static inline V select(M m, V a, V b) { return _mm256_blendv_ps(b, a, m); }  // m ? a : b
// Round to nearest integer (ties to even), as a float.
static inline V round_int(V a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
static inline V pow2i(__m256i n) { return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n, _mm256_set1_epi32(127)), 23)); }
// 2^n for integral n in [-126, 127].
static inline V pow2(V n) { return pow2i(_mm256_cvtps_epi32(n)); }
// p * 2^n for integral n in [-150, 128] as (p * 2^(n>>1)) * 2^(n - (n>>1)): the first product is
// exact, the second rounds once (denormal and overflow results included).
static inline V ldexp(V p, V n) {
  __m256i ni = _mm256_cvtps_epi32(n);
  __m256i n1 = _mm256_srai_epi32(ni, 1);
  return mul(mul(p, pow2i(n1)), pow2i(_mm256_sub_epi32(ni, n1)));
}
static inline V recip(V d) { return div(set1(1.0f), d); }
// Interval index floor(a) clamped to [0, 7] for a >= 0 (NaN gives some index in range).
static inline VI index8(V a) { return _mm256_and_si256(_mm256_min_epi32(_mm256_cvttps_epi32(a), _mm256_set1_epi32(7)), _mm256_set1_epi32(7)); }
static inline V lookup8(const float* table, VI idx) { return _mm256_permutevar8x32_ps(_mm256_loadu_ps(table), idx); }
static inline V to_float(VI i) { return _mm256_cvtepi32_ps(i); }
static inline float hsum(V v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
static inline float hmax(V v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
// Bits of k shifted left by 23: with k = v + (1.5 * 2^23 + 127) rounded to an integer, the
// float 2^(k - 1.5*2^23 - 127) for exponents in [-127, 128) (the magic-number trick).
static inline V shl23(V k) { return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(k), 23)); }
// a * b as p + *lo exactly (p = fl(a b), *lo = a b - p by FMA), barring overflow and underflow.
static inline V two_prod(V a, V b, V* lo) {
  V p = _mm256_mul_ps(a, b);
  *lo = _mm256_fmsub_ps(a, b, p);
  return p;
}
// Half-octave index of a in [1, 16): (exponent - 127) * 2 + top mantissa bit, in [0, 7] (bits
// masked to 3: any input, NaN included, gives an index in range).
static inline VI octave_index8(V a) {
  __m256i b = _mm256_srli_epi32(_mm256_castps_si256(a), 22);
  return _mm256_and_si256(_mm256_sub_epi32(b, _mm256_set1_epi32(254)), _mm256_set1_epi32(7));
}

#include "ops/vmath_core.inc"

}  // namespace pydl::ops::avx2
