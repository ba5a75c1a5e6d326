// Elementwise activations: reference (scalar, any T) kernels and the dispatcher.
//
// x, y, dy, dx are flat arrays of n elements. Math (x: input, y = f(x)):
//   relu        y = x < 0 ? 0 : x              dx = dy * [x > 0]
//   leaky_relu  y = x < 0 ? alpha*x : x        dx = dy * (x > 0 ? 1 : alpha)
//   sigmoid     y = 1 / (1 + exp(-x))          dx = dy * y * (1 - y)
//   tanh        y = tanh(x)                    dx = dy * (1 - y^2)
//   gelu        y = x * Phi(x) = x/2 * (1 + erf(x/sqrt 2))
//                                              dx = dy * (Phi(x) + x * phi(x)),  phi = N(0,1) pdf
//   gelu_tanh   y = x/2 * (1 + tanh(u)), u = sqrt(2/pi) * (x + 0.044715 x^3)   (PyTorch's approximation)
//                                              dx = dy * (1/2 (1 + t) + x/2 (1 - t^2) u'(x)),
//                                                   t = tanh(u), u' = sqrt(2/pi) (1 + 3*0.044715 x^2)
//   none        y = x                          dx = dy
// NaN propagates (relu(NaN) = NaN: "x < 0 ? 0 : x" keeps it), tanh(+-inf) = +-1, sigmoid(-inf) = 0.
// float32 runs the vectorised kernel of the active ISA (activation_avx512.cpp, activation_avx2.cpp,
// activation_generic.cpp); float64 runs the reference below with libm. Large arrays are split into
// contiguous chunks across threads; each element's result does not depend on the split.
#include "ops/activation.h"

#include <cmath>
#include <cstring>

#include "ops/vmath.h"
#include "runtime/cpu.h"
#include "runtime/threadpool.h"

namespace pydl::ops {

bool parse_act(const char* name, Act* out) {
  static const struct { const char* name; Act act; } table[] = {
      {"none", Act::none},       {"relu", Act::relu}, {"leaky_relu", Act::leaky_relu},
      {"sigmoid", Act::sigmoid}, {"tanh", Act::tanh}, {"gelu", Act::gelu},
      {"gelu_tanh", Act::gelu_tanh}};
  if (!name) return false;
  for (const auto& e : table)
    if (std::strcmp(name, e.name) == 0) {
      *out = e.act;
      return true;
    }
  return false;
}

namespace ref {

template <class T>
T forward_one(Act act, T x, T alpha) {
  const T kSqrt2OverPi = T(0.7978845608028654), kInvSqrt2 = T(0.7071067811865476);
  switch (act) {
    case Act::relu: return x < T(0) ? T(0) : x;
    case Act::leaky_relu: return x < T(0) ? alpha * x : x;
    case Act::sigmoid: return T(1) / (T(1) + std::exp(-x));
    case Act::tanh: return std::tanh(x);
    case Act::gelu: return T(0.5) * x * (T(1) + std::erf(x * kInvSqrt2));
    case Act::gelu_tanh: return T(0.5) * x * (T(1) + std::tanh(kSqrt2OverPi * (x + T(0.044715) * x * x * x)));
    case Act::none: break;
  }
  return x;
}

template <class T>
T backward_one(Act act, T dy, T x, T y, T alpha) {
  const T kSqrt2OverPi = T(0.7978845608028654), kInvSqrt2 = T(0.7071067811865476);
  const T kInvSqrt2Pi = T(0.3989422804014327);
  switch (act) {
    case Act::relu: return x > T(0) ? dy : T(0);
    case Act::leaky_relu: return x > T(0) ? dy : dy * alpha;
    case Act::sigmoid: return dy * y * (T(1) - y);
    case Act::tanh: return dy * (T(1) - y * y);
    case Act::gelu: {
      T cdf = T(0.5) * (T(1) + std::erf(x * kInvSqrt2));
      T pdf = kInvSqrt2Pi * std::exp(T(-0.5) * x * x);
      return dy * (cdf + x * pdf);
    }
    case Act::gelu_tanh: {
      T x2 = x * x;
      T t = std::tanh(kSqrt2OverPi * (x + T(0.044715) * x2 * x));
      T du = kSqrt2OverPi * (T(1) + T(3 * 0.044715) * x2);
      return dy * (T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * du);
    }
    case Act::none: break;
  }
  return dy;
}

}  // namespace ref

template <class T>
void activation_forward_ref(Act act, const T* x, T* y, int64_t n, T alpha) {
  for (int64_t i = 0; i < n; ++i) y[i] = ref::forward_one(act, x[i], alpha);
}

template <class T>
void activation_backward_ref(Act act, const T* dy, const T* x, const T* y, T* dx, int64_t n, T alpha) {
  for (int64_t i = 0; i < n; ++i) dx[i] = ref::backward_one(act, dy[i], x ? x[i] : T(0), y ? y[i] : T(0), alpha);
}

namespace {

// Elements per thread chunk below which threading does not pay (a chunk costs ~ a few us).
constexpr int64_t kMinChunk = 1 << 16;

template <class Fn>
void split(int64_t n, int64_t min_chunk, Fn fn) {
  if (runtime::threads_for(n, min_chunk) <= 1) {
    fn(int64_t(0), n);
  } else {
    runtime::parallel_for(0, n, [&](int64_t lo, int64_t hi) { fn(lo, hi); });
  }
}

void forward_f32(Act act, const float* x, float* y, int64_t n, float alpha) {
  switch (runtime::active_isa()) {
#ifdef PYDL_X86
    case runtime::Isa::avx512: return avx512::activation_forward_f32(act, x, y, n, alpha);
    case runtime::Isa::avx2: return avx2::activation_forward_f32(act, x, y, n, alpha);
#endif
    default: return generic::activation_forward_f32(act, x, y, n, alpha);
  }
}

void backward_f32(Act act, const float* dy, const float* x, const float* y, float* dx, int64_t n, float alpha) {
  switch (runtime::active_isa()) {
#ifdef PYDL_X86
    case runtime::Isa::avx512: return avx512::activation_backward_f32(act, dy, x, y, dx, n, alpha);
    case runtime::Isa::avx2: return avx2::activation_backward_f32(act, dy, x, y, dx, n, alpha);
#endif
    default: return generic::activation_backward_f32(act, dy, x, y, dx, n, alpha);
  }
}

}  // namespace

template <>
void activation_forward<float>(Act act, const float* x, float* y, int64_t n, float alpha) {
  split(n, kMinChunk, [&](int64_t lo, int64_t hi) { forward_f32(act, x + lo, y + lo, hi - lo, alpha); });
}

template <>
void activation_forward<double>(Act act, const double* x, double* y, int64_t n, double alpha) {
  split(n, kMinChunk / 4, [&](int64_t lo, int64_t hi) { activation_forward_ref(act, x + lo, y + lo, hi - lo, alpha); });
}

template <>
void activation_backward<float>(Act act, const float* dy, const float* x, const float* y, float* dx, int64_t n,
                                float alpha) {
  split(n, kMinChunk, [&](int64_t lo, int64_t hi) {
    backward_f32(act, dy + lo, x ? x + lo : nullptr, y ? y + lo : nullptr, dx + lo, hi - lo, alpha);
  });
}

template <>
void activation_backward<double>(Act act, const double* dy, const double* x, const double* y, double* dx, int64_t n,
                                 double alpha) {
  split(n, kMinChunk / 4, [&](int64_t lo, int64_t hi) {  // libm: slower per element, smaller chunks
    activation_backward_ref(act, dy + lo, x ? x + lo : nullptr, y ? y + lo : nullptr, dx + lo, hi - lo, alpha);
  });
}

void vmath_f32(VmathFn fn, float* y, const float* x, int64_t n) {
  using F = void (*)(float*, const float*, int64_t);
  F table[3][3] = {{generic::vexp_f32, generic::vtanh_f32, generic::verf_f32},
#ifdef PYDL_X86
                   {avx2::vexp_f32, avx2::vtanh_f32, avx2::verf_f32},
                   {avx512::vexp_f32, avx512::vtanh_f32, avx512::verf_f32}};
#else
                   {generic::vexp_f32, generic::vtanh_f32, generic::verf_f32},
                   {generic::vexp_f32, generic::vtanh_f32, generic::verf_f32}};
#endif
  F f = table[static_cast<int>(runtime::active_isa())][static_cast<int>(fn)];
  split(n, kMinChunk, [&](int64_t lo, int64_t hi) { f(y + lo, x + lo, hi - lo); });
}

template void activation_forward_ref<float>(Act, const float*, float*, int64_t, float);
template void activation_forward_ref<double>(Act, const double*, double*, int64_t, double);
template void activation_backward_ref<float>(Act, const float*, const float*, const float*, float*, int64_t, float);
template void activation_backward_ref<double>(Act, const double*, const double*, const double*, double*, int64_t,
                                              double);

}  // namespace pydl::ops
