// GEMM micro-kernels, one set per ISA, each in its own namespace and translation unit
// (kernel_avx512.cpp, kernel_avx2.cpp, kernel_generic.cpp). The driver (gemm.cpp) packs the
// operands and calls them; this header carries declarations and plain data only (no code), so
// no inline body can be shared between ISA translation units.
//
// Micro-kernel contract (one MR x NR tile of C, row-major):
//   a   A sliver, MR rows x kc, k-major: a[k * aks + i] (packed: aks = MR, rows past the edge zero;
//       or op(A) = A^T read in place: aks = A's leading dimension)
//   b   B sliver, kc x NR: b[k * ldb + j] (packed: ldb = NR; rows of B in place: ldb = B's)
//   c   C tile, m x n valid (m <= MR, n <= NR), row stride ldc
//   c[i][j] = act(alpha * sum_k a[k][i] b[k][j] + beta * c[i][j] + bias[j]) for i < m, j < n;
//   beta == 0: c is not read. bias may be null. act: 0 none, 1 relu, 2 leaky_relu (slope).
#pragma once

#include <cstdint>

namespace pydl::gemm {

template <class T>
struct Epilogue {
  T alpha;
  T beta;
  const T* bias;  // already offset to the tile's first column, or null
  int act;        // 0 none, 1 relu, 2 leaky_relu
  T slope;
};

// Transposing pack: dst[k * w + r] = src[r * lds + k] for r < rows, k < kc; rows r in
// [rows, w) are zero. Packs row-major A into k-major slivers (w = MR) and B^T into B slivers
// (w = NR). The generic driver has a scalar version; the ISA versions transpose in registers.

namespace avx512 {
constexpr int kMrF32 = 12, kNrF32 = 32, kMrF64 = 12, kNrF64 = 16;
void transpose_pack_f32(float* dst, int w, const float* src, int64_t lds, int rows, int64_t kc);
void transpose_pack_f64(double* dst, int w, const double* src, int64_t lds, int rows, int64_t kc);
void kernel_f32(int64_t kc, const float* a, int64_t aks, const float* b, int64_t ldb,
                float* c, int64_t ldc, int m, int n, const Epilogue<float>& ep);
void kernel_f64(int64_t kc, const double* a, int64_t aks, const double* b, int64_t ldb,
                double* c, int64_t ldc, int m, int n, const Epilogue<double>& ep);
}  // namespace avx512

namespace avx2 {
constexpr int kMrF32 = 6, kNrF32 = 16, kMrF64 = 6, kNrF64 = 8;
void transpose_pack_f32(float* dst, int w, const float* src, int64_t lds, int rows, int64_t kc);
void kernel_f32(int64_t kc, const float* a, int64_t aks, const float* b, int64_t ldb,
                float* c, int64_t ldc, int m, int n, const Epilogue<float>& ep);
void kernel_f64(int64_t kc, const double* a, int64_t aks, const double* b, int64_t ldb,
                double* c, int64_t ldc, int m, int n, const Epilogue<double>& ep);
}  // namespace avx2

namespace generic {
constexpr int kMrF32 = 4, kNrF32 = 8, kMrF64 = 4, kNrF64 = 4;
void kernel_f32(int64_t kc, const float* a, int64_t aks, const float* b, int64_t ldb,
                float* c, int64_t ldc, int m, int n, const Epilogue<float>& ep);
void kernel_f64(int64_t kc, const double* a, int64_t aks, const double* b, int64_t ldb,
                double* c, int64_t ldc, int m, int n, const Epilogue<double>& ep);
}  // namespace generic

}  // namespace pydl::gemm
