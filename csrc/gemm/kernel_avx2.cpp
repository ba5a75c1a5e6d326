// AVX2+FMA GEMM micro-kernels: C tile (MR x NR, row-major) += packed A sliver (MR x kc, k-major)
// times B sliver (kc x NR). float32: 6 x 16 (2 ymm per row), float64: 6 x 8. 12 ymm accumulators,
// 2 for B, 1 broadcast: 15 of the 16 registers. Partial tiles go through a small temporary tile
// so that every element sees the same arithmetic. Epilogue: alpha, beta, bias, relu/leaky_relu.
// Compiled with -mavx2 -mfma; everything here is local to pydl::gemm::avx2.
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

// The primitives of the micro-kernel, float and double side by side (+ and * are GCC's vector
// operators, the same operations as _mm256_add_ps / _mm256_mul_ps).
__m256 set1(float x) { return _mm256_set1_ps(x); }
__m256d set1(double x) { return _mm256_set1_pd(x); }
__m256 load(const float* p) { return _mm256_loadu_ps(p); }
__m256d load(const double* p) { return _mm256_loadu_pd(p); }
void store(float* p, __m256 v) { _mm256_storeu_ps(p, v); }
void store(double* p, __m256d v) { _mm256_storeu_pd(p, v); }
__m256 fma(__m256 a, __m256 b, __m256 c) { return _mm256_fmadd_ps(a, b, c); }
__m256d fma(__m256d a, __m256d b, __m256d c) { return _mm256_fmadd_pd(a, b, c); }
__m256 lt0(__m256 x) { return _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ); }
__m256d lt0(__m256d x) { return _mm256_cmp_pd(x, _mm256_setzero_pd(), _CMP_LT_OQ); }
__m256 blend(__m256 x, __m256 y, __m256 mask) { return _mm256_blendv_ps(x, y, mask); }
__m256d blend(__m256d x, __m256d y, __m256d mask) { return _mm256_blendv_pd(x, y, mask); }

// Full MR x NR tile: accumulate, then the epilogue on registers. c/bias cover all NR columns.
template <class T, int MR, int NV>
void tile(int64_t kc, const T* a, int64_t aks, const T* b, int64_t ldb, T* c, int64_t ldc, int m, const T* bias_p,
          const Epilogue<T>& ep) {
  using V = typename Vec<T>::V;
  constexpr int L = Vec<T>::L;
  V acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = set1(T(0));
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
  const V alpha = set1(ep.alpha), beta = set1(ep.beta), slope = set1(ep.negative_slope), zero = set1(T(0));
  const bool read_c = ep.beta != 0;
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    if (i >= m) break;
    T* ci = c + i * ldc;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      V x = acc[i][v] * alpha;
      if (read_c) x = fma(beta, load(ci + v * L), x);
      if (bias_p) x = x + load(bias_p + v * L);
      if (ep.act == 1) x = blend(x, zero, lt0(x));
      else if (ep.act == 2) x = blend(x, x * slope, lt0(x));
      store(ci + v * L, x);
    }
  }
}

// The micro-kernel contract of kernels.h on an MR x (NV vectors) block.
template <class T, int MR, int NV>
void kernel(int64_t kc, const T* a, int64_t aks, const T* b, int64_t ldb, T* c, int64_t ldc, int m, int n,
            const Epilogue<T>& ep) {
  constexpr int NR = NV * Vec<T>::L;
  if (n == NR) {
    tile<T, MR, NV>(kc, a, aks, b, ldb, c, ldc, m, ep.bias, ep);
    return;
  }
  // Partial columns: run the full tile on a padded copy, then write back the m x n part.
  alignas(32) T buf[MR * NR];
  alignas(32) T bias[NR];
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < NR; ++j) buf[i * NR + j] = (ep.beta != 0 && j < n) ? c[i * ldc + j] : T(0);
  for (int j = 0; j < NR; ++j) bias[j] = (ep.bias && j < n) ? ep.bias[j] : T(0);
  tile<T, MR, NV>(kc, a, aks, b, ldb, buf, NR, m, ep.bias ? bias : nullptr, ep);
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) c[i * ldc + j] = buf[i * NR + j];
}

// Edge tiles run a smaller register block (3 rows, one vector of columns) instead of computing
// zero padding: same per-element arithmetic, fewer wasted FMAs.
template <class T>
void micro_kernel(int64_t kc, const T* a, int64_t aks, const T* b, int64_t ldb, T* c, int64_t ldc, int m, int n,
                  const Epilogue<T>& ep) {
  if (n > Vec<T>::L) {
    if (m > 3) kernel<T, 6, 2>(kc, a, aks, b, ldb, c, ldc, m, n, ep);
    else kernel<T, 3, 2>(kc, a, aks, b, ldb, c, ldc, m, n, ep);
  } else {
    if (m > 3) kernel<T, 6, 1>(kc, a, aks, b, ldb, c, ldc, m, n, ep);
    else kernel<T, 3, 1>(kc, a, aks, b, ldb, c, ldc, m, n, ep);
  }
}

// ---- transposing pack: dst[k * w + r] = src[r * lds + k] (r < rows), zero for rows <= r < w ----

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

// float32 only: float64 packs with the scalar loops (generic::transpose_pack_f64).
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

}  // namespace

static_assert(kMrF32 == 6 && kNrF32 == 16 && kMrF64 == 6 && kNrF64 == 8, "micro_kernel assumes 6 x 2 vectors");

const IsaKernels kernels = {
    {micro_kernel<float>, transpose_pack_f32, kMrF32, kNrF32, 384, 512},
    {micro_kernel<double>, generic::transpose_pack_f64, kMrF64, kNrF64, 256, 256},
};

}  // namespace pydl::gemm::avx2
