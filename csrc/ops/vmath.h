// float32 vectorised kernels, compiled once per ISA (namespaces pydl::ops::avx512, ::avx2,
// ::generic; files *_avx512.cpp, *_avx2.cpp, *_generic.cpp). The dispatchers in activation.cpp,
// softmax.cpp and cross_entropy.cpp pick one with runtime::select(). Only declarations and
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

// Arguments of the per-row cross-entropy kernels (see cross_entropy.cpp for the math): arrays of
// type T, scalars of type S (float for the float32 kernels, double for the reference).
template <class T, class S>
struct CeRowArgs {
  T* grad;                    // (n, c) or null
  const T* logits;            // (n, c)
  const int64_t* target_idx;  // (n,) or null; only its presence is used by the row kernels
  const T* target_prob;       // (n, c) or null
  const T* weight;            // (c,) or null
  int64_t c;
  S eps;         // label smoothing
  S weight_sum;  // sum of weight (c when null)
  S scale;       // 1 / denominator of the reduction
};

namespace generic {
#include "ops/kernels_f32.inc"
}  // namespace generic
#if defined(PYDL_X86)
namespace avx2 {
#include "ops/kernels_f32.inc"
}  // namespace avx2
namespace avx512 {
#include "ops/kernels_f32.inc"
}  // namespace avx512
#else
namespace avx2 = generic;    // other CPUs: only the portable kernels are built
namespace avx512 = generic;
#endif

// y = fn(x) over n float32 elements with the active ISA (tests and benchmarks of the raw functions).
enum class VmathFn : int { exp = 0, tanh = 1, erf = 2 };
void vmath_f32(float* y, const float* x, int64_t n, VmathFn fn);

}  // namespace pydl::ops
