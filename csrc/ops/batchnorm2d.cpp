// BatchNorm2d kernels on NCHW (Ioffe & Szegedy 2015), PyTorch semantics. Each channel's values lie
// in N contiguous blocks of S = H*W. Sums are taken in double with 8 interleaved partial sums
// (lane j takes the elements i = j mod 8 of each block, then the lanes are added in order), so the
// loops vectorise and the order of additions is fixed by the shape. Threads split the channels:
// results do not depend on the thread count.
#include "ops/batchnorm2d.h"

#include <cmath>

#include "runtime/parallel.h"

namespace pydl::ops {

namespace {

constexpr int kLanes = 8;

// Runs fn(c0, c1) over channel blocks; serial unless the work is large.
template <class F>
void over_channels(int64_t N, int64_t C, int64_t S, F&& fn) {
  if (N * C * S < (1 << 15) || C < 2) {
    fn(int64_t(0), C);
    return;
  }
  pydl::runtime::parallel_for(C, 1, [&](int64_t c0, int64_t c1) { fn(c0, c1); });
}

double lanes_total(const double* acc) {
  double t = 0.0;
  for (int j = 0; j < kLanes; ++j) t += acc[j];
  return t;
}

// sum over the channel's blocks of f(x): x points at block 0 of the channel, blocks `stride` apart.
template <class T, class F>
double channel_sum(const T* x, int64_t N, int64_t S, int64_t stride, F&& f) {
  double acc[kLanes] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int64_t n = 0; n < N; ++n) {
    const T* p = x + n * stride;
    int64_t i = 0;
    for (; i + kLanes <= S; i += kLanes)
      for (int j = 0; j < kLanes; ++j) acc[j] += f(double(p[i + j]));
    for (; i < S; ++i) acc[i % kLanes] += f(double(p[i]));
  }
  return lanes_total(acc);
}

// y[n, c, :] = x[n, c, :] * a + b for one channel, in double.
template <class T>
void channel_affine(T* y, const T* x, int64_t N, int64_t S, int64_t stride, double a, double b) {
  for (int64_t n = 0; n < N; ++n) {
    const T* p = x + n * stride;
    T* q = y + n * stride;
    for (int64_t i = 0; i < S; ++i) q[i] = T(double(p[i]) * a + b);
  }
}

}  // namespace

template <class T>
void batchnorm2d_forward_train(T* y, T* mean, T* invstd, T* running_mean, T* running_var, const T* x,
                               const T* gamma, const T* beta, int64_t N, int64_t C, int64_t S, double eps,
                               double momentum) {
  const int64_t stride = C * S;
  const double M = double(N * S);
  over_channels(N, C, S, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const T* xc = x + c * S;
      double mu = channel_sum(xc, N, S, stride, [](double v) { return v; }) / M;
      double q = channel_sum(xc, N, S, stride, [mu](double v) { return (v - mu) * (v - mu); });
      double var = q / M, inv = 1.0 / std::sqrt(var + eps);
      mean[c] = T(mu);
      invstd[c] = T(inv);
      if (running_mean) running_mean[c] = T((1.0 - momentum) * double(running_mean[c]) + momentum * mu);
      if (running_var && M > 1)
        running_var[c] = T((1.0 - momentum) * double(running_var[c]) + momentum * q / (M - 1));
      double a = gamma ? inv * double(gamma[c]) : inv;
      channel_affine(y + c * S, xc, N, S, stride, a, (gamma ? double(beta[c]) : 0.0) - mu * a);
    }
  });
}

template <class T>
void batchnorm2d_forward_eval(T* y, const T* x, const T* running_mean, const T* running_var, const T* gamma,
                              const T* beta, int64_t N, int64_t C, int64_t S, double eps) {
  over_channels(N, C, S, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      double inv = 1.0 / std::sqrt(double(running_var[c]) + eps);
      double a = gamma ? inv * double(gamma[c]) : inv;
      double b = (gamma ? double(beta[c]) : 0.0) - double(running_mean[c]) * a;
      channel_affine(y + c * S, x + c * S, N, S, C * S, a, b);
    }
  });
}

template <class T>
void batchnorm2d_backward(T* dx, T* dgamma, T* dbeta, const T* dy, const T* x, const T* mean, const T* invstd,
                          const T* gamma, int64_t N, int64_t C, int64_t S, bool training, bool accumulate) {
  const int64_t stride = C * S;
  const double M = double(N * S);
  over_channels(N, C, S, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const T *g = dy + c * S, *xc = x + c * S;
      // In training the batch mean is summed again here (same order as the forward, so the same
      // double): the saved T mean is rounded, which matters when |mean| >> std in float32.
      const double saved_mu = double(mean[c]), inv = double(invstd[c]);
      double sdy = 0.0, sdyx = 0.0, mu = saved_mu;  // sum dy, sum dy (x - mu)
      {
        double a1[kLanes] = {0, 0, 0, 0, 0, 0, 0, 0}, a2[kLanes] = {0, 0, 0, 0, 0, 0, 0, 0};
        double a3[kLanes] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int64_t n = 0; n < N; ++n) {
          const T *gp = g + n * stride, *xp = xc + n * stride;
          int64_t i = 0;
          for (; i + kLanes <= S; i += kLanes)
            for (int j = 0; j < kLanes; ++j) {
              a1[j] += double(gp[i + j]);
              a2[j] += double(gp[i + j]) * (double(xp[i + j]) - saved_mu);
              a3[j] += double(xp[i + j]);
            }
          for (; i < S; ++i) {
            a1[i % kLanes] += double(gp[i]);
            a2[i % kLanes] += double(gp[i]) * (double(xp[i]) - saved_mu);
            a3[i % kLanes] += double(xp[i]);
          }
        }
        sdy = lanes_total(a1);
        sdyx = lanes_total(a2);
        if (training) {  // sum dy (x - mu) = sum dy (x - saved_mu) - (mu - saved_mu) sum dy
          mu = lanes_total(a3) / M;
          sdyx -= (mu - saved_mu) * sdy;
        }
      }
      const double dg = sdyx * inv;  // sum dy xhat
      if (dgamma) dgamma[c] = accumulate ? T(double(dgamma[c]) + dg) : T(dg);
      if (dbeta) dbeta[c] = accumulate ? T(double(dbeta[c]) + sdy) : T(sdy);
      if (!dx) continue;
      const double k = inv * (gamma ? double(gamma[c]) : 1.0);
      // training: dx = k (dy - sdy/M - (x - mean) inv^2 sdyx/M) = k dy + bx (x - mean) + b0
      const double bx = training ? -k * inv * inv * sdyx / M : 0.0;
      const double b0 = training ? -k * sdy / M : 0.0;
      for (int64_t n = 0; n < N; ++n) {
        const T *gp = g + n * stride, *xp = xc + n * stride;
        T* out = dx + c * S + n * stride;
        for (int64_t i = 0; i < S; ++i) out[i] = T(k * double(gp[i]) + bx * (double(xp[i]) - mu) + b0);
      }
    }
  });
}

#define PYDL_BN2D_INSTANTIATE(T)                                                                              \
  template void batchnorm2d_forward_train<T>(T*, T*, T*, T*, T*, const T*, const T*, const T*, int64_t,      \
                                             int64_t, int64_t, double, double);                              \
  template void batchnorm2d_forward_eval<T>(T*, const T*, const T*, const T*, const T*, const T*, int64_t,   \
                                            int64_t, int64_t, double);                                       \
  template void batchnorm2d_backward<T>(T*, T*, T*, const T*, const T*, const T*, const T*, const T*, int64_t, \
                                        int64_t, int64_t, bool, bool);
PYDL_BN2D_INSTANTIATE(float)
PYDL_BN2D_INSTANTIATE(double)
#undef PYDL_BN2D_INSTANTIATE

}  // namespace pydl::ops
