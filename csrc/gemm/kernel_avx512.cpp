// AVX-512 GEMM micro-kernels: C tile (MR x NR, row-major) += packed A sliver (MR x kc, k-major)
// times B sliver (kc x NR). float32: 12 x 32 (2 zmm per row), float64: 12 x 16.
// 24 zmm accumulators hide the 4-cycle FMA latency at 2 FMAs per cycle; A is broadcast from
// memory (embedded broadcast), B is loaded once per k. Partial tiles: masked loads/stores on
// columns, rows guarded. Epilogue (alpha, beta, bias, relu/leaky_relu) on the registers.
// Compiled with -mavx512f...; everything here is local to pydl::gemm::avx512.
#include <immintrin.h>

#include "gemm/kernels.h"

namespace pydl::gemm::avx512 {
namespace {

// Register types by element type: 16 floats or 8 doubles per zmm, and their lane masks.
template <class T>
struct Vec;
template <>
struct Vec<float> {
  using V = __m512;
  using M = __mmask16;
  static constexpr int L = 16;
};
template <>
struct Vec<double> {
  using V = __m512d;
  using M = __mmask8;
  static constexpr int L = 8;
};

// The primitives of the micro-kernel, float and double side by side (+ and * are GCC's vector
// operators, the same operations as _mm512_add_ps / _mm512_mul_ps).
__m512 set1(float x) { return _mm512_set1_ps(x); }
__m512d set1(double x) { return _mm512_set1_pd(x); }
__m512 load(const float* p) { return _mm512_loadu_ps(p); }
__m512d load(const double* p) { return _mm512_loadu_pd(p); }
__m512 load(__mmask16 k, const float* p) { return _mm512_maskz_loadu_ps(k, p); }
__m512d load(__mmask8 k, const double* p) { return _mm512_maskz_loadu_pd(k, p); }
void store(float* p, __mmask16 k, __m512 v) { _mm512_mask_storeu_ps(p, k, v); }
void store(double* p, __mmask8 k, __m512d v) { _mm512_mask_storeu_pd(p, k, v); }
__m512 fma(__m512 a, __m512 b, __m512 c) { return _mm512_fmadd_ps(a, b, c); }
__m512d fma(__m512d a, __m512d b, __m512d c) { return _mm512_fmadd_pd(a, b, c); }
__mmask16 lt0(__m512 x) { return _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ); }
__mmask8 lt0(__m512d x) { return _mm512_cmp_pd_mask(x, _mm512_setzero_pd(), _CMP_LT_OQ); }
__m512 mask_zero(__m512 x, __mmask16 k) { return _mm512_mask_mov_ps(x, k, _mm512_setzero_ps()); }
__m512d mask_zero(__m512d x, __mmask8 k) { return _mm512_mask_mov_pd(x, k, _mm512_setzero_pd()); }
__m512 mask_mul(__m512 x, __mmask16 k, __m512 s) { return _mm512_mask_mul_ps(x, k, x, s); }
__m512d mask_mul(__m512d x, __mmask8 k, __m512d s) { return _mm512_mask_mul_pd(x, k, x, s); }

// Mask of the first `n` lanes (n clamped to [0, L]).
template <class T>
typename Vec<T>::M lanes(int n) {
  if (n >= Vec<T>::L) return static_cast<typename Vec<T>::M>(~0u);
  if (n <= 0) return 0;
  return static_cast<typename Vec<T>::M>((1u << n) - 1u);
}

// The MR x (NV vectors) register block of the micro-kernel contract (kernels.h).
template <class T, int MR, int NV>
void kernel(int64_t kc, const T* a, int64_t aks, const T* b, int64_t ldb, T* c, int64_t ldc, int m, int n,
            const Epilogue<T>& ep) {
  using V = typename Vec<T>::V;
  using M = typename Vec<T>::M;
  constexpr int L = Vec<T>::L;
  V acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = set1(T(0));
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
    if (i < m) _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);

#pragma GCC unroll 2
  for (int64_t k = 0; k < kc; ++k) {
    V bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = load(b + v * L);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const V ai = set1(a[i]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = fma(ai, bv[v], acc[i][v]);
    }
    a += aks;
    b += ldb;
  }

  M mask[NV];
  V bias[NV];
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) {
    mask[v] = lanes<T>(n - v * L);
    bias[v] = ep.bias ? load(mask[v], ep.bias + v * L) : set1(T(0));
  }
  const V alpha = set1(ep.alpha), beta = set1(ep.beta), slope = set1(ep.negative_slope);
  const bool read_c = ep.beta != 0;
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    if (i >= m) break;
    T* ci = c + i * ldc;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      V x = acc[i][v] * alpha;
      if (read_c) x = fma(beta, load(mask[v], ci + v * L), x);
      x = x + bias[v];
      if (ep.act == 1) x = mask_zero(x, lt0(x));
      else if (ep.act == 2) x = mask_mul(x, lt0(x), slope);
      store(ci + v * L, mask[v], x);
    }
  }
}

// Edge tiles run a smaller register block (4 or 8 rows, one vector of columns) instead of
// computing zero padding: same per-element arithmetic, fewer wasted FMAs.
// The 12 x 2-vector micro-kernel (12 x 32 floats, 12 x 16 doubles).
template <class T>
void micro_kernel(int64_t kc, const T* a, int64_t aks, const T* b, int64_t ldb, T* c, int64_t ldc, int m, int n,
                  const Epilogue<T>& ep) {
  if (n > Vec<T>::L) {
    if (m > 8) kernel<T, 12, 2>(kc, a, aks, b, ldb, c, ldc, m, n, ep);
    else if (m > 4) kernel<T, 8, 2>(kc, a, aks, b, ldb, c, ldc, m, n, ep);
    else kernel<T, 4, 2>(kc, a, aks, b, ldb, c, ldc, m, n, ep);
  } else {
    if (m > 8) kernel<T, 12, 1>(kc, a, aks, b, ldb, c, ldc, m, n, ep);
    else if (m > 4) kernel<T, 8, 1>(kc, a, aks, b, ldb, c, ldc, m, n, ep);
    else kernel<T, 4, 1>(kc, a, aks, b, ldb, c, ldc, m, n, ep);
  }
}

// ---- transposing pack ----

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

// dst[k * w + r] = src[r * lds + k] for r < rows, k < kc; zero for rows <= r < w: blocks of
// L x L elements loaded (masked at the edges), transposed in registers, stored.
template <class T>
void transpose_pack(T* dst, int w, const T* src, int64_t lds, int rows, int64_t kc) {
  constexpr int L = Vec<T>::L;
  for (int r0 = 0; r0 < w; r0 += L) {
    const int nrow = w - r0 < L ? w - r0 : L;                                     // rows of this block in dst
    const int valid = rows - r0 < 0 ? 0 : (rows - r0 < nrow ? rows - r0 : nrow);  // rows read from src
    const auto store_mask = lanes<T>(nrow);
    for (int64_t k0 = 0; k0 < kc; k0 += L) {
      const int kn = kc - k0 < L ? int(kc - k0) : L;
      const auto load_mask = lanes<T>(kn);
      typename Vec<T>::V r[L];
      for (int i = 0; i < L; ++i) r[i] = i < valid ? load(load_mask, src + (r0 + i) * lds + k0) : set1(T(0));
      transpose_block(r);
      T* d = dst + k0 * w + r0;
      for (int k = 0; k < kn; ++k) store(d + k * w, store_mask, r[k]);
    }
  }
}

}  // namespace

static_assert(kMrF32 == 12 && kNrF32 == 32 && kMrF64 == 12 && kNrF64 == 16, "micro_kernel assumes 12 x 2 vectors");

const IsaKernels kernels = {
    {micro_kernel<float>, transpose_pack<float>, kMrF32, kNrF32, 384, 512},
    {micro_kernel<double>, transpose_pack<double>, kMrF64, kNrF64, 256, 256},
};

}  // namespace pydl::gemm::avx512
