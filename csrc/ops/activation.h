// Elementwise activations: the C++ API other kernels call (the GEMM epilogue, fused layer
// backward passes). Implemented in csrc/ops/activation*.cpp.
#pragma once

#include <cstdint>

namespace pydl::ops {

enum class Act : int { none = 0, relu, leaky_relu, sigmoid, tanh, gelu, gelu_tanh };
constexpr int kNumActs = 7;

// Parses "none", "relu", "leaky_relu", "sigmoid", "tanh", "gelu", "gelu_tanh"; false otherwise.
bool parse_act(const char* name, Act* out);
// The name parse_act reads for act.
const char* act_name(Act act);

// y = act(x); x, y are (n,) (y may alias x). negative_slope: leaky_relu's slope for x < 0.
template <class T>
void activation_forward(T* y, const T* x, int64_t n, Act act, T negative_slope);

// dx = dy * act'(x); dy, dx are (n,) (dx may alias dy); x is the forward input and y its output,
// (n,) each: each kind reads what it needs (relu/leaky_relu/gelu: x; sigmoid/tanh: y), the other
// may be null.
template <class T>
void activation_backward(T* dx, const T* dy, const T* x, const T* y, int64_t n, Act act, T negative_slope);

// Defined for float (vectorised, active ISA) and double (libm) in activation.cpp.
template <>
void activation_forward<float>(float* y, const float* x, int64_t n, Act act, float negative_slope);
template <>
void activation_forward<double>(double* y, const double* x, int64_t n, Act act, double negative_slope);
template <>
void activation_backward<float>(float* dx, const float* dy, const float* x, const float* y, int64_t n, Act act,
                                float negative_slope);
template <>
void activation_backward<double>(double* dx, const double* dy, const double* x, const double* y, int64_t n, Act act,
                                 double negative_slope);

}  // namespace pydl::ops
