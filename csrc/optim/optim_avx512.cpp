// Optimizer step kernels, built with the avx512 flags of setup.py: the loops of optim_body.inc in namespace
// pydl::optim::avx512.
#include <cstdint>

#include "optim/optim.h"

#ifdef PYDL_X86
namespace pydl::optim::avx512 {
#include "optim/optim_body.inc"
}  // namespace pydl::optim::avx512
#endif
