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
void kernel(int64_t kc, const typename S::T* a, const typename S::T* b, int64_t ldb, typename S::T* c,
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
    a += MR;
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

}  // namespace

void kernel_f32(int64_t kc, const float* a, const float* b, int64_t ldb, float* c, int64_t ldc, int m, int n,
                const Epilogue<float>& ep) {
  kernel<F32, kMrF32, kNrF32 / 16>(kc, a, b, ldb, c, ldc, m, n, ep);
}

void kernel_f64(int64_t kc, const double* a, const double* b, int64_t ldb, double* c, int64_t ldc, int m, int n,
                const Epilogue<double>& ep) {
  kernel<F64, kMrF64, kNrF64 / 8>(kc, a, b, ldb, c, ldc, m, n, ep);
}

}  // namespace pydl::gemm::avx512
