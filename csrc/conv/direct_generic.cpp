// The direct convolution kernels (direct_kernels.inc) for generic: forward 4 channels x 4 pixel
// vectors, weight gradient 2 channels x 4 taps, depthwise 8 pixel vectors per tile.
#include <algorithm>
#include <cstring>

#include "conv/direct.h"
#include "ops/vmath_generic.h"

namespace pydl::conv::generic {

using namespace pydl::ops::generic;

constexpr int kFwdMO = 4, kFwdNV = 4;
constexpr int kWgMO = 2, kWgKB = 4;
constexpr int kTPix = 8;  // channel-vectorised tiles: kTPix / m pixels (or taps) x m vectors
constexpr int kMaxMOV = 4;  // channel vectors per channel-vectorised tile
constexpr int kDwNV = 8;

#include "conv/direct_kernels.inc"

}  // namespace pydl::conv::generic
