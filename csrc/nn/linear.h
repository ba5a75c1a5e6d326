// Fused Linear(+activation) layer: forward through the GEMM epilogue, backward in one call.
#pragma once

#include <cstdint>

#include "ops/activation.h"

namespace pydl::nn {

// True when act'(z) can be computed from y = act(z) alone, so that a fused layer need not keep
// z: none, relu, sigmoid, tanh, and leaky_relu with a non-negative slope (sign(y) == sign(z)).
bool act_backward_from_output(pydl::ops::Act act, double negative_slope);

// y is (N, OUT), x is (N, IN), w is (OUT, IN), b is (OUT,) or null.
// y = act(x W^T + b).
template <class T>
void linear_forward(T* y, const T* x, const T* w, const T* b, int64_t N, int64_t IN, int64_t OUT,
                    pydl::ops::Act act, T negative_slope);

// dy is (N, OUT), x is (N, IN), w is (OUT, IN), y is (N, OUT) (the forward output; read only
// when act != none, and then act_backward_from_output(act) must hold).
// dz = dy * act'(z), dx = dz W (dx may be null), dw = dz^T x (+ dw when accumulate_w),
// db = sum over rows of dz (+ db when accumulate_b; db may be null).
template <class T>
void linear_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w, const T* y, int64_t N,
                     int64_t IN, int64_t OUT, pydl::ops::Act act, T negative_slope, bool accumulate_w,
                     bool accumulate_b);

}  // namespace pydl::nn
