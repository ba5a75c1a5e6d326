// float32 cross-entropy row kernels for avx512: cross_entropy_kernels.inc over vmath_avx512.h.
#include <math.h>

#include "ops/vmath_avx512.h"

namespace pydl::ops::avx512 {
#include "ops/cross_entropy_kernels.inc"
}  // namespace pydl::ops::avx512
