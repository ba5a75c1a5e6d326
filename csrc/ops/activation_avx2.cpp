// float32 activation kernels for avx2: activation_kernels.inc over vmath_avx2.h.
#include "ops/vmath_avx2.h"

namespace pydl::ops::avx2 {
#include "ops/activation_kernels.inc"
}  // namespace pydl::ops::avx2
