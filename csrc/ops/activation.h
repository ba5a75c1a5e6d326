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

}  // namespace pydl::ops
