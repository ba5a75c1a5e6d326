// Batch normalization over (N, C): statistics per column c across the N rows.
#pragma once

#include <cstdint>

namespace pydl::ops {

// x, y are (N, C); gamma, beta (C,) or null (affine=False); mean, invstd (C,) outputs (saved for
// backward); running_mean, running_var (C,) updated in place when non-null (N >= 2):
//   mean = sum x / N, var = sum (x - mean)^2 / N, invstd = 1 / sqrt(var + eps),
//   y = (x - mean) * invstd * gamma + beta,
//   running_mean = (1 - m) running_mean + m mean, running_var = (1 - m) running_var + m var N/(N-1).
template <class T>
void batchnorm_forward_train(T* y, T* mean, T* invstd, T* running_mean, T* running_var, const T* x, const T* gamma,
                             const T* beta, int64_t N, int64_t C, double eps, double momentum);

// Eval: y = (x - running_mean) / sqrt(running_var + eps) * gamma + beta.
template <class T>
void batchnorm_forward_eval(T* y, const T* x, const T* running_mean, const T* running_var, const T* gamma,
                            const T* beta, int64_t N, int64_t C, double eps);

// dy, x, dx are (N, C); mean, invstd (C,) as used by the forward; xhat = (x - mean) invstd.
// dgamma (+)= sum dy xhat, dbeta (+)= sum dy (each may be null; added to when accumulate).
// training: dx = gamma invstd (dy - mean(dy) - xhat mean(dy xhat)); eval: dx = gamma invstd dy.
template <class T>
void batchnorm_backward(T* dx, T* dgamma, T* dbeta, const T* dy, const T* x, const T* mean, const T* invstd,
                        const T* gamma, int64_t N, int64_t C, bool training, bool accumulate);

}  // namespace pydl::ops
