// Optimizer step kernels, baseline x86-64 (no -m flags): the loops of optim_body.inc in namespace
// pydl::optim::generic.
#include <cstdint>

#include "optim/optim.h"

namespace pydl::optim::generic {
#include "optim/optim_body.inc"
}  // namespace pydl::optim::generic

