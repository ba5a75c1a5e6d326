// float32 cross-entropy row kernels for generic: cross_entropy_kernels.inc over vmath_generic.h.
#include <math.h>

#include "ops/vmath_generic.h"

namespace pydl::ops::generic {
#include "ops/cross_entropy_kernels.inc"
}  // namespace pydl::ops::generic
