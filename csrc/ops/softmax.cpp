// Softmax / log-softmax over the last axis: reference kernels and the dispatcher.
//
// x, y, dy, dx are (rows, cols) row-major. Per row, with m = max_j x_j and s = sum_j exp(x_j - m):
//   softmax      y_j = exp(x_j - m) / s            dx_j = y_j * (dy_j - sum_k dy_k y_k)
//   log_softmax  y_j = x_j - m - log(s)            dx_j = dy_j - exp(y_j) * sum_k dy_k
// Subtracting the max keeps exp in range. IEEE cases follow that formula, as numpy computes it:
// a row holding +inf gives NaN everywhere (inf - inf), a row of all -inf gives NaN, NaN spreads
// to its whole row. float32 runs the vectorised rows of the active ISA (softmax_kernels.inc),
// float64 the reference below. Rows are split across threads (a row's result does not depend on the split).
#include "ops/softmax.h"

#include <cmath>
#include <limits>

#include "ops/vmath.h"
#include "runtime/cpu.h"
#include "runtime/parallel.h"

namespace pydl::ops {

// x, y are (rows, cols).
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
      T l = std::log(s);  // (x - m) - l: m + l would round at the scale of m
      for (int64_t j = 0; j < cols; ++j) yr[j] = (xr[j] - m) - l;
    } else {
      T inv = T(1) / s;
      for (int64_t j = 0; j < cols; ++j) yr[j] = std::exp(xr[j] - m) * inv;
    }
  }
}

// dx, dy, y are (rows, cols).
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

// float32: the vectorised rows of the active ISA; float64: the reference.
void rows_forward(float* y, const float* x, int64_t rows, int64_t cols, bool log) {
  runtime::select(avx512::softmax_forward_f32, avx2::softmax_forward_f32, generic::softmax_forward_f32)(y, x, rows,
                                                                                                      cols, log);
}
void rows_forward(double* y, const double* x, int64_t rows, int64_t cols, bool log) {
  softmax_forward_ref(y, x, rows, cols, log);
}
void rows_backward(float* dx, const float* dy, const float* y, int64_t rows, int64_t cols, bool log) {
  runtime::select(avx512::softmax_backward_f32, avx2::softmax_backward_f32, generic::softmax_backward_f32)(
      dx, dy, y, rows, cols, log);
}
void rows_backward(double* dx, const double* dy, const double* y, int64_t rows, int64_t cols, bool log) {
  softmax_backward_ref(dx, dy, y, rows, cols, log);
}

// Rows per thread: at least 32K elements.
int64_t row_grain(int64_t cols) { return cols > 0 ? ((int64_t(1) << 15) + cols - 1) / cols : int64_t(1) << 62; }

}  // namespace

// x, y are (rows, cols).
template <class T>
void softmax_forward(T* y, const T* x, int64_t rows, int64_t cols, bool log) {
  runtime::parallel_for(rows, row_grain(cols), [&](int64_t lo, int64_t hi) {
    rows_forward(y + lo * cols, x + lo * cols, hi - lo, cols, log);
  });
}

// dx, dy, y are (rows, cols).
template <class T>
void softmax_backward(T* dx, const T* dy, const T* y, int64_t rows, int64_t cols, bool log) {
  runtime::parallel_for(rows, row_grain(cols), [&](int64_t lo, int64_t hi) {
    rows_backward(dx + lo * cols, dy + lo * cols, y + lo * cols, hi - lo, cols, log);
  });
}

template void softmax_forward<float>(float*, const float*, int64_t, int64_t, bool);
template void softmax_forward<double>(double*, const double*, int64_t, int64_t, bool);
template void softmax_backward<float>(float*, const float*, const float*, int64_t, int64_t, bool);
template void softmax_backward<double>(double*, const double*, const double*, int64_t, int64_t, bool);

}  // namespace pydl::ops
