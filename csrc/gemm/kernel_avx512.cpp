// AVX-512 GEMM micro-kernels: C tile (MR x NR, row-major) += A sliver (MR x kc) times B sliver
// (kc x NR). float32: 12 x 32 (2 zmm per row), float64: 12 x 16. 24 zmm accumulators hide the
// 4-cycle FMA latency at 2 FMAs per cycle; A is broadcast from memory, B loaded once per k.
// Partial tiles: masked loads/stores on columns, rows guarded. The kernel body and the packing
// routines are kernel_core.inc over the primitives below; this file adds the masks and the
// in-register transposes. Compiled with -mavx512f...; everything here is local to pydl::gemm::avx512.
#include <immintrin.h>

// GCC 12 reports the _mm512_undefined_* pass-through operands inside the shuffle, extract and
// reduce intrinsics as uninitialised; they are not read. Only for this ISA's translation unit.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#include "gemm/kernels.h"

namespace pydl::gemm::avx512 {
namespace {

// Register types by element type: 16 floats or 8 doubles per zmm.
template <class T>
struct Vec;
template <>
struct Vec<float> {
  using V = __m512;
  static constexpr int L = 16;
};
template <>
struct Vec<double> {
  using V = __m512d;
  static constexpr int L = 8;
};

// The primitives kernel_core.inc is written over, float and double side by side (+ and * are
// GCC's vector operators, the same operations as _mm512_add_ps / _mm512_mul_ps).
__m512 set1(float x) { return _mm512_set1_ps(x); }
__m512d set1(double x) { return _mm512_set1_pd(x); }
template <class T>
typename Vec<T>::V zero() { return set1(T(0)); }
__m512 load(const float* p) { return _mm512_loadu_ps(p); }
__m512d load(const double* p) { return _mm512_loadu_pd(p); }
void store(float* p, __m512 v) { _mm512_storeu_ps(p, v); }
void store(double* p, __m512d v) { _mm512_storeu_pd(p, v); }
__mmask16 first(int n, float) { return static_cast<__mmask16>((1u << n) - 1u); }  // 0 <= n < 16
__mmask8 first(int n, double) { return static_cast<__mmask8>((1u << n) - 1u); }
__m512 load_n(const float* p, int n) { return _mm512_maskz_loadu_ps(first(n, 0.f), p); }
__m512d load_n(const double* p, int n) { return _mm512_maskz_loadu_pd(first(n, 0.0), p); }
void store_n(float* p, __m512 v, int n) { _mm512_mask_storeu_ps(p, first(n, 0.f), v); }
void store_n(double* p, __m512d v, int n) { _mm512_mask_storeu_pd(p, first(n, 0.0), v); }
__m512 fma(__m512 a, __m512 b, __m512 c) { return _mm512_fmadd_ps(a, b, c); }
__m512d fma(__m512d a, __m512d b, __m512d c) { return _mm512_fmadd_pd(a, b, c); }
__mmask16 lt0(__m512 x) { return _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ); }
__mmask8 lt0(__m512d x) { return _mm512_cmp_pd_mask(x, _mm512_setzero_pd(), _CMP_LT_OQ); }
__m512 relu(__m512 x) { return _mm512_mask_mov_ps(x, lt0(x), _mm512_setzero_ps()); }
__m512d relu(__m512d x) { return _mm512_mask_mov_pd(x, lt0(x), _mm512_setzero_pd()); }
__m512 leaky(__m512 x, __m512 s) { return _mm512_mask_mul_ps(x, lt0(x), x, s); }
__m512d leaky(__m512d x, __m512d s) { return _mm512_mask_mul_pd(x, lt0(x), x, s); }

// In-register transposes for transpose_pack (kernel_core.inc).

// In-register transpose of 16 rows of 16 floats (unpack, shuffle, then 128-bit lane shuffles).
void transpose_block(__m512 r[16]) {
  __m512 t[16], u[16];
  for (int p = 0; p < 8; ++p) {
    t[2 * p] = _mm512_unpacklo_ps(r[2 * p], r[2 * p + 1]);
    t[2 * p + 1] = _mm512_unpackhi_ps(r[2 * p], r[2 * p + 1]);
  }
  for (int q = 0; q < 4; ++q) {
    u[4 * q + 0] = _mm512_shuffle_ps(t[4 * q], t[4 * q + 2], 0x44);
    u[4 * q + 1] = _mm512_shuffle_ps(t[4 * q], t[4 * q + 2], 0xEE);
    u[4 * q + 2] = _mm512_shuffle_ps(t[4 * q + 1], t[4 * q + 3], 0x44);
    u[4 * q + 3] = _mm512_shuffle_ps(t[4 * q + 1], t[4 * q + 3], 0xEE);
  }
  // u[4q + c], lane L: column 4L + c of rows 4q..4q+3. Gather the four lanes L of u[c + 4q].
  for (int c = 0; c < 4; ++c) {
    const __m512 w0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x44), w1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xEE);
    const __m512 w2 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x44);
    const __m512 w3 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xEE);
    r[c] = _mm512_shuffle_f32x4(w0, w2, 0x88);
    r[4 + c] = _mm512_shuffle_f32x4(w0, w2, 0xDD);
    r[8 + c] = _mm512_shuffle_f32x4(w1, w3, 0x88);
    r[12 + c] = _mm512_shuffle_f32x4(w1, w3, 0xDD);
  }
}

// In-register transpose of 8 rows of 8 doubles.
void transpose_block(__m512d r[8]) {
  __m512d t[8];
  for (int p = 0; p < 4; ++p) {
    t[2 * p] = _mm512_unpacklo_pd(r[2 * p], r[2 * p + 1]);      // lane L: rows 2p, 2p+1 of column 2L
    t[2 * p + 1] = _mm512_unpackhi_pd(r[2 * p], r[2 * p + 1]);  // lane L: column 2L + 1
  }
  for (int odd = 0; odd < 2; ++odd) {
    const __m512d w0 = _mm512_shuffle_f64x2(t[odd], t[2 + odd], 0x44);
    const __m512d w1 = _mm512_shuffle_f64x2(t[odd], t[2 + odd], 0xEE);
    const __m512d w2 = _mm512_shuffle_f64x2(t[4 + odd], t[6 + odd], 0x44);
    const __m512d w3 = _mm512_shuffle_f64x2(t[4 + odd], t[6 + odd], 0xEE);
    r[0 + odd] = _mm512_shuffle_f64x2(w0, w2, 0x88);
    r[2 + odd] = _mm512_shuffle_f64x2(w0, w2, 0xDD);
    r[4 + odd] = _mm512_shuffle_f64x2(w1, w3, 0x88);
    r[6 + odd] = _mm512_shuffle_f64x2(w1, w3, 0xDD);
  }
}

float hsum(__m512 v) { return _mm512_reduce_add_ps(v); }
double hsum(__m512d v) { return _mm512_reduce_add_pd(v); }
// The dot kernel's block: up to 6 rows of A x 4 rows of B, 24 accumulators (4 B rows, one A row:
// 29 of 32 registers). Each load of B's rows serves 6 rows of A rather than 4: LeNet's conv1 weight
// gradient (6 x 25 x 3136) went from 1.02x to 1.31x OpenBLAS (docs/GEMM.md).
constexpr int kDotRows = 6, kDotCols = 4;

// The micro-kernel's register blocks by rows (kernel_core.inc picks the smallest that covers a
// tile's rows; an edge of exactly 10, 8, 6, 4, 2 or 1 rows reads A in place).
constexpr int kRowBlocks[] = {12, 10, 8, 6, 4, 2, 1};
// Plan::strip runs an edge of one row with the tile above it, 13 rows on 26 accumulators.
constexpr bool kMergeOneRow = true;

#include "gemm/kernel_core.inc"

}  // namespace

static_assert(kMrF32 == kRowBlocks[0] && kMrF64 == kRowBlocks[0] && kNrF32 == 2 * Vec<float>::L && kNrF64 == 2 * Vec<double>::L,
              "the micro-kernel is kRowBlocks[0] x 2 vectors");

const IsaKernels kernels = {
    {micro_kernel<float>, transpose_pack<float>, copy_pack<float>, kMrF32, kNrF32, Vec<float>::L, dot_kernel<float>,
     kDotRows, kDotCols, exact_row_mask(), strip_kernel<float>, panel_pack_t<float>, wide_strip<float, 6, 4>,
     4 * Vec<float>::L},
    {micro_kernel<double>, transpose_pack<double>, copy_pack<double>, kMrF64, kNrF64, Vec<double>::L,
     dot_kernel<double>, kDotRows, kDotCols, exact_row_mask(), strip_kernel<double>, panel_pack_t<double>,
     wide_strip<double, 6, 4>, 4 * Vec<double>::L},
};

}  // namespace pydl::gemm::avx512
