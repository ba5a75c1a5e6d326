// Softmax / log-softmax over the last axis: reference kernels and the dispatcher.
//
// x, y, dy, dx are (rows, cols) row-major. Per row, with m = max_j x_j and s = sum_j exp(x_j - m):
//   softmax      y_j = exp(x_j - m) / s            dx_j = y_j * (dy_j - sum_k dy_k y_k)
//   log_softmax  y_j = x_j - m - log(s)            dx_j = dy_j - exp(y_j) * sum_k dy_k
// Subtracting the max keeps exp in range. IEEE cases follow that formula, as numpy computes it:
// a row holding +inf gives NaN everywhere (inf - inf), a row of all -inf gives NaN, NaN spreads
// to its whole row. Rows are split across threads (a row's result does not depend on the split).
#include "ops/softmax.h"

#include <cmath>
#include <limits>

#include "runtime/threadpool.h"

namespace pydl::ops {

template <class T>
void softmax_forward_ref(T* y, const T* x, int64_t rows, int64_t cols, bool log) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    T m = -std::numeric_limits<T>::infinity();
    for (int64_t j = 0; j < cols; ++j) m = xr[j] > m ? xr[j] : m;
    T s = 0;
    for (int64_t j = 0; j < cols; ++j) s += std::exp(xr[j] - m);
    if (log) {
      T lse = m + std::log(s);
      for (int64_t j = 0; j < cols; ++j) yr[j] = xr[j] - lse;
    } else {
      T inv = T(1) / s;
      for (int64_t j = 0; j < cols; ++j) yr[j] = std::exp(xr[j] - m) * inv;
    }
  }
}

template <class T>
void softmax_backward_ref(T* dx, const T* dy, const T* y, int64_t rows, int64_t cols, bool log) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* dyr = dy + r * cols;
    const T* yr = y + r * cols;
    T* dxr = dx + r * cols;
    T s = 0;
    if (log) {
      for (int64_t j = 0; j < cols; ++j) s += dyr[j];
      for (int64_t j = 0; j < cols; ++j) dxr[j] = dyr[j] - std::exp(yr[j]) * s;
    } else {
      for (int64_t j = 0; j < cols; ++j) s += dyr[j] * yr[j];
      for (int64_t j = 0; j < cols; ++j) dxr[j] = yr[j] * (dyr[j] - s);
    }
  }
}

namespace {

constexpr int64_t kMinChunkElems = 1 << 15;

template <class Fn>
void split_rows(int64_t rows, int64_t cols, Fn fn) {
  int64_t min_rows = cols > 0 ? (kMinChunkElems + cols - 1) / cols : rows + 1;
  if (runtime::threads_for(rows, min_rows < 1 ? 1 : min_rows) <= 1) {
    fn(int64_t(0), rows);
  } else {
    runtime::parallel_for(0, rows, [&](int64_t lo, int64_t hi) { fn(lo, hi); });
  }
}

}  // namespace

template <class T>
void softmax_forward(T* y, const T* x, int64_t rows, int64_t cols, bool log) {
  split_rows(rows, cols, [&](int64_t lo, int64_t hi) {
    softmax_forward_ref(y + lo * cols, x + lo * cols, hi - lo, cols, log);
  });
}

template <class T>
void softmax_backward(T* dx, const T* dy, const T* y, int64_t rows, int64_t cols, bool log) {
  split_rows(rows, cols, [&](int64_t lo, int64_t hi) {
    softmax_backward_ref(dx + lo * cols, dy + lo * cols, y + lo * cols, hi - lo, cols, log);
  });
}

template void softmax_forward<float>(float*, const float*, int64_t, int64_t, bool);
template void softmax_forward<double>(double*, const double*, int64_t, int64_t, bool);
template void softmax_backward<float>(float*, const float*, const float*, int64_t, int64_t, bool);
template void softmax_backward<double>(double*, const double*, const double*, int64_t, int64_t, bool);

}  // namespace pydl::ops
