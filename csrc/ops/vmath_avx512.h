// AVX-512 vector primitives, then the shared algorithms (vmath_core.inc) in pydl::ops::avx512.
// Include only from *_avx512.cpp files (compiled with -mavx512f/dq/bw/vl). All functions are
// static: each translation unit keeps its own copy, none is shared with other ISAs.
#pragma once

#include <immintrin.h>

// GCC 12 reports the _mm512_undefined_* pass-through operands inside the roundscale/scalef
// intrinsics as "maybe uninitialized"; they are not read. Only for this ISA's translation units.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <cstdint>

#include "ops/vmath.h"

namespace pydl::ops::avx512 {

constexpr int kLanes = 16;
using V = __m512;      // 16 floats
using M = __mmask16;   // lane mask
using VI = __m512i;    // 16 int32

static inline V set1(float a) { return _mm512_set1_ps(a); }
static inline V loadu(const float* p) { return _mm512_loadu_ps(p); }
static inline void storeu(float* p, V v) { _mm512_storeu_ps(p, v); }
static inline M first(int64_t n) { return static_cast<M>((1u << n) - 1u); }  // 0 < n < kLanes
// Lanes [0, n) from p, the others set to fill (never read from memory).
static inline V load_part(const float* p, int64_t n, float fill) { return _mm512_mask_loadu_ps(set1(fill), first(n), p); }
static inline void store_part(float* p, V v, int64_t n) { _mm512_mask_storeu_ps(p, first(n), v); }
static inline V keep_first(V v, int64_t n) { return _mm512_maskz_mov_ps(first(n), v); }

static inline V add(V a, V b) { return _mm512_add_ps(a, b); }
static inline V sub(V a, V b) { return _mm512_sub_ps(a, b); }
static inline V mul(V a, V b) { return _mm512_mul_ps(a, b); }
static inline V div(V a, V b) { return _mm512_div_ps(a, b); }
static inline V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }    // a*b + c
static inline V fnma(V a, V b, V c) { return _mm512_fnmadd_ps(a, b, c); }  // c - a*b
// x86 semantics: if either operand is NaN (or both are zeros) the second operand is returned.
static inline V min(V a, V b) { return _mm512_min_ps(a, b); }
static inline V max(V a, V b) { return _mm512_max_ps(a, b); }
static inline V abs(V a) { return _mm512_abs_ps(a); }
static inline V sign_of(V a) { return _mm512_and_ps(a, set1(-0.0f)); }
static inline V or_bits(V a, V b) { return _mm512_or_ps(a, b); }
static inline M lt(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
static inline M gt(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
static inline V select(M m, V a, V b) { return _mm512_mask_blend_ps(m, b, a); }  // m ? a : b
// Round to nearest integer (ties to even), as a float.
static inline V round_int(V a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
// p * 2^n for integral n in [-150, 128], one rounding (denormal and overflow results included).
static inline V ldexp(V p, V n) { return _mm512_scalef_ps(p, n); }
// 2^n for integral n in [-126, 127].
static inline V pow2(V n) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23));
}
// 1/d for d in [1, 2^100]: rcp14 and one Newton step (relative error < 2^-23).
static inline V recip(V d) {
  V r = _mm512_rcp14_ps(d);
  return fma(r, fnma(d, r, set1(1.0f)), r);
}
// Interval index floor(a) clamped to [0, 7] for a >= 0 (NaN gives some index in range).
static inline VI index8(V a) { return _mm512_min_epi32(_mm512_cvttps_epi32(a), _mm512_set1_epi32(7)); }
// table[idx] per lane, table of 8 floats.
static inline V lookup8(const float* table, VI idx) {
  return _mm512_permutexvar_ps(idx, _mm512_castps256_ps512(_mm256_loadu_ps(table)));
}
static inline V to_float(VI i) { return _mm512_cvtepi32_ps(i); }
static inline float hsum(V v) { return _mm512_reduce_add_ps(v); }
static inline float hmax(V v) { return _mm512_reduce_max_ps(v); }
// Bits of k shifted left by 23: with k = v + (1.5 * 2^23 + 127) rounded to an integer, the
// float 2^(k - 1.5*2^23 - 127) for exponents in [-127, 128) (the magic-number trick).
static inline V shl23(V k) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_castps_si512(k), 23)); }
// a * b as p + *lo exactly (p = fl(a b), *lo = a b - p by FMA), barring overflow and underflow.
static inline V two_prod(V a, V b, V* lo) {
  V p = _mm512_mul_ps(a, b);
  *lo = _mm512_fmsub_ps(a, b, p);
  return p;
}
// Half-octave index of a in [1, 16): (exponent - 127) * 2 + top mantissa bit, in [0, 7] (bits
// masked to 3: any input, NaN included, gives an index in range).
static inline VI octave_index8(V a) {
  __m512i b = _mm512_srli_epi32(_mm512_castps_si512(a), 22);
  return _mm512_and_si512(_mm512_sub_epi32(b, _mm512_set1_epi32(254)), _mm512_set1_epi32(7));
}

#include "ops/vmath_core.inc"

}  // namespace pydl::ops::avx512
