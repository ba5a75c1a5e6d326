// AVX2+FMA GEMM micro-kernels: C tile (MR x NR, row-major) += packed A sliver (MR x kc, k-major)
// times B sliver (kc x NR). float32: 6 x 16 (2 ymm per row), float64: 6 x 8. 12 ymm accumulators,
// 2 for B, 1 broadcast: 15 of the 16 registers. Partial tiles go through a small temporary tile
// so that every element sees the same arithmetic. Epilogue: alpha, beta, bias, relu/leaky_relu.
// Compiled with -mavx2 -mfma; everything here is local to pydl::gemm::avx2.
#include <immintrin.h>

#include "gemm/kernels.h"

namespace pydl::gemm::avx2 {
namespace {

struct F32 {
  using T = float;
  using V = __m256;
  static constexpr int L = 8;
  static V zero() { return _mm256_setzero_ps(); }
  static V set1(T x) { return _mm256_set1_ps(x); }
  static V load(const T* p) { return _mm256_loadu_ps(p); }
  static void store(T* p, V v) { _mm256_storeu_ps(p, v); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V lt0(V x) { return _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ); }
  static V blend(V x, V y, V mask) { return _mm256_blendv_ps(x, y, mask); }
};

struct F64 {
  using T = double;
  using V = __m256d;
  static constexpr int L = 4;
  static V zero() { return _mm256_setzero_pd(); }
  static V set1(T x) { return _mm256_set1_pd(x); }
  static V load(const T* p) { return _mm256_loadu_pd(p); }
  static void store(T* p, V v) { _mm256_storeu_pd(p, v); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
  static V add(V a, V b) { return _mm256_add_pd(a, b); }
  static V lt0(V x) { return _mm256_cmp_pd(x, _mm256_setzero_pd(), _CMP_LT_OQ); }
  static V blend(V x, V y, V mask) { return _mm256_blendv_pd(x, y, mask); }
};

// Full MR x NR tile: accumulate, then the epilogue on registers. c/bias cover all NR columns.
template <class S, int MR, int NV>
void tile(int64_t kc, const typename S::T* a, int64_t aks, const typename S::T* b, int64_t ldb,
          typename S::T* c, int64_t ldc, int m, const typename S::T* bias_p, const Epilogue<typename S::T>& ep) {
  using V = typename S::V;
  constexpr int L = S::L;
  V acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = S::zero();
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
  const V alpha = S::set1(ep.alpha), beta = S::set1(ep.beta), slope = S::set1(ep.slope), zero = S::zero();
  const bool read_c = ep.beta != 0;
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    if (i >= m) break;
    typename S::T* ci = c + i * ldc;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      V x = S::mul(acc[i][v], alpha);
      if (read_c) x = S::fma(beta, S::load(ci + v * L), x);
      if (bias_p) x = S::add(x, S::load(bias_p + v * L));
      if (ep.act == 1) x = S::blend(x, zero, S::lt0(x));
      else if (ep.act == 2) x = S::blend(x, S::mul(x, slope), S::lt0(x));
      S::store(ci + v * L, x);
    }
  }
}

template <class S, int MR, int NV>
void kernel(int64_t kc, const typename S::T* a, int64_t aks, const typename S::T* b, int64_t ldb, typename S::T* c,
            int64_t ldc, int m, int n, const Epilogue<typename S::T>& ep) {
  using T = typename S::T;
  constexpr int NR = NV * S::L;
  if (n == NR) {
    tile<S, MR, NV>(kc, a, aks, b, ldb, c, ldc, m, ep.bias, ep);
    return;
  }
  // Partial columns: run the full tile on a padded copy, then write back the m x n part.
  alignas(32) T buf[MR * NR];
  alignas(32) T bias[NR];
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < NR; ++j) buf[i * NR + j] = (ep.beta != 0 && j < n) ? c[i * ldc + j] : T(0);
  for (int j = 0; j < NR; ++j) bias[j] = (ep.bias && j < n) ? ep.bias[j] : T(0);
  tile<S, MR, NV>(kc, a, aks, b, ldb, buf, NR, m, ep.bias ? bias : nullptr, ep);
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) c[i * ldc + j] = buf[i * NR + j];
}

// Edge tiles run a smaller register block (3 rows, one vector of columns) instead of computing
// zero padding: same per-element arithmetic, fewer wasted FMAs.
template <class S>
void dispatch(int64_t kc, const typename S::T* a, int64_t aks, const typename S::T* b, int64_t ldb,
              typename S::T* c, int64_t ldc, int m, int n, const Epilogue<typename S::T>& ep) {
  static_assert(kMrF32 == 6 && kNrF32 == 16 && kMrF64 == 6 && kNrF64 == 8, "blocks below assume 6 x 2 vectors");
  if (n > S::L) {
    if (m > 3) kernel<S, 6, 2>(kc, a, aks, b, ldb, c, ldc, m, n, ep);
    else kernel<S, 3, 2>(kc, a, aks, b, ldb, c, ldc, m, n, ep);
  } else {
    if (m > 3) kernel<S, 6, 1>(kc, a, aks, b, ldb, c, ldc, m, n, ep);
    else kernel<S, 3, 1>(kc, a, aks, b, ldb, c, ldc, m, n, ep);
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

}  // namespace pydl::gemm::avx2

// ---- transposing pack: dst[k * w + r] = src[r * lds + k] (r < rows), zero for rows <= r < w ----
namespace pydl::gemm::avx2 {
namespace {

// In-register transpose of 8 rows of 8 floats.
void transpose8(__m256 r[8]) {
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

}  // namespace

void transpose_pack_f32(float* dst, int w, const float* src, int64_t lds, int rows, int64_t kc) {
  for (int r0 = 0; r0 < w; r0 += 8) {
    const int nrow = w - r0 < 8 ? w - r0 : 8;
    const int valid = rows - r0 < 0 ? 0 : (rows - r0 < nrow ? rows - r0 : nrow);
    for (int64_t k0 = 0; k0 < kc; k0 += 8) {
      const int kn = kc - k0 < 8 ? int(kc - k0) : 8;
      __m256 r[8];
      if (kn == 8) {
        for (int i = 0; i < 8; ++i) r[i] = i < valid ? _mm256_loadu_ps(src + (r0 + i) * lds + k0) : _mm256_setzero_ps();
      } else {
        alignas(32) float tmp[8][8] = {};
        for (int i = 0; i < valid; ++i)
          for (int k = 0; k < kn; ++k) tmp[i][k] = src[(r0 + i) * lds + k0 + k];
        for (int i = 0; i < 8; ++i) r[i] = _mm256_load_ps(tmp[i]);
      }
      transpose8(r);
      float* d = dst + k0 * w + r0;
      if (nrow == 8) {
        for (int k = 0; k < kn; ++k) _mm256_storeu_ps(d + k * w, r[k]);
      } else {
        alignas(32) float tmp[8];
        for (int k = 0; k < kn; ++k) {
          _mm256_store_ps(tmp, r[k]);
          for (int i = 0; i < nrow; ++i) d[k * w + i] = tmp[i];
        }
      }
    }
  }
}

}  // namespace pydl::gemm::avx2
