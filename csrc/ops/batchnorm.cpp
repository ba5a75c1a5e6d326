// BatchNorm1d kernels (Ioffe & Szegedy 2015), PyTorch semantics. Row-major (N, C): the column
// reductions walk rows with the channel loop innermost (vectorizes), accumulating in double;
// threads split the channels, so results do not depend on the thread count.
#include "ops/batchnorm.h"

#include <cmath>
#include <cstddef>
#include <vector>

#include "runtime/parallel.h"

namespace pydl::ops {
namespace {

// Runs fn(c0, c1) over blocks of channels, split over threads when there are at least 32K
// elements per thread.
template <class F>
void over_channels(int64_t N, int64_t C, const F& fn) {
  const int64_t grain = ((int64_t(1) << 15) + N - 1) / (N > 0 ? N : 1);  // channels per thread
  runtime::parallel_for(C, grain, fn);
}

// Runs fn(c0, w, s, q) over blocks of w channels from c0, with two zeroed double accumulators
// s, q (w,) per block: the column sums of the statistics.
template <class F>
void over_channels_summing(int64_t N, int64_t C, const F& fn) {
  over_channels(N, C, [&](int64_t c0, int64_t c1) {
    const int64_t w = c1 - c0;
    std::vector<double> acc(static_cast<std::size_t>(2 * w), 0.0);
    fn(c0, w, acc.data(), acc.data() + w);
  });
}

}  // namespace

// x, y are (N, C); mean, invstd, running_mean, running_var, gamma, beta are (C,).
template <class T>
void batchnorm_forward_train(T* y, T* mean, T* invstd, T* running_mean, T* running_var, const T* x, const T* gamma,
                             const T* beta, int64_t N, int64_t C, double eps, double momentum) {
  over_channels_summing(N, C, [&](int64_t c0, int64_t w, double* s, double* q) {
    for (int64_t i = 0; i < N; ++i) {
      const T* row = x + i * C + c0;
      for (int64_t j = 0; j < w; ++j) s[j] += double(row[j]);
    }
    for (int64_t j = 0; j < w; ++j) s[j] /= double(N);
    for (int64_t i = 0; i < N; ++i) {  // two-pass variance: no cancellation
      const T* row = x + i * C + c0;
      for (int64_t j = 0; j < w; ++j) {
        double d = double(row[j]) - s[j];
        q[j] += d * d;
      }
    }
    for (int64_t j = 0; j < w; ++j) {
      int64_t c = c0 + j;
      double var = q[j] / double(N);
      mean[c] = T(s[j]);
      invstd[c] = T(1.0 / std::sqrt(var + eps));
      if (running_mean) running_mean[c] = T((1.0 - momentum) * double(running_mean[c]) + momentum * s[j]);
      if (running_var && N > 1)
        running_var[c] = T((1.0 - momentum) * double(running_var[c]) + momentum * q[j] / double(N - 1));
    }
    for (int64_t i = 0; i < N; ++i) {
      const T* row = x + i * C;
      T* out = y + i * C;
      for (int64_t c = c0; c < c0 + w; ++c) {
        T v = (row[c] - mean[c]) * invstd[c];
        out[c] = gamma ? v * gamma[c] + beta[c] : v;
      }
    }
  });
}

// x, y are (N, C); running_mean, running_var, gamma, beta are (C,).
template <class T>
void batchnorm_forward_eval(T* y, const T* x, const T* running_mean, const T* running_var, const T* gamma,
                            const T* beta, int64_t N, int64_t C, double eps) {
  over_channels(N, C, [&](int64_t c0, int64_t c1) {
    int64_t w = c1 - c0;
    std::vector<T> a(static_cast<std::size_t>(w)), b(static_cast<std::size_t>(w));
    for (int64_t j = 0; j < w; ++j) {  // y = x a + b
      int64_t c = c0 + j;
      T inv = T(1.0 / std::sqrt(double(running_var[c]) + eps));
      a[j] = gamma ? gamma[c] * inv : inv;
      b[j] = (gamma ? beta[c] : T(0)) - running_mean[c] * a[j];
    }
    for (int64_t i = 0; i < N; ++i) {
      const T* row = x + i * C + c0;
      T* out = y + i * C + c0;
      for (int64_t j = 0; j < w; ++j) out[j] = row[j] * a[j] + b[j];
    }
  });
}

// dx, dy, x are (N, C); dgamma, dbeta, mean, invstd, gamma are (C,).
template <class T>
void batchnorm_backward(T* dx, T* dgamma, T* dbeta, const T* dy, const T* x, const T* mean, const T* invstd,
                        const T* gamma, int64_t N, int64_t C, bool training, bool accumulate) {
  over_channels_summing(N, C, [&](int64_t c0, int64_t w, double* sdy, double* sdyx) {
    for (int64_t i = 0; i < N; ++i) {
      const T* g = dy + i * C + c0;
      const T* row = x + i * C + c0;
      for (int64_t j = 0; j < w; ++j) {
        sdy[j] += double(g[j]);
        sdyx[j] += double(g[j]) * (double(row[j]) - double(mean[c0 + j]));
      }
    }
    for (int64_t j = 0; j < w; ++j) {
      int64_t c = c0 + j;
      double dg = sdyx[j] * double(invstd[c]);  // sum dy xhat
      if (dgamma) dgamma[c] = accumulate ? T(double(dgamma[c]) + dg) : T(dg);
      if (dbeta) dbeta[c] = accumulate ? T(double(dbeta[c]) + sdy[j]) : T(sdy[j]);
    }
    if (!dx) return;
    for (int64_t i = 0; i < N; ++i) {
      const T* g = dy + i * C + c0;
      const T* row = x + i * C + c0;
      T* out = dx + i * C + c0;
      for (int64_t j = 0; j < w; ++j) {
        int64_t c = c0 + j;
        double k = double(invstd[c]) * (gamma ? double(gamma[c]) : 1.0);
        if (training) {
          double xhat = (double(row[j]) - double(mean[c])) * double(invstd[c]);
          double mdy = sdy[j] / double(N), mdyx = sdyx[j] * double(invstd[c]) / double(N);
          out[j] = T(k * (double(g[j]) - mdy - xhat * mdyx));
        } else {
          out[j] = T(k * double(g[j]));
        }
      }
    }
  });
}

template void batchnorm_forward_train<float>(float*, float*, float*, float*, float*, const float*, const float*,
                                             const float*, int64_t, int64_t, double, double);
template void batchnorm_forward_train<double>(double*, double*, double*, double*, double*, const double*,
                                              const double*, const double*, int64_t, int64_t, double, double);
template void batchnorm_forward_eval<float>(float*, const float*, const float*, const float*, const float*,
                                            const float*, int64_t, int64_t, double);
template void batchnorm_forward_eval<double>(double*, const double*, const double*, const double*, const double*,
                                             const double*, int64_t, int64_t, double);
template void batchnorm_backward<float>(float*, float*, float*, const float*, const float*, const float*,
                                        const float*, const float*, int64_t, int64_t, bool, bool);
template void batchnorm_backward<double>(double*, double*, double*, const double*, const double*, const double*,
                                         const double*, const double*, int64_t, int64_t, bool, bool);

}  // namespace pydl::ops
