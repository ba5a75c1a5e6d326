// AVX2+FMA GEMM micro-kernels: C tile (MR x NR, row-major) += A sliver (MR x kc) times B sliver
// (kc x NR). float32: 6 x 16 (2 ymm per row), float64: 6 x 8. 12 ymm accumulators, 2 for B, 1
// broadcast: 15 of the 16 registers. The kernel body and the packing routines are
// kernel_core.inc over the primitives below; partial vectors (no lane masks before AVX-512) go
// through a small buffer, at the tile edges only. Compiled with -mavx2 -mfma; everything here is
// local to pydl::gemm::avx2.
#include <immintrin.h>

#include "gemm/kernels.h"

namespace pydl::gemm::avx2 {
namespace {

// Register types by element type: 8 floats or 4 doubles per ymm.
template <class T>
struct Vec;
template <>
struct Vec<float> {
  using V = __m256;
  static constexpr int L = 8;
};
template <>
struct Vec<double> {
  using V = __m256d;
  static constexpr int L = 4;
};

// The primitives kernel_core.inc is written over, float and double side by side (+ and * are
// GCC's vector operators, the same operations as _mm256_add_ps / _mm256_mul_ps).
__m256 set1(float x) { return _mm256_set1_ps(x); }
__m256d set1(double x) { return _mm256_set1_pd(x); }
template <class T>
typename Vec<T>::V zero() { return set1(T(0)); }
__m256 load(const float* p) { return _mm256_loadu_ps(p); }
__m256d load(const double* p) { return _mm256_loadu_pd(p); }
void store(float* p, __m256 v) { _mm256_storeu_ps(p, v); }
void store(double* p, __m256d v) { _mm256_storeu_pd(p, v); }
// The first n lanes (0 <= n < L): loads masked (vmaskmov, lanes past n read as zero and never
// touch memory), stores through a buffer (vmaskmov stores are microcoded on AMD cores).
__m256i first(int n, int step) {  // lanes [0, n) of 32-bit ints (step 1) or 64-bit ones (step 2)
  const __m256i lane =
      step == 1 ? _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7) : _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), lane);
}
__m256 load_n(const float* p, int n) { return _mm256_maskload_ps(p, first(n, 1)); }
__m256d load_n(const double* p, int n) { return _mm256_maskload_pd(p, first(n, 2)); }
template <class T>
void store_n(T* p, typename Vec<T>::V v, int n) {
  alignas(32) T buf[Vec<T>::L];
  store(buf, v);
  for (int j = 0; j < n; ++j) p[j] = buf[j];
}
__m256 fma(__m256 a, __m256 b, __m256 c) { return _mm256_fmadd_ps(a, b, c); }
__m256d fma(__m256d a, __m256d b, __m256d c) { return _mm256_fmadd_pd(a, b, c); }
__m256 lt0(__m256 x) { return _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ); }
__m256d lt0(__m256d x) { return _mm256_cmp_pd(x, _mm256_setzero_pd(), _CMP_LT_OQ); }
__m256 relu(__m256 x) { return _mm256_blendv_ps(x, _mm256_setzero_ps(), lt0(x)); }
__m256d relu(__m256d x) { return _mm256_blendv_pd(x, _mm256_setzero_pd(), lt0(x)); }
__m256 leaky(__m256 x, __m256 s) { return _mm256_blendv_ps(x, x * s, lt0(x)); }
__m256d leaky(__m256d x, __m256d s) { return _mm256_blendv_pd(x, x * s, lt0(x)); }

// In-register transposes for transpose_pack (kernel_core.inc).

// 8 rows of 8 floats.
void transpose_block(__m256 r[8]) {
  __m256 t[8], u[8];
  for (int p = 0; p < 4; ++p) {
    t[2 * p] = _mm256_unpacklo_ps(r[2 * p], r[2 * p + 1]);
    t[2 * p + 1] = _mm256_unpackhi_ps(r[2 * p], r[2 * p + 1]);
  }
  for (int q = 0; q < 2; ++q) {
    u[4 * q + 0] = _mm256_shuffle_ps(t[4 * q], t[4 * q + 2], 0x44);
    u[4 * q + 1] = _mm256_shuffle_ps(t[4 * q], t[4 * q + 2], 0xEE);
    u[4 * q + 2] = _mm256_shuffle_ps(t[4 * q + 1], t[4 * q + 3], 0x44);
    u[4 * q + 3] = _mm256_shuffle_ps(t[4 * q + 1], t[4 * q + 3], 0xEE);
  }
  // u[4q + c], lane L: column 4L + c of rows 4q..4q+3.
  for (int c = 0; c < 4; ++c) {
    r[c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x20);
    r[4 + c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x31);
  }
}

// 4 rows of 4 doubles.
void transpose_block(__m256d r[4]) {
  const __m256d t0 = _mm256_unpacklo_pd(r[0], r[1]), t1 = _mm256_unpackhi_pd(r[0], r[1]);  // lane pairs (0,1)
  const __m256d t2 = _mm256_unpacklo_pd(r[2], r[3]), t3 = _mm256_unpackhi_pd(r[2], r[3]);  // (2,3)
  r[0] = _mm256_permute2f128_pd(t0, t2, 0x20);
  r[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
  r[2] = _mm256_permute2f128_pd(t0, t2, 0x31);
  r[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
}

float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}
double hsum(__m256d v) {
  __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
  return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}
// The dot kernel's block: 2 rows of A x 4 rows of B, 8 accumulators.
constexpr int kDotRows = 2, kDotCols = 4;

// The micro-kernel's register blocks by rows (kernel_core.inc picks the smallest that covers a
// tile's rows; an edge of any height reads A in place).
constexpr int kRowBlocks[] = {6, 5, 4, 3, 2, 1};
// No 7-row block (14 accumulators, two B vectors and a broadcast would need 17 registers).
constexpr bool kMergeOneRow = false;

#include "gemm/kernel_core.inc"

}  // namespace

static_assert(kMrF32 == kRowBlocks[0] && kMrF64 == kRowBlocks[0] && kNrF32 == 2 * Vec<float>::L && kNrF64 == 2 * Vec<double>::L,
              "the micro-kernel is kRowBlocks[0] x 2 vectors");

const IsaKernels kernels = {
    {micro_kernel<float>, transpose_pack<float>, copy_pack<float>, kMrF32, kNrF32, Vec<float>::L, dot_kernel<float>,
     kDotRows, kDotCols, exact_row_mask(), strip_kernel<float>, panel_pack_t<float>},
    {micro_kernel<double>, transpose_pack<double>, copy_pack<double>, kMrF64, kNrF64, Vec<double>::L,
     dot_kernel<double>, kDotRows, kDotCols, exact_row_mask(), strip_kernel<double>, panel_pack_t<double>},
};

}  // namespace pydl::gemm::avx2
