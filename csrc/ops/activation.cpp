// Elementwise activations: reference (scalar, any T) kernels and the dispatcher.
//
// x, y, dy, dx are flat arrays of n elements. Math (x: input, y = f(x)):
//   relu        y = x < 0 ? 0 : x              dx = dy * [x > 0]
//   leaky_relu  y = x < 0 ? s*x : x            dx = dy * (x > 0 ? 1 : s)      s = negative_slope
//   sigmoid     y = 1 / (1 + exp(-x))          dx = dy * y * (1 - y)
//   tanh        y = tanh(x)                    dx = dy * (1 - y^2)
//   gelu        y = x * Phi(x) = x/2 * (1 + erf(x/sqrt 2)) = x/2 * erfc(-x/sqrt 2)
//                                              dx = dy * (Phi(x) + x * phi(x)),  phi = N(0,1) pdf
//   gelu_tanh   y = x/2 * (1 + tanh(u)), u = sqrt(2/pi) * (x + 0.044715 x^3)   (PyTorch's approximation)
//                 = x * sigmoid(2u)
//                                              dx = dy * (1/2 (1 + t) + x/2 (1 - t^2) u'(x)),
//                                                   t = tanh(u), u' = sqrt(2/pi) (1 + 3*0.044715 x^2)
//                                                 = dy * s (1 + x (1 - s) 2u'),  s = sigmoid(2u)
// gelu and gelu_tanh are evaluated without the 1 + erf / 1 + tanh cancellation, which loses all
// relative accuracy in the negative tail (float32 gelu returned the wrong sign near x = -5.45 and
// -0 below -5.5): through erfc (libm) and sigmoid(2u) = e^2u / (1 + e^2u) for x < 0.
//   none        y = x                          dx = dy
// NaN propagates (relu(NaN) = NaN: "x < 0 ? 0 : x" keeps it), tanh(+-inf) = +-1, sigmoid(-inf) = 0.
// float32 runs the vectorised kernel of the active ISA (activation_avx512.cpp, activation_avx2.cpp,
// activation_generic.cpp); float64 runs the reference below with libm. Large arrays are split into
// contiguous ranges across threads; each element's result does not depend on the split.
#include "ops/activation.h"

#include <cmath>
#include <cstring>

#include "ops/vmath.h"
#include "runtime/cpu.h"
#include "runtime/parallel.h"

namespace pydl::ops {

namespace {
const char* const kActNames[kNumActs] = {"none", "relu", "leaky_relu", "sigmoid", "tanh", "gelu", "gelu_tanh"};
}  // namespace

bool parse_act(const char* name, Act* out) {
  if (!name) return false;
  for (int i = 0; i < kNumActs; ++i)
    if (std::strcmp(name, kActNames[i]) == 0) {
      *out = static_cast<Act>(i);
      return true;
    }
  return false;
}

const char* act_name(Act act) { return kActNames[static_cast<int>(act)]; }

namespace ref {

// 1 / (1 + e^-v) with full relative accuracy for v < 0 as well (e^v / (1 + e^v) there).
template <class T>
T sigmoid_stable(T v) {
  if (v >= T(0)) return T(1) / (T(1) + std::exp(-v));
  const T e = std::exp(v);
  return e / (T(1) + e);
}

template <class T>
T forward_one(Act act, T x, T negative_slope) {
  const T kSqrt2OverPi = T(0.7978845608028654), kInvSqrt2 = T(0.7071067811865476);
  switch (act) {
    case Act::relu: return x < T(0) ? T(0) : x;
    case Act::leaky_relu: return x < T(0) ? negative_slope * x : x;
    case Act::sigmoid: return T(1) / (T(1) + std::exp(-x));
    case Act::tanh: return std::tanh(x);
    case Act::gelu: return T(0.5) * x * std::erfc(-x * kInvSqrt2);
    case Act::gelu_tanh: return x * sigmoid_stable(T(2) * kSqrt2OverPi * (x + T(0.044715) * x * x * x));
    case Act::none: break;
  }
  return x;
}

template <class T>
T backward_one(Act act, T dy, T x, T y, T negative_slope) {
  const T kSqrt2OverPi = T(0.7978845608028654), kInvSqrt2 = T(0.7071067811865476);
  const T kInvSqrt2Pi = T(0.3989422804014327);
  switch (act) {
    case Act::relu: return x > T(0) ? dy : T(0);
    case Act::leaky_relu: return x > T(0) ? dy : dy * negative_slope;
    case Act::sigmoid: return dy * y * (T(1) - y);
    case Act::tanh: return dy * (T(1) - y * y);
    case Act::gelu: {
      T cdf = T(0.5) * std::erfc(-x * kInvSqrt2);
      T pdf = kInvSqrt2Pi * std::exp(T(-0.5) * x * x);
      return dy * (cdf + x * pdf);
    }
    case Act::gelu_tanh: {
      T x2 = x * x;
      T v = T(2) * kSqrt2OverPi * (x + T(0.044715) * x2 * x);
      T s = sigmoid_stable(v), s1 = sigmoid_stable(-v);  // s and 1 - s, each without cancellation
      T dv = T(2) * kSqrt2OverPi * (T(1) + T(3 * 0.044715) * x2);
      return dy * s * (T(1) + x * s1 * dv);
    }
    case Act::none: break;
  }
  return dy;
}

}  // namespace ref

// x, y are (n,).
template <class T>
void activation_forward_ref(T* y, const T* x, int64_t n, Act act, T negative_slope) {
  for (int64_t i = 0; i < n; ++i) y[i] = ref::forward_one(act, x[i], negative_slope);
}

// dx, dy, x, y are (n,); x or y may be null when act does not read it.
template <class T>
void activation_backward_ref(T* dx, const T* dy, const T* x, const T* y, int64_t n, Act act, T negative_slope) {
  for (int64_t i = 0; i < n; ++i)
    dx[i] = ref::backward_one(act, dy[i], x ? x[i] : T(0), y ? y[i] : T(0), negative_slope);
}

namespace {

// Elements per thread below which threading does not pay (a range costs ~ a few us); libm
// (float64) is slower per element: a quarter of it.
constexpr int64_t kGrainF32 = 1 << 16, kGrainF64 = kGrainF32 / 4;

template <class T>
const T* offset(const T* p, int64_t lo) { return p ? p + lo : nullptr; }

}  // namespace

template <>
void activation_forward<float>(float* y, const float* x, int64_t n, Act act, float negative_slope) {
  auto f = runtime::select(avx512::activation_forward_f32, avx2::activation_forward_f32,
                           generic::activation_forward_f32);
  runtime::parallel_for(n, kGrainF32, [&](int64_t lo, int64_t hi) { f(y + lo, x + lo, hi - lo, act, negative_slope); });
}

template <>
void activation_forward<double>(double* y, const double* x, int64_t n, Act act, double negative_slope) {
  runtime::parallel_for(n, kGrainF64, [&](int64_t lo, int64_t hi) {
    activation_forward_ref(y + lo, x + lo, hi - lo, act, negative_slope);
  });
}

template <>
void activation_backward<float>(float* dx, const float* dy, const float* x, const float* y, int64_t n, Act act,
                                float negative_slope) {
  auto f = runtime::select(avx512::activation_backward_f32, avx2::activation_backward_f32,
                           generic::activation_backward_f32);
  runtime::parallel_for(n, kGrainF32, [&](int64_t lo, int64_t hi) {
    f(dx + lo, dy + lo, offset(x, lo), offset(y, lo), hi - lo, act, negative_slope);
  });
}

template <>
void activation_backward<double>(double* dx, const double* dy, const double* x, const double* y, int64_t n, Act act,
                                 double negative_slope) {
  runtime::parallel_for(n, kGrainF64, [&](int64_t lo, int64_t hi) {
    activation_backward_ref(dx + lo, dy + lo, offset(x, lo), offset(y, lo), hi - lo, act, negative_slope);
  });
}

// x, y are (n,).
void vmath_f32(float* y, const float* x, int64_t n, VmathFn fn) {
  using F = void (*)(float*, const float*, int64_t);
  F f = fn == VmathFn::exp    ? runtime::select(avx512::vexp_f32, avx2::vexp_f32, generic::vexp_f32)
        : fn == VmathFn::tanh ? runtime::select(avx512::vtanh_f32, avx2::vtanh_f32, generic::vtanh_f32)
                              : runtime::select(avx512::verf_f32, avx2::verf_f32, generic::verf_f32);
  runtime::parallel_for(n, kGrainF32, [&](int64_t lo, int64_t hi) { f(y + lo, x + lo, hi - lo); });
}

}  // namespace pydl::ops
