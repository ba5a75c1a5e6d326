// float32 activation kernels for generic: activation_kernels.inc over vmath_generic.h.
#include "ops/vmath_generic.h"

namespace pydl::ops::generic {
#include "ops/activation_kernels.inc"
}  // namespace pydl::ops::generic
