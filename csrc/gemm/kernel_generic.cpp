// Portable GEMM micro-kernels (baseline x86-64 / any CPU): C tile (MR x NR, row-major) += A
// sliver (MR x kc) times B sliver (kc x NR). float32 4 x 8, float64 4 x 4: fixed-size loops the
// compiler vectorises at the baseline ISA (SSE2 on x86-64), 8 accumulator registers. Epilogue:
// alpha, beta, bias, relu/leaky_relu, element by element. Scalar packing loops (kernels.h).
#include "gemm/kernels.h"

namespace pydl::gemm::generic {
namespace {

// The micro-kernel contract of kernels.h on an MR x NR tile.
template <class T, int MR, int NR>
void kernel(int64_t kc, const T* a, int64_t aks, int64_t ars, const T* b, int64_t ldb, T* c, int64_t ldc, int m,
            int n, const Epilogue<T>& ep) {
  T acc[MR][NR] = {};
  const int64_t ri = ars ? ars : 1;  // distance between the rows of the sliver
  for (int64_t k = 0; k < kc; ++k) {
    T bk[NR];
    for (int j = 0; j < NR; ++j) bk[j] = b[j];
    for (int i = 0; i < MR; ++i) {
      const T ai = i < m ? a[i * ri] : T(0);  // rows read in place stop at m
      for (int j = 0; j < NR; ++j) acc[i][j] += ai * bk[j];
    }
    a += aks;
    b += ldb;
  }
  for (int i = 0; i < m; ++i) {
    T* ci = c + i * ldc;
    for (int j = 0; j < n; ++j) {
      T x = ep.alpha * acc[i][j];
      if (ep.beta != T(0)) x += ep.beta * ci[j];
      if (ep.bias) x += ep.bias[j];
      if (ep.act == 1) x = x < T(0) ? T(0) : x;
      else if (ep.act == 2) x = x < T(0) ? x * ep.negative_slope : x;
      ci[j] = x;
    }
  }
}

// dst[k * w + r] = src[r * lds + k] for r < rows, zero for rows <= r < w.
template <class T>
void transpose_pack(T* dst, int w, const T* src, int64_t lds, int rows, int64_t kc) {
  constexpr int64_t kb = 16;  // k-chunks keep the written lines in L1
  for (int64_t k1 = 0; k1 < kc; k1 += kb) {
    const int64_t k2 = kc < k1 + kb ? kc : k1 + kb;
    for (int r = 0; r < rows; ++r)
      for (int64_t k = k1; k < k2; ++k) dst[k * w + r] = src[r * lds + k];
    for (int r = rows; r < w; ++r)
      for (int64_t k = k1; k < k2; ++k) dst[k * w + r] = T(0);
  }
}

// dst[k * w + c] = src[k * lds + c] for c < cols, zero for cols <= c < w.
template <class T>
void copy_pack(T* dst, int w, const T* src, int64_t lds, int cols, int64_t kc) {
  for (int64_t k = 0; k < kc; ++k) {
    const T* s = src + k * lds;
    T* d = dst + k * w;
    for (int c = 0; c < cols; ++c) d[c] = s[c];
    for (int c = cols; c < w; ++c) d[c] = T(0);
  }
}

}  // namespace

const IsaKernels kernels = {
    {kernel<float, kMrF32, kNrF32>, transpose_pack<float>, copy_pack<float>, kMrF32, kNrF32, kNrF32, nullptr, 0, 0, ~uint32_t(0)},
    {kernel<double, kMrF64, kNrF64>, transpose_pack<double>, copy_pack<double>, kMrF64, kNrF64, kNrF64, nullptr, 0, 0, ~uint32_t(0)},
};

}  // namespace pydl::gemm::generic
