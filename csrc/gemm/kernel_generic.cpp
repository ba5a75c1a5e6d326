// Portable GEMM micro-kernels (baseline x86-64 / any CPU): C tile (MR x NR, row-major) +=
// packed A sliver (MR x kc, k-major) times B sliver (kc x NR). float32 4 x 8, float64 4 x 4:
// fixed-size loops the compiler vectorises at the baseline ISA (SSE2 on x86-64), 8 accumulator
// registers. Epilogue: alpha, beta, bias, relu/leaky_relu, element by element. Scalar transposing
// pack (kernels.h).
#include "gemm/kernels.h"

namespace pydl::gemm::generic {
namespace {

// The micro-kernel contract of kernels.h on an MR x NR tile.
template <class T, int MR, int NR>
void kernel(int64_t kc, const T* a, int64_t aks, const T* b, int64_t ldb, T* c, int64_t ldc, int m, int n,
            const Epilogue<T>& ep) {
  T acc[MR][NR] = {};
  for (int64_t k = 0; k < kc; ++k) {
    T bk[NR];
    for (int j = 0; j < NR; ++j) bk[j] = b[j];
    for (int i = 0; i < MR; ++i) {
      const T ai = a[i];
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

}  // namespace

void transpose_pack_f64(double* dst, int w, const double* src, int64_t lds, int rows, int64_t kc) {
  transpose_pack<double>(dst, w, src, lds, rows, kc);
}

const IsaKernels kernels = {
    {kernel<float, kMrF32, kNrF32>, transpose_pack<float>, kMrF32, kNrF32, 256, 256},
    {kernel<double, kMrF64, kNrF64>, transpose_pack<double>, kMrF64, kNrF64, 192, 192},
};

}  // namespace pydl::gemm::generic
