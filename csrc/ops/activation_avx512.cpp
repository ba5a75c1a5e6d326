// float32 activation kernels for avx512: activation_kernels.inc over vmath_avx512.h.
#include "ops/vmath_avx512.h"

namespace pydl::ops::avx512 {
#include "ops/activation_kernels.inc"
}  // namespace pydl::ops::avx512
