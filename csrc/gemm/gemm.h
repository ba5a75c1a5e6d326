// GEMM: the C++ API. C = act(alpha * op(A) op(B) + beta * C + bias), row-major.
//
// A is op(A) = A (M x K, lda >= K) or A^T (A stored K x M, lda >= M); likewise B (K x N or N x K).
// C is M x N with ldc >= N. bias (length N, may be null) is added to every row, then the
// activation (pydl::ops::Act; none and relu at least) is applied while the tile is hot.
// beta == 0 means C is write-only (NaNs in old C do not propagate), as BLAS.
// Multithreaded over output blocks only: bitwise identical results for any thread count.
#pragma once

#include <cstdint>

#include "ops/activation.h"

namespace pydl::gemm {

template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
          const T* B, int64_t ldb, T beta, T* C, int64_t ldc, const T* bias = nullptr,
          pydl::ops::Act act = pydl::ops::Act::none, T act_alpha = T(0));

// The naive reference: same contract as gemm(), one dot product per element of C, single thread.
// The test oracle and the fallback.
template <class T>
void gemm_ref(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
              const T* B, int64_t ldb, T beta, T* C, int64_t ldc, const T* bias = nullptr,
              pydl::ops::Act act = pydl::ops::Act::none, T act_alpha = T(0));

// True if the GEMM epilogue can apply `act`: all kinds. none, relu and leaky_relu run inside the
// micro-kernel; sigmoid, tanh, gelu, gelu_tanh run pydl::ops::activation_forward on each finished
// row block of C while it is in cache.
bool epilogue_supports(pydl::ops::Act act);

}  // namespace pydl::gemm
