// float32 softmax / log-softmax kernels for avx512: softmax_kernels.inc over vmath_avx512.h.
#include <math.h>

#include "ops/vmath_avx512.h"

namespace pydl::ops::avx512 {
#include "ops/softmax_kernels.inc"
}  // namespace pydl::ops::avx512
