// float32 softmax / log-softmax kernels for generic: softmax_kernels.inc over vmath_generic.h.
#include <math.h>

#include "ops/vmath_generic.h"

namespace pydl::ops::generic {
#include "ops/softmax_kernels.inc"
}  // namespace pydl::ops::generic
