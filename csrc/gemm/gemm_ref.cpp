// Naive GEMM reference: C (M x N) = act(alpha * op(A) op(B) + beta * C + bias), row-major.
// op(A) is M x K (A stored M x K, or K x M when trans_a); op(B) is K x N (B stored K x N, or
// N x K when trans_b). One dot product per element of C, accumulated in T in k order.
// The test oracle of the fast driver (gemm.cpp).
#include "gemm/gemm.h"

namespace pydl::gemm {

using pydl::ops::Act;

template <class T>
void gemm_ref(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
              const T* B, int64_t ldb, T beta, T* C, int64_t ldc, const T* bias, Act act, T negative_slope) {
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t j = 0; j < N; ++j) {
      T acc = 0;
      for (int64_t k = 0; k < K; ++k) {
        const T a = trans_a ? A[k * lda + i] : A[i * lda + k];
        const T b = trans_b ? B[j * ldb + k] : B[k * ldb + j];
        acc += a * b;
      }
      T v = alpha * acc;
      if (beta != T(0)) v += beta * C[i * ldc + j];
      if (bias) v += bias[j];
      if (act == Act::relu) v = v < T(0) ? T(0) : v;  // NaN stays NaN
      else if (act == Act::leaky_relu) v = v < T(0) ? v * negative_slope : v;
      C[i * ldc + j] = v;
    }
    if (act != Act::none && act != Act::relu && act != Act::leaky_relu)
      pydl::ops::activation_forward<T>(C + i * ldc, C + i * ldc, N, act, negative_slope);
  }
}

template void gemm_ref<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*,
                              int64_t, float, float*, int64_t, const float*, Act, float);
template void gemm_ref<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t, const double*,
                               int64_t, double, double*, int64_t, const double*, Act, double);

}  // namespace pydl::gemm
