// Portable GEMM micro-kernels (baseline x86-64 / any CPU): C tile (MR x NR, row-major) +=
// packed A sliver (MR x kc, k-major) times B sliver (kc x NR). float32 4 x 8, float64 4 x 4:
// fixed-size loops the compiler vectorises at the baseline ISA (SSE2 on x86-64), 8 accumulator
// registers. Epilogue: alpha, beta, bias, relu/leaky_relu, element by element.
#include "gemm/kernels.h"

namespace pydl::gemm::generic {
namespace {

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
      else if (ep.act == 2) x = x < T(0) ? x * ep.slope : x;
      ci[j] = x;
    }
  }
}

}  // namespace

void kernel_f32(int64_t kc, const float* a, int64_t aks, const float* b, int64_t ldb,
                float* c, int64_t ldc, int m, int n, const Epilogue<float>& ep) {
  kernel<float, kMrF32, kNrF32>(kc, a, aks, b, ldb, c, ldc, m, n, ep);
}

void kernel_f64(int64_t kc, const double* a, int64_t aks, const double* b, int64_t ldb,
                double* c, int64_t ldc, int m, int n, const Epilogue<double>& ep) {
  kernel<double, kMrF64, kNrF64>(kc, a, aks, b, ldb, c, ldc, m, n, ep);
}

}  // namespace pydl::gemm::generic
