// float32 cross-entropy row kernels for avx2: cross_entropy_kernels.inc over vmath_avx2.h.
#include <math.h>

#include "ops/vmath_avx2.h"

namespace pydl::ops::avx2 {
#include "ops/cross_entropy_kernels.inc"
}  // namespace pydl::ops::avx2
