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

struct F32 {
  using T = float;
  using V = __m512;
  using M = __mmask16;
  static constexpr int L = 16;
  static V zero() { return _mm512_setzero_ps(); }
  static V set1(T x) { return _mm512_set1_ps(x); }
  static V load(const T* p) { return _mm512_loadu_ps(p); }
  static V load(M k, const T* p) { return _mm512_maskz_loadu_ps(k, p); }
  static void store(T* p, M k, V v) { _mm512_mask_storeu_ps(p, k, v); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static M lt0(V x) { return _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ); }
  static V mask_zero(V x, M k) { return _mm512_mask_mov_ps(x, k, _mm512_setzero_ps()); }
  static V mask_mul(V x, M k, V s) { return _mm512_mask_mul_ps(x, k, x, s); }
};

struct F64 {
  using T = double;
  using V = __m512d;
  using M = __mmask8;
  static constexpr int L = 8;
  static V zero() { return _mm512_setzero_pd(); }
  static V set1(T x) { return _mm512_set1_pd(x); }
  static V load(const T* p) { return _mm512_loadu_pd(p); }
  static V load(M k, const T* p) { return _mm512_maskz_loadu_pd(k, p); }
  static void store(T* p, M k, V v) { _mm512_mask_storeu_pd(p, k, v); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static V mul(V a, V b) { return _mm512_mul_pd(a, b); }
  static V add(V a, V b) { return _mm512_add_pd(a, b); }
  static M lt0(V x) { return _mm512_cmp_pd_mask(x, _mm512_setzero_pd(), _CMP_LT_OQ); }
  static V mask_zero(V x, M k) { return _mm512_mask_mov_pd(x, k, _mm512_setzero_pd()); }
  static V mask_mul(V x, M k, V s) { return _mm512_mask_mul_pd(x, k, x, s); }
};

// Mask of the first `n` lanes (n clamped to [0, L]).
template <class S>
typename S::M lanes(int n) {
  if (n >= S::L) return static_cast<typename S::M>(~0u);
  if (n <= 0) return 0;
  return static_cast<typename S::M>((1u << n) - 1u);
}

template <class S, int MR, int NV>
void kernel(int64_t kc, const typename S::T* a, int64_t aks, const typename S::T* b, int64_t ldb, typename S::T* c,
            int64_t ldc, int m, int n, const Epilogue<typename S::T>& ep) {
  using V = typename S::V;
  using M = typename S::M;
  constexpr int L = S::L;
  V acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = S::zero();
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
    if (i < m) _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);

#pragma GCC unroll 2
  for (int64_t k = 0; k < kc; ++k) {
    V bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = S::load(b + v * L);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const V ai = S::set1(a[i]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = S::fma(ai, bv[v], acc[i][v]);
    }
    a += aks;
    b += ldb;
  }

  M mask[NV];
  V bias[NV];
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) {
    mask[v] = lanes<S>(n - v * L);
    bias[v] = ep.bias ? S::load(mask[v], ep.bias + v * L) : S::zero();
  }
  const V alpha = S::set1(ep.alpha), beta = S::set1(ep.beta), slope = S::set1(ep.slope);
  const bool read_c = ep.beta != 0;
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    if (i >= m) break;
    typename S::T* ci = c + i * ldc;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      V x = S::mul(acc[i][v], alpha);
      if (read_c) x = S::fma(beta, S::load(mask[v], ci + v * L), x);
      x = S::add(x, bias[v]);
      if (ep.act == 1) x = S::mask_zero(x, S::lt0(x));
      else if (ep.act == 2) x = S::mask_mul(x, S::lt0(x), slope);
      S::store(ci + v * L, mask[v], x);
    }
  }
}

// Edge tiles run a smaller register block (4 or 8 rows, one vector of columns) instead of
// computing zero padding: same per-element arithmetic, fewer wasted FMAs.
template <class S>
void dispatch(int64_t kc, const typename S::T* a, int64_t aks, const typename S::T* b, int64_t ldb,
              typename S::T* c, int64_t ldc, int m, int n, const Epilogue<typename S::T>& ep) {
  static_assert(kMrF32 == 12 && kNrF32 == 32 && kMrF64 == 12 && kNrF64 == 16, "blocks below assume 12 x 2 vectors");
  if (n > S::L) {
    if (m > 8) kernel<S, 12, 2>(kc, a, aks, b, ldb, c, ldc, m, n, ep);
    else if (m > 4) kernel<S, 8, 2>(kc, a, aks, b, ldb, c, ldc, m, n, ep);
    else kernel<S, 4, 2>(kc, a, aks, b, ldb, c, ldc, m, n, ep);
  } else {
    if (m > 8) kernel<S, 12, 1>(kc, a, aks, b, ldb, c, ldc, m, n, ep);
    else if (m > 4) kernel<S, 8, 1>(kc, a, aks, b, ldb, c, ldc, m, n, ep);
    else kernel<S, 4, 1>(kc, a, aks, b, ldb, c, ldc, m, n, ep);
  }
}

}  // namespace

void kernel_f32(int64_t kc, const float* a, int64_t aks, const float* b, int64_t ldb,
                float* c, int64_t ldc, int m, int n, const Epilogue<float>& ep) {
  dispatch<F32>(kc, a, aks, b, ldb, c, ldc, m, n, ep);
}

void kernel_f64(int64_t kc, const double* a, int64_t aks, const double* b, int64_t ldb,
                double* c, int64_t ldc, int m, int n, const Epilogue<double>& ep) {
  dispatch<F64>(kc, a, aks, b, ldb, c, ldc, m, n, ep);
}

}  // namespace pydl::gemm::avx512

// ---- transposing pack: dst[k * w + r] = src[r * lds + k] (r < rows), zero for rows <= r < w ----
namespace pydl::gemm::avx512 {
namespace {

// In-register transpose of 16 rows of 16 floats (unpack, shuffle, then 128-bit lane shuffles).
void transpose16(__m512 r[16]) {
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
void transpose8(__m512d r[8]) {
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

}  // namespace

void transpose_pack_f64(double* dst, int w, const double* src, int64_t lds, int rows, int64_t kc) {
  for (int r0 = 0; r0 < w; r0 += 8) {
    const int nrow = w - r0 < 8 ? w - r0 : 8;
    const int valid = rows - r0 < 0 ? 0 : (rows - r0 < nrow ? rows - r0 : nrow);
    const __mmask8 store_mask = static_cast<__mmask8>((1u << nrow) - 1u);
    for (int64_t k0 = 0; k0 < kc; k0 += 8) {
      const int kn = kc - k0 < 8 ? int(kc - k0) : 8;
      const __mmask8 load_mask = static_cast<__mmask8>((1u << kn) - 1u);
      __m512d r[8];
      for (int i = 0; i < 8; ++i)
        r[i] = i < valid ? _mm512_maskz_loadu_pd(load_mask, src + (r0 + i) * lds + k0) : _mm512_setzero_pd();
      transpose8(r);
      double* d = dst + k0 * w + r0;
      for (int k = 0; k < kn; ++k) _mm512_mask_storeu_pd(d + k * w, store_mask, r[k]);
    }
  }
}

void transpose_pack_f32(float* dst, int w, const float* src, int64_t lds, int rows, int64_t kc) {
  for (int r0 = 0; r0 < w; r0 += 16) {
    const int nrow = w - r0 < 16 ? w - r0 : 16;                      // rows of this block in dst
    const int valid = rows - r0 < 0 ? 0 : (rows - r0 < nrow ? rows - r0 : nrow);  // rows read from src
    const __mmask16 store_mask = static_cast<__mmask16>((1u << nrow) - 1u);
    for (int64_t k0 = 0; k0 < kc; k0 += 16) {
      const int kn = kc - k0 < 16 ? int(kc - k0) : 16;
      const __mmask16 load_mask = static_cast<__mmask16>((1u << kn) - 1u);
      __m512 r[16];
      for (int i = 0; i < 16; ++i)
        r[i] = i < valid ? _mm512_maskz_loadu_ps(load_mask, src + (r0 + i) * lds + k0) : _mm512_setzero_ps();
      transpose16(r);
      float* d = dst + k0 * w + r0;
      for (int k = 0; k < kn; ++k) _mm512_mask_storeu_ps(d + k * w, store_mask, r[k]);
    }
  }
}

}  // namespace pydl::gemm::avx512
