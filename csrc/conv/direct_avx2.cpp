// The direct convolution kernels (direct_kernels.inc) for avx2: forward 6 channels x 2 pixel
// vectors, weight gradient 2 channels x 6 taps, depthwise 6 pixel vectors per tile.
#include <algorithm>
#include <cstring>

#include "conv/direct.h"
#include "ops/vmath_avx2.h"

namespace pydl::conv::avx2 {

using namespace pydl::ops::avx2;

constexpr int kFwdMO = 6, kFwdNV = 2;
constexpr int kWgMO = 2, kWgKB = 6;
constexpr int kTPix = 12;  // channel-vectorised tiles: kTPix / m pixels (or taps) x m vectors
constexpr int kMaxMOV = 2;  // channel vectors per channel-vectorised tile
constexpr int kDwNV = 6;

#include "conv/direct_kernels.inc"

}  // namespace pydl::conv::avx2
