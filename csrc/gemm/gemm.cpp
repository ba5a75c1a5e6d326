// GEMM driver: C (M x N) = act(alpha * op(A) op(B) + beta * C + bias). For now the reference.
#include "gemm/gemm.h"

namespace pydl::gemm {

using pydl::ops::Act;

template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
          const T* B, int64_t ldb, T beta, T* C, int64_t ldc, const T* bias, Act act, T act_alpha) {
  gemm_ref<T>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bias, act, act_alpha);
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*,
                          int64_t, float, float*, int64_t, const float*, Act, float);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t, const double*,
                           int64_t, double, double*, int64_t, const double*, Act, double);

}  // namespace pydl::gemm
