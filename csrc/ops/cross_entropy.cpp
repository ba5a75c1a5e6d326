// Fused log-softmax + negative log-likelihood (torch.nn.functional.cross_entropy): reference
// kernels and the driver.
//
// logits x (n, c), per row i: lse_i = m + log sum_c exp(x_ic - m), logp_ic = x_ic - lse_i,
// p_ic = exp(logp_ic); class weights w_c (1 when absent), W = sum_c w_c, label smoothing eps.
// Class-index target y_i:
//   loss_i = (1-eps) w_{y_i} (-logp_{i,y_i}) + (eps/c) sum_c w_c (-logp_ic)
//   dloss_i/dx_ic = p_ic ((1-eps) w_{y_i} + (eps/c) W) - (1-eps) w_{y_i} [c = y_i] - (eps/c) w_c
//   mean divides by D = sum_i w_{y_i} (PyTorch, also with smoothing); sum by D = 1.
// Probability target t_ic, smoothed t'_ic = (1-eps) t_ic + eps/c:
//   loss_i = -sum_c w_c t'_ic logp_ic
//   dloss_i/dx_ic = p_ic S_i - w_c t'_ic,   S_i = sum_c w_c t'_ic
//   mean divides by D = n.
// L = sum_i loss_i / D and dL/dx = dloss_i/dx / D, written in the same pass over the row as the
// loss. float32 rows run the vectorised kernel of the active ISA (cross_entropy_kernels.inc),
// float64 rows the reference below. Rows are split across threads; per-row losses are summed in
// double in row order afterwards (identical for any thread count).
#include <cmath>
#include <limits>
#include <vector>

#include "ops/softmax.h"
#include "ops/vmath.h"
#include "runtime/cpu.h"
#include "runtime/parallel.h"

namespace pydl::ops {

// Loss of row i (unscaled); writes the scaled gradient row when a.grad is set.
template <class T>
double cross_entropy_row_ref(const CeRowArgs<T, double>& a, int64_t i) {
  const int64_t c = a.c;
  const T* x = a.logits + i * c;
  double m = -std::numeric_limits<double>::infinity();
  for (int64_t j = 0; j < c; ++j) m = x[j] > m ? double(x[j]) : m;
  double s = 0;
  for (int64_t j = 0; j < c; ++j) s += std::exp(double(x[j]) - m);
  const double lse = m + std::log(s);
  const double eps_c = a.eps / double(c);
  auto w = [&](int64_t j) { return a.weight ? double(a.weight[j]) : 1.0; };
  double loss = 0;
  if (a.target_idx) {
    const int64_t y = a.target_idx[i];
    const double wy = (1.0 - a.eps) * w(y);
    loss = wy * (lse - double(x[y]));
    if (a.eps != 0.0) {
      double sm = 0;
      for (int64_t j = 0; j < c; ++j) sm += w(j) * (lse - double(x[j]));
      loss += eps_c * sm;
    }
    if (a.grad) {
      T* g = a.grad + i * c;
      const double coef = wy + eps_c * a.weight_sum;
      for (int64_t j = 0; j < c; ++j) {
        double p = std::exp(double(x[j]) - lse);
        g[j] = T(a.scale * (p * coef - eps_c * w(j) - (j == y ? wy : 0.0)));
      }
    }
  } else {
    const T* t = a.target_prob + i * c;
    double S = 0;
    for (int64_t j = 0; j < c; ++j) {
      double tj = (1.0 - a.eps) * double(t[j]) + eps_c;
      S += w(j) * tj;
      loss -= w(j) * tj * (double(x[j]) - lse);
    }
    if (a.grad) {
      T* g = a.grad + i * c;
      for (int64_t j = 0; j < c; ++j) {
        double tj = (1.0 - a.eps) * double(t[j]) + eps_c;
        g[j] = T(a.scale * (std::exp(double(x[j]) - lse) * S - w(j) * tj));
      }
    }
  }
  return loss;
}

namespace {

// Loss of rows [lo, hi) into losses[]: float32 with the vectorised row kernel, float64 with the reference.
void rows(const CeRowArgs<float, double>& a, double* losses, int64_t lo, int64_t hi) {
  const CeRowArgs<float, float> r{a.grad, a.logits, a.target_idx, a.target_prob, a.weight, a.c,
                                  static_cast<float>(a.eps), static_cast<float>(a.weight_sum),
                                  static_cast<float>(a.scale)};
  auto row = runtime::select(avx512::cross_entropy_row_f32, avx2::cross_entropy_row_f32,
                             generic::cross_entropy_row_f32);
  for (int64_t i = lo; i < hi; ++i) losses[i] = row(r, i);
}

void rows(const CeRowArgs<double, double>& a, double* losses, int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; ++i) losses[i] = cross_entropy_row_ref(a, i);
}

}  // namespace

int64_t cross_entropy_check_targets(const int64_t* target_idx, int64_t n, int64_t c) {
  for (int64_t i = 0; i < n; ++i)
    if (target_idx[i] < 0 || target_idx[i] >= c) return i;
  return -1;
}

// grad, logits, target_prob are (n, c), target_idx is (n,), weight is (c,).
template <class T>
double cross_entropy(T* grad, const T* logits, const int64_t* target_idx, const T* target_prob, const T* weight,
                     int64_t n, int64_t c, double label_smoothing, bool mean) {
  CeRowArgs<T, double> a{grad, logits, target_idx, target_prob, weight, c, label_smoothing, double(c), 1.0};
  if (weight) {
    a.weight_sum = 0;
    for (int64_t j = 0; j < c; ++j) a.weight_sum += double(weight[j]);
  }
  double denom = 1.0;
  if (mean) {
    if (target_idx && weight) {
      denom = 0;
      for (int64_t i = 0; i < n; ++i) denom += double(weight[target_idx[i]]);
    } else {
      denom = double(n);
    }
  }
  a.scale = 1.0 / denom;
  std::vector<double> losses(static_cast<size_t>(n));
  const int64_t min_rows = c > 0 ? ((int64_t(1) << 14) + c - 1) / c : n + 1;  // 16K logits per thread
  runtime::parallel_for(n, min_rows, [&](int64_t lo, int64_t hi) { rows(a, losses.data(), lo, hi); });
  double total = 0;
  for (int64_t i = 0; i < n; ++i) total += losses[i];
  return total / denom;
}

template double cross_entropy<float>(float*, const float*, const int64_t*, const float*, const float*, int64_t,
                                     int64_t, double, bool);
template double cross_entropy<double>(double*, const double*, const int64_t*, const double*, const double*, int64_t,
                                      int64_t, double, bool);

}  // namespace pydl::ops
