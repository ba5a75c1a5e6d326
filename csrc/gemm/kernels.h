// GEMM micro-kernels, one set per ISA, each in its own namespace and translation unit
// (kernel_avx512.cpp, kernel_avx2.cpp, kernel_generic.cpp; the two x86 ones share their body,
// kernel_core.inc, compiled once per ISA). Each exports one table, `kernels`, that the driver
// (gemm.cpp) picks with runtime::select(). This header carries declarations and plain data only
// (no code), so no inline body can be shared between ISA translation units.
//
// Micro-kernel contract (one MR x NR tile of C, row-major):
//   a   A sliver, MR rows x kc. ars == 0: k-major, element (i, k) at a[k * aks + i] (packed:
//       aks = MR, rows past the edge zero; or op(A) = A^T read in place: aks = A's leading
//       dimension). ars > 0: rows of A read in place, element (i, k) at a[i * ars + k], aks = 1.
//       Read in place only when m == MR or bit m of Plan::exact_rows is set (no row past the
//       matrix is read).
//   b   B sliver, kc x NR: b[k * ldb + j] (packed: ldb = NR; rows of B in place: ldb = B's)
//   c   C tile, m x n valid (m <= MR, n <= NR), row stride ldc
//   c[i][j] = act(alpha * sum_k a[i][k] b[k][j] + beta * c[i][j] + bias[j]) for i < m, j < n,
//   the sum in k order; beta == 0: c is not read. bias may be null. act: 0 none, 1 relu,
//   2 leaky_relu (negative_slope).
//
// Packing routines (w: MR for A slivers, NR for B slivers):
//   transposing pack  dst[k * w + r] = src[r * lds + k] for r < rows, k < kc; rows [rows, w) zero.
//                     Row-major A into k-major slivers, and B^T into B slivers.
//   copying pack      dst[k * w + c] = src[k * lds + c] for c < cols; columns [cols, w) zero.
//                     A^T into A slivers, B into B slivers.
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
using MicroKernel = void (*)(int64_t kc, const T* a, int64_t aks, int64_t ars, const T* b, int64_t ldb, T* c,
                             int64_t ldc, int m, int n, const Epilogue<T>& ep);
// The micro-kernel down a column strip: rows [0, m) as MR-row tiles from the top (the last one
// of m % MR rows), A's rows i at a + i * row_step (row_step 1 for A^T in place, lda for rows of A),
// C's at c + i * ldc; each tile as MicroKernel would run it, in that order.
template <class T>
using StripKernel = void (*)(int64_t kc, const T* a, int64_t aks, int64_t ars, int64_t row_step, const T* b,
                             int64_t ldb, T* c, int64_t ldc, int m, int n, const Epilogue<T>& ep);
template <class T>
using Pack = void (*)(T* dst, int w, const T* src, int64_t lds, int count, int64_t kc);
// The copying pack of a panel row by row (an A^T panel, MR-wide slivers, or a B block, NR-wide):
// for k in [k0, k1) and every sliver s of the panel's `rows` rows (elements of a source row),
// dst[s * sstride + k * w + i] = src[k * lds + s * w + i] for s * w + i < rows, zero for the rest of
// i < w. Rows [k0, k1) of every sliver are written by this call alone; source rows up to k_end
// exist (short rows are prefetched a few rows ahead, never past k_end).
template <class T>
using PanelPack = void (*)(T* dst, int64_t sstride, int w, const T* src, int64_t lds, int64_t rows, int64_t k0,
                           int64_t k1, int64_t k_end);
// c[i][j] = act(alpha * sum_k a[i * lda + k] b[j * ldb + k] + beta c[i][j] + bias[j]) for i < m <= dot_rows,
// j < n <= dot_cols (kernel_core.inc): C = A B^T with both read in place, row by row.
template <class T>
using DotKernel = void (*)(int64_t K, const T* a, int64_t lda, const T* b, int64_t ldb, T* c, int64_t ldc, int m,
                           int n, const Epilogue<T>& ep);

// One ISA's kernels for one dtype and its MR x NR register tile; the kernel also takes B slivers
// nr_min wide (ldb = nr_min) for n <= nr_min. dot: null where the ISA has none (generic). The
// cache blocks (KC, NC, MC) are derived from the cache sizes at run time (gemm.cpp).
template <class T>
struct Plan {
  MicroKernel<T> kernel;
  Pack<T> tpack;  // transposing
  Pack<T> cpack;  // copying
  int mr, nr, nr_min;
  DotKernel<T> dot;
  int dot_rows, dot_cols;
  // Bit r set: the kernel runs a tile of r rows on a register block of exactly r rows, so an edge
  // sliver of r rows can be read in place (no row past the matrix is read); else it is packed.
  uint32_t exact_rows;
  // Optional (null: the caller loops over kernel). Only for m whose edge rows are in exact_rows.
  StripKernel<T> strip = nullptr;
  // Optional (null: cpack per sliver). Packs an A^T panel or a B block row by row (PanelPack above).
  PanelPack<T> tpanel = nullptr;
  // Optional (null: none). StripKernel over a strip of exactly wide_cols columns (more vectors per
  // row than the tile, fewer rows per block), any m, A read in place: for short k loops
  // (gemm.cpp). Same per-element arithmetic as kernel.
  StripKernel<T> wide = nullptr;
  int wide_cols = 0;
};

struct IsaKernels {
  Plan<float> f32;
  Plan<double> f64;
};

namespace generic {
constexpr int kMrF32 = 4, kNrF32 = 8, kMrF64 = 4, kNrF64 = 4;
extern const IsaKernels kernels;
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
