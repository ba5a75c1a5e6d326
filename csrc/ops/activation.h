// Elementwise activations: the C++ API other kernels call (the GEMM epilogue, fused layer
// backward passes). Implemented in csrc/ops/activation*.cpp.
#pragma once

#include <cstdint>

namespace pydl::ops {

enum class Act : int { none = 0, relu, leaky_relu, sigmoid, tanh, gelu, gelu_tanh };

// Parses "none", "relu", "leaky_relu", "sigmoid", "tanh", "gelu", "gelu_tanh"; false otherwise.
bool parse_act(const char* name, Act* out);

// y = act(x) over n elements (y may alias x). alpha is leaky_relu's negative slope.
template <class T>
void activation_forward(Act act, const T* x, T* y, int64_t n, T alpha);

// dx = dy * act'(x) over n elements (dx may alias dy). x is the forward input and y its output;
// each kind reads what it needs (relu/leaky_relu/gelu: x; sigmoid/tanh: y), the other may be null.
template <class T>
void activation_backward(Act act, const T* dy, const T* x, const T* y, T* dx, int64_t n, T alpha);

// Defined for float (vectorised, active ISA) and double (libm) in activation.cpp.
template <>
void activation_forward<float>(Act act, const float* x, float* y, int64_t n, float alpha);
template <>
void activation_forward<double>(Act act, const double* x, double* y, int64_t n, double alpha);
template <>
void activation_backward<float>(Act act, const float* dy, const float* x, const float* y, float* dx, int64_t n,
                                float alpha);
template <>
void activation_backward<double>(Act act, const double* dy, const double* x, const double* y, double* dx, int64_t n,
                                 double alpha);

}  // namespace pydl::ops
