// Batch normalization over (N, C, S) (BatchNorm2d: S = H*W; BatchNorm1d on (N, C, L): S = L):
// statistics per channel c over the N*S values x[n, c, :], which lie in N contiguous blocks of S.
#pragma once

#include <cstdint>

namespace pydl::ops {

// x, y are (N, C, S); gamma, beta (C,) or null (affine=False); mean, invstd (C,) outputs (saved for
// backward); running_mean, running_var (C,) updated in place when non-null. With M = N*S:
//   mean = sum x / M, var = sum (x - mean)^2 / M (two passes, in double), invstd = 1 / sqrt(var + eps),
//   y = (x - mean) * invstd * gamma + beta,
//   running_mean = (1 - m) running_mean + m mean, running_var = (1 - m) running_var + m var M/(M-1).
template <class T>
void batchnorm2d_forward_train(T* y, T* mean, T* invstd, T* running_mean, T* running_var, const T* x,
                               const T* gamma, const T* beta, int64_t N, int64_t C, int64_t S, double eps,
                               double momentum);

// Eval: y = (x - running_mean) / sqrt(running_var + eps) * gamma + beta.
template <class T>
void batchnorm2d_forward_eval(T* y, const T* x, const T* running_mean, const T* running_var, const T* gamma,
                              const T* beta, int64_t N, int64_t C, int64_t S, double eps);

// dy, x, dx are (N, C, S) (dx may be null); mean, invstd (C,) as the forward used them;
// xhat = (x - mean) invstd, where in training the batch mean is recomputed in double from x
// (the saved T value is rounded). dgamma (+)= sum dy xhat, dbeta (+)= sum dy (each may be null; added to
// when accumulate). training: dx = gamma invstd (dy - mean(dy) - xhat mean(dy xhat)); eval: dx = gamma invstd dy.
template <class T>
void batchnorm2d_backward(T* dx, T* dgamma, T* dbeta, const T* dy, const T* x, const T* mean, const T* invstd,
                          const T* gamma, int64_t N, int64_t C, int64_t S, bool training, bool accumulate);

}  // namespace pydl::ops
