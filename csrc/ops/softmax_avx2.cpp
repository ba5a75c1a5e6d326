// float32 softmax / log-softmax kernels for avx2: softmax_kernels.inc over vmath_avx2.h.
#include <math.h>

#include "ops/vmath_avx2.h"

namespace pydl::ops::avx2 {
#include "ops/softmax_kernels.inc"
}  // namespace pydl::ops::avx2
