// GEMM: the C++ API. C = act(alpha * op(A) op(B) + beta * C + bias), row-major. BLAS argument
// order (the one exception to outputs-first, ARCHITECTURE.md section 3.7).
//
// A is op(A) = A (M x K, lda >= K) or A^T (A stored K x M, lda >= M); likewise B (K x N or N x K).
// C is M x N with ldc >= N. bias (length N, may be null) is added to every row, then the
// activation (pydl::ops::Act, every kind; negative_slope is leaky_relu's) is applied while the tile
// is hot: none, relu and leaky_relu inside the micro-kernel, the others by
// pydl::ops::activation_forward on each finished row block of C while it is in cache.
// beta == 0 means C is write-only (NaNs in old C do not propagate), as BLAS.
// Multithreaded over output blocks only: bitwise identical results for any thread count.
#pragma once

#include <cstdint>

#include "ops/activation.h"

namespace pydl::gemm {

// The fast driver (gemm.cpp): packed blocks, micro-kernels of the active ISA, threads over tiles.
template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
          const T* B, int64_t ldb, T beta, T* C, int64_t ldc, const T* bias = nullptr,
          pydl::ops::Act act = pydl::ops::Act::none, T negative_slope = T(0));

// The naive reference (gemm_ref.cpp): same contract, one dot product per element of C, one
// thread. The oracle the tests compare gemm() against.
template <class T>
void gemm_ref(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
              const T* B, int64_t ldb, T beta, T* C, int64_t ldc, const T* bias = nullptr,
              pydl::ops::Act act = pydl::ops::Act::none, T negative_slope = T(0));

}  // namespace pydl::gemm
