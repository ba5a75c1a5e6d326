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
//
// Class indices live in memory the kernel does not own (ARCHITECTURE.md 3.4): each y_i is read
// exactly once per use (read_target), checked against [0, c), and only the checked local value
// indexes logits, weight and grad. A bad index skips its row and is reported (CeBadTarget).
#include <cmath>
#include <limits>
#include <mutex>
#include <vector>

#include "ops/softmax.h"
#include "ops/vmath.h"
#include "runtime/cpu.h"
#include "runtime/parallel.h"

namespace pydl::ops {

// Loss of row i (unscaled); writes the scaled gradient row when a.grad is set. y: the row's
// class index, checked to lie in [0, c) by the caller (ignored for probability targets).
template <class T>
double cross_entropy_row_ref(const CeRowArgs<T, double>& a, int64_t i, int64_t y) {
  const int64_t c = a.c;
  const T* x = a.logits + i * c;
  double m = -std::numeric_limits<double>::infinity();
  for (int64_t j = 0; j < c; ++j) m = x[j] > m ? double(x[j]) : m;
  // Everything relative to m (as the float32 kernel): logp_j = (x_j - m) - l, l = log s. Not
  // lse = m + l, which rounds at the scale of m (rows of equal logits 1e30 gave a loss of 0).
  double s = 0;
  for (int64_t j = 0; j < c; ++j) s += std::exp(double(x[j]) - m);
  const double l = std::log(s);
  auto nlogp = [&](int64_t j) { return l - (double(x[j]) - m); };  // -logp_j
  const double eps_c = a.eps / double(c);
  auto w = [&](int64_t j) { return a.weight ? double(a.weight[j]) : 1.0; };
  double loss = 0;
  if (a.target_idx) {
    const double wy = (1.0 - a.eps) * w(y);
    loss = wy * nlogp(y);
    if (a.eps != 0.0) {
      double sm = 0;
      for (int64_t j = 0; j < c; ++j) sm += w(j) * nlogp(j);
      loss += eps_c * sm;
    }
    if (a.grad) {
      T* g = a.grad + i * c;
      const double coef = wy + eps_c * a.weight_sum;
      for (int64_t j = 0; j < c; ++j) {
        double p = std::exp((double(x[j]) - m) - l);
        g[j] = T(a.scale * (p * coef - eps_c * w(j) - (j == y ? wy : 0.0)));
      }
    }
  } else {
    const T* t = a.target_prob + i * c;
    double S = 0;
    for (int64_t j = 0; j < c; ++j) {
      double tj = (1.0 - a.eps) * double(t[j]) + eps_c;
      S += w(j) * tj;
      loss += w(j) * tj * nlogp(j);
    }
    if (a.grad) {
      T* g = a.grad + i * c;
      for (int64_t j = 0; j < c; ++j) {
        double tj = (1.0 - a.eps) * double(t[j]) + eps_c;
        g[j] = T(a.scale * (std::exp((double(x[j]) - m) - l) * S - w(j) * tj));
      }
    }
  }
  return loss;
}

namespace {

// One read of a class index that another thread may be writing: a relaxed atomic load, so the
// compiler cannot read the memory again after the check (a plain load may be re-done).
inline int64_t read_target(const int64_t* p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }

inline bool valid_target(int64_t y, int64_t c) { return y >= 0 && y < c; }

// The first bad index of the call (lowest row), merged from the ranges under a lock (rare path).
struct BadTargets {
  std::mutex m;
  CeBadTarget first;
  void add(int64_t pos, int64_t value) {
    std::lock_guard<std::mutex> lk(m);
    if (first.pos < 0 || pos < first.pos) first = {pos, value};
  }
};

using RowF32 = double (*)(const CeRowArgs<float, float>&, int64_t, int64_t);

double row(RowF32 f, const CeRowArgs<float, float>& r, int64_t i, int64_t y) { return f(r, i, y); }
double row(RowF32, const CeRowArgs<double, double>& r, int64_t i, int64_t y) { return cross_entropy_row_ref(r, i, y); }

// Loss of rows [lo, hi) into losses[]: float32 with the vectorised row kernel, float64 with the
// reference. Rows whose class index is out of range are skipped (loss 0) and recorded in bad.
template <class T, class R>
void rows(const R& r, RowF32 f, const int64_t* target_idx, int64_t c, double* losses, BadTargets* bad, int64_t lo,
          int64_t hi) {
  for (int64_t i = lo; i < hi; ++i) {
    int64_t y = 0;
    if (target_idx) {
      y = read_target(target_idx + i);
      if (!valid_target(y, c)) {
        losses[i] = 0;
        bad->add(i, y);
        continue;
      }
    }
    losses[i] = row(f, r, i, y);
  }
}

CeRowArgs<float, float> row_args(const CeRowArgs<float, double>& a) {
  return {a.grad, a.logits, a.target_idx, a.target_prob, a.weight, a.c, static_cast<float>(a.eps),
          static_cast<float>(a.weight_sum), static_cast<float>(a.scale)};
}
const CeRowArgs<double, double>& row_args(const CeRowArgs<double, double>& a) { return a; }

}  // namespace

int64_t cross_entropy_check_targets(const int64_t* target_idx, int64_t n, int64_t c) {
  for (int64_t i = 0; i < n; ++i)
    if (!valid_target(target_idx[i], c)) return i;
  return -1;
}

// grad, logits, target_prob are (n, c), target_idx is (n,), weight is (c,).
template <class T>
double cross_entropy(T* grad, const T* logits, const int64_t* target_idx, const T* target_prob, const T* weight,
                     int64_t n, int64_t c, double label_smoothing, bool mean, CeBadTarget* bad) {
  *bad = CeBadTarget{};
  CeRowArgs<T, double> a{grad, logits, target_idx, target_prob, weight, c, label_smoothing, double(c), 1.0};
  if (weight) {
    a.weight_sum = 0;
    for (int64_t j = 0; j < c; ++j) a.weight_sum += double(weight[j]);
  }
  double denom = 1.0;
  if (mean) {
    if (target_idx && weight) {
      denom = 0;
      for (int64_t i = 0; i < n; ++i) {
        const int64_t y = read_target(target_idx + i);
        if (!valid_target(y, c)) {
          *bad = {i, y};
          return std::numeric_limits<double>::quiet_NaN();
        }
        denom += double(weight[y]);
      }
    } else {
      denom = double(n);
    }
  }
  a.scale = 1.0 / denom;
  std::vector<double> losses(static_cast<size_t>(n));
  BadTargets bads;
  const auto r = row_args(a);
  RowF32 f = runtime::select(avx512::cross_entropy_row_f32, avx2::cross_entropy_row_f32,
                             generic::cross_entropy_row_f32);
  const int64_t min_rows = c > 0 ? ((int64_t(1) << 14) + c - 1) / c : n + 1;  // 16K logits per thread
  runtime::parallel_for(n, min_rows, [&](int64_t lo, int64_t hi) {
    rows<T>(r, f, target_idx, c, losses.data(), &bads, lo, hi);
  });
  if (bads.first.pos >= 0) {
    *bad = bads.first;
    return std::numeric_limits<double>::quiet_NaN();
  }
  double total = 0;
  for (int64_t i = 0; i < n; ++i) total += losses[i];
  return total / denom;
}

template double cross_entropy<float>(float*, const float*, const int64_t*, const float*, const float*, int64_t,
                                     int64_t, double, bool, CeBadTarget*);
template double cross_entropy<double>(double*, const double*, const int64_t*, const double*, const double*, int64_t,
                                      int64_t, double, bool, CeBadTarget*);

}  // namespace pydl::ops
