// GEMM micro-kernels, one set per ISA, each in its own namespace and translation unit
// (kernel_avx512.cpp, kernel_avx2.cpp, kernel_generic.cpp). Each exports one table, `kernels`,
// that the driver (gemm.cpp) picks with runtime::select(). This header carries declarations and
// plain data only (no code), so no inline body can be shared between ISA translation units.
//
// Micro-kernel contract (one MR x NR tile of C, row-major):
//   a   A sliver, MR rows x kc, k-major: a[k * aks + i] (packed: aks = MR, rows past the edge zero;
//       or op(A) = A^T read in place: aks = A's leading dimension)
//   b   B sliver, kc x NR: b[k * ldb + j] (packed: ldb = NR; rows of B in place: ldb = B's)
//   c   C tile, m x n valid (m <= MR, n <= NR), row stride ldc
//   c[i][j] = act(alpha * sum_k a[k][i] b[k][j] + beta * c[i][j] + bias[j]) for i < m, j < n;
//   beta == 0: c is not read. bias may be null. act: 0 none, 1 relu, 2 leaky_relu (negative_slope).
//
// Transposing pack: dst[k * w + r] = src[r * lds + k] for r < rows, k < kc; rows r in
// [rows, w) are zero. Packs row-major A into k-major slivers (w = MR) and B^T into B slivers
// (w = NR). The vector ISAs transpose in registers; generic has the scalar loops.
#pragma once

#include <cstdint>

namespace pydl::gemm {

template <class T>
struct Epilogue {
  T alpha;
  T beta;
  const T* bias;  // already offset to the tile's first column, or null
  int act;        // 0 none, 1 relu, 2 leaky_relu
  T negative_slope;
};

template <class T>
using MicroKernel = void (*)(int64_t kc, const T* a, int64_t aks, const T* b, int64_t ldb, T* c, int64_t ldc, int m,
                             int n, const Epilogue<T>& ep);
template <class T>
using TransposePack = void (*)(T* dst, int w, const T* src, int64_t lds, int rows, int64_t kc);

// One ISA's kernels and blocking for one dtype: MR x NR register tile, KC x NC cache blocks (NC a
// multiple of NR).
template <class T>
struct Plan {
  MicroKernel<T> kernel;
  TransposePack<T> tpack;
  int mr, nr;
  int64_t kc, nc;
};

struct IsaKernels {
  Plan<float> f32;
  Plan<double> f64;
};

namespace generic {
constexpr int kMrF32 = 4, kNrF32 = 8, kMrF64 = 4, kNrF64 = 4;
extern const IsaKernels kernels;
void transpose_pack_f64(double* dst, int w, const double* src, int64_t lds, int rows, int64_t kc);  // (scalar)
}  // namespace generic

#if defined(PYDL_X86)
namespace avx2 {
constexpr int kMrF32 = 6, kNrF32 = 16, kMrF64 = 6, kNrF64 = 8;
extern const IsaKernels kernels;
}  // namespace avx2

namespace avx512 {
constexpr int kMrF32 = 12, kNrF32 = 32, kMrF64 = 12, kNrF64 = 16;
extern const IsaKernels kernels;
}  // namespace avx512
#else
namespace avx2 = generic;  // other CPUs: only the portable kernels are built
namespace avx512 = generic;
#endif

}  // namespace pydl::gemm
