// float32 vectorised kernels, compiled once per ISA (namespaces pydl::ops::avx512, ::avx2,
// ::generic; files *_avx512.cpp, *_avx2.cpp, *_generic.cpp). The dispatchers in activation.cpp,
// softmax.cpp and cross_entropy.cpp pick one with runtime::active_isa(). Only declarations and
// a plain struct here: no inline code is shared between ISA translation units.
//
// How the ISA code is organised: vmath_<isa>.h defines, inside its own namespace, a small set of
// vector primitives (V = __m512 / __m256 / float, load/store, fma, select, ...) and then includes
// vmath_core.inc (exp, tanh, sigmoid, erf written once over those primitives). Each
// <family>_<isa>.cpp includes vmath_<isa>.h and <family>_kernels.inc inside the same namespace
// (activation_kernels.inc also holds the vexp/vtanh/verf array entry points).
// Every function there is static (internal linkage), so each ISA gets its own copy.
#pragma once

#include <cstdint>

#include "ops/activation.h"

namespace pydl::ops {

// Arguments of the per-row cross-entropy kernels (see cross_entropy.cpp for the math).
struct CeRowArgsF32 {
  float* grad;                // (n, c) or null
  const float* logits;        // (n, c)
  const int64_t* target_idx;  // (n,) or null
  const float* target_prob;   // (n, c) or null
  const float* weight;        // (c,) or null
  int64_t c;
  float eps;                  // label smoothing
  float weight_sum;           // sum of weight (c when null)
  float scale;                // 1 / denominator of the reduction
};

#define PYDL_OPS_F32_KERNELS                                                                               \
  /* y = exp(x), tanh(x), erf(x) over n elements (test and benchmark entry points) */                     \
  void vexp_f32(float* y, const float* x, int64_t n);                                                     \
  void vtanh_f32(float* y, const float* x, int64_t n);                                                    \
  void verf_f32(float* y, const float* x, int64_t n);                                                     \
  void activation_forward_f32(Act act, const float* x, float* y, int64_t n, float alpha);                 \
  void activation_backward_f32(Act act, const float* dy, const float* x, const float* y, float* dx,       \
                               int64_t n, float alpha);                                                   \
  /* rows of (rows, cols) */                                                                              \
  void softmax_forward_f32(float* y, const float* x, int64_t rows, int64_t cols, bool log);               \
  void softmax_backward_f32(float* dx, const float* dy, const float* y, int64_t rows, int64_t cols,        \
                            bool log);                                                                    \
  /* loss of row i (before scaling); writes the scaled gradient row when a.grad is set */                 \
  double cross_entropy_row_f32(const CeRowArgsF32& a, int64_t i);

namespace generic { PYDL_OPS_F32_KERNELS }
namespace avx2 { PYDL_OPS_F32_KERNELS }
namespace avx512 { PYDL_OPS_F32_KERNELS }

#undef PYDL_OPS_F32_KERNELS

// y = fn(x) over n float32 elements with the active ISA (tests and benchmarks of the raw functions).
enum class VmathFn : int { exp = 0, tanh = 1, erf = 2 };
void vmath_f32(VmathFn fn, float* y, const float* x, int64_t n);

}  // namespace pydl::ops
