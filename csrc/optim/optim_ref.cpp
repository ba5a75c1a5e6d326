// Naive reference optimizer steps: one element at a time, the formulas of docs/API.md §1 (optimizers)
// (PyTorch's update rules and order of operations). The test oracle for the fast paths
// (optim_body.inc). Shapes: every array is (n,), see optim.h.
#include <cmath>

#include "optim/optim.h"

namespace pydl::optim::ref {
namespace {

// g <- -g if maximize; g <- g + wd * p
template <class T>
T effective_grad(T g, T p, bool maximize, T wd) {
  if (maximize) g = -g;
  if (wd != T(0)) g = g + wd * p;
  return g;
}

// SGD: b = g (first step) or momentum*b + (1-dampening)*g; d = g + momentum*b (nesterov) or b;
// p -= lr*d. Without momentum d = g.
// p, buf, g: (n,); buf unused (nullptr) without momentum.
template <class T>
void sgd(T* p, T* buf, const T* g, int64_t n, const SgdArgs& a) {
  const T lr = T(a.lr), mom = T(a.momentum), one_minus_damp = T(1.0 - a.dampening), wd = T(a.weight_decay);
  for (int64_t i = 0; i < n; ++i) {
    T d = effective_grad(g[i], p[i], a.maximize, wd);
    if (a.momentum != 0) {
      T b = a.first ? d : mom * buf[i] + one_minus_damp * d;
      buf[i] = b;
      d = a.nesterov ? d + mom * b : b;
    }
    p[i] = p[i] - lr * d;
  }
}

// Adagrad: s += g^2; p -= clr * g / (sqrt(s) + eps)
// p, sum, g: (n,).
template <class T>
void adagrad(T* p, T* sum, const T* g, int64_t n, const AdagradArgs& a) {
  const T clr = T(a.clr), eps = T(a.eps), wd = T(a.weight_decay);
  for (int64_t i = 0; i < n; ++i) {
    T gi = effective_grad(g[i], p[i], a.maximize, wd);
    T s = sum[i] + gi * gi;
    sum[i] = s;
    p[i] = p[i] - clr * (gi / (std::sqrt(s) + eps));
  }
}

// Adadelta: v = rho*v + (1-rho)*g^2; dx = sqrt(u+eps)/sqrt(v+eps)*g; u = rho*u + (1-rho)*dx^2;
// p -= lr*dx
// p, square_avg, acc_delta, g: (n,).
template <class T>
void adadelta(T* p, T* square_avg, T* acc_delta, const T* g, int64_t n, const AdadeltaArgs& a) {
  const T lr = T(a.lr), rho = T(a.rho), one_minus_rho = T(1.0 - a.rho), eps = T(a.eps), wd = T(a.weight_decay);
  for (int64_t i = 0; i < n; ++i) {
    T gi = effective_grad(g[i], p[i], a.maximize, wd);
    T v = rho * square_avg[i] + one_minus_rho * gi * gi;
    square_avg[i] = v;
    T dx = std::sqrt(acc_delta[i] + eps) / std::sqrt(v + eps) * gi;
    acc_delta[i] = rho * acc_delta[i] + one_minus_rho * dx * dx;
    p[i] = p[i] - lr * dx;
  }
}

// RMSprop: v = alpha*v + (1-alpha)*g^2; centered: ga = alpha*ga + (1-alpha)*g, vt = v - ga^2;
// avg = sqrt(vt) + eps; momentum: b = momentum*b + g/avg, p -= lr*b; else p -= lr*g/avg
// p, square_avg, g: (n,); grad_avg, buf: (n,) or nullptr.
template <class T>
void rmsprop(T* p, T* square_avg, T* grad_avg, T* buf, const T* g, int64_t n, const RmspropArgs& a) {
  const T lr = T(a.lr), alpha = T(a.alpha), one_minus_alpha = T(1.0 - a.alpha), eps = T(a.eps),
          wd = T(a.weight_decay), mom = T(a.momentum);
  for (int64_t i = 0; i < n; ++i) {
    T gi = effective_grad(g[i], p[i], a.maximize, wd);
    T v = alpha * square_avg[i] + one_minus_alpha * gi * gi;
    square_avg[i] = v;
    if (a.centered) {
      T ga = alpha * grad_avg[i] + one_minus_alpha * gi;
      grad_avg[i] = ga;
      v = v - ga * ga;
    }
    T avg = std::sqrt(v) + eps;
    if (a.momentum > 0) {
      T b = mom * buf[i] + gi / avg;
      buf[i] = b;
      p[i] = p[i] - lr * b;
    } else {
      p[i] = p[i] - lr * (gi / avg);
    }
  }
}

// Adam: m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2; vmax = max(vmax, v) (amsgrad);
// p -= step_size * m / (sqrt(v or vmax)/bc2_sqrt + eps). AdamW: p *= 1 - lr*wd first, no g += wd*p.
// p, exp_avg, exp_avg_sq, g: (n,); max_exp_avg_sq: (n,) or nullptr.
template <class T>
void adam(T* p, T* exp_avg, T* exp_avg_sq, T* max_exp_avg_sq, const T* g, int64_t n, const AdamArgs& a) {
  const T b1 = T(a.beta1), one_minus_b1 = T(1.0 - a.beta1), b2 = T(a.beta2), one_minus_b2 = T(1.0 - a.beta2);
  const T eps = T(a.eps), step_size = T(a.step_size), bc2_sqrt = T(a.bc2_sqrt);
  const T decay = T(1.0 - a.lr * a.weight_decay);
  const T wd = a.decoupled ? T(0) : T(a.weight_decay);
  for (int64_t i = 0; i < n; ++i) {
    if (a.decoupled && a.weight_decay != 0) p[i] = p[i] * decay;
    T gi = effective_grad(g[i], p[i], a.maximize, wd);
    T m = b1 * exp_avg[i] + one_minus_b1 * gi;
    T v = b2 * exp_avg_sq[i] + one_minus_b2 * gi * gi;
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    if (a.amsgrad) {
      if (v > max_exp_avg_sq[i]) max_exp_avg_sq[i] = v;
      v = max_exp_avg_sq[i];
    }
    T denom = std::sqrt(v) / bc2_sqrt + eps;
    p[i] = p[i] - step_size * (m / denom);
  }
}

}  // namespace

const ImplKernels kernels = {
    {sgd<float>, adagrad<float>, adadelta<float>, rmsprop<float>, adam<float>},
    {sgd<double>, adagrad<double>, adadelta<double>, rmsprop<double>, adam<double>},
};

}  // namespace pydl::optim::ref
