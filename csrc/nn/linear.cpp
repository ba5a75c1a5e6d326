// Fused Linear(+activation): the forward is one GEMM with the bias/activation epilogue, the
// backward one call computing dz = dy * act'(.), dx = dz W, dw (+)= dz^T x, db (+)= colsum(dz).
#include "nn/linear.h"

#include <cstddef>
#include <vector>

#include "gemm/gemm.h"

namespace pydl::nn {

using pydl::ops::Act;

bool act_backward_from_output(Act act, double negative_slope) {
  switch (act) {
    case Act::none:
    case Act::relu:
    case Act::sigmoid:
    case Act::tanh:
      return true;
    case Act::leaky_relu:
      return negative_slope >= 0.0;
    default:
      return false;
  }
}

// y is (N, OUT), x is (N, IN), w is (OUT, IN), b is (OUT,) or null.
template <class T>
void linear_forward(T* y, const T* x, const T* w, const T* b, int64_t N, int64_t IN, int64_t OUT, Act act,
                    T negative_slope) {
  if (N == 0) return;
  // Every activation runs in the GEMM epilogue, on each block of rows while it is in cache.
  pydl::gemm::gemm<T>(false, true, N, OUT, IN, T(1), x, IN, w, IN, T(0), y, OUT, b, act, negative_slope);
}

// db (OUT,) (+)= sum over the N rows of dz (N, OUT); row-major, so the inner loop vectorizes.
template <class T>
static void column_sum(T* db, const T* dz, int64_t N, int64_t OUT, bool accumulate) {
  if (!accumulate)
    for (int64_t j = 0; j < OUT; ++j) db[j] = T(0);
  for (int64_t i = 0; i < N; ++i) {
    const T* row = dz + i * OUT;
    for (int64_t j = 0; j < OUT; ++j) db[j] += row[j];
  }
}

// dx is (N, IN), dw is (OUT, IN), db is (OUT,), dy and y are (N, OUT), x is (N, IN), w is (OUT, IN).
template <class T>
void linear_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w, const T* y, int64_t N, int64_t IN,
                     int64_t OUT, Act act, T negative_slope, bool accumulate_w, bool accumulate_b) {
  if (N == 0) {  // empty batch: zero gradients (K = 0 GEMMs are left out)
    if (!accumulate_w)
      for (int64_t i = 0; i < OUT * IN; ++i) dw[i] = T(0);
    if (db && !accumulate_b)
      for (int64_t j = 0; j < OUT; ++j) db[j] = T(0);
    return;
  }
  const T* dz = dy;
  thread_local std::vector<T> scratch;
  if (act != Act::none) {
    if (scratch.size() < static_cast<std::size_t>(N * OUT)) scratch.resize(static_cast<std::size_t>(N * OUT));
    // act'(z) from y: relu / leaky_relu (slope >= 0) read the sign, which y shares with z.
    pydl::ops::activation_backward<T>(scratch.data(), dy, y, y, N * OUT, act, negative_slope);
    dz = scratch.data();
  }
  if (dx) pydl::gemm::gemm<T>(false, false, N, IN, OUT, T(1), dz, OUT, w, IN, T(0), dx, IN);
  pydl::gemm::gemm<T>(true, false, OUT, IN, N, T(1), dz, OUT, x, IN, accumulate_w ? T(1) : T(0), dw, IN);
  if (db) column_sum<T>(db, dz, N, OUT, accumulate_b);
}

template void linear_forward<float>(float*, const float*, const float*, const float*, int64_t, int64_t, int64_t,
                                    Act, float);
template void linear_forward<double>(double*, const double*, const double*, const double*, int64_t, int64_t,
                                     int64_t, Act, double);
template void linear_backward<float>(float*, float*, float*, const float*, const float*, const float*,
                                     const float*, int64_t, int64_t, int64_t, Act, float, bool, bool);
template void linear_backward<double>(double*, double*, double*, const double*, const double*, const double*,
                                      const double*, int64_t, int64_t, int64_t, Act, double, bool, bool);

}  // namespace pydl::nn
