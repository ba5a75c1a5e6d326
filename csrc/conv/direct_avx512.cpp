// The direct convolution kernels (direct_kernels.inc) for avx512: forward 8 channels x 3 pixel
// vectors, weight gradient 4 channels x 6 taps, depthwise 8 pixel vectors per tile.
#include "conv/direct.h"
#include "ops/vmath_avx512.h"
#pragma GCC diagnostic ignored "-Wuninitialized"  // _mm512_reduce_add_ps passes an undefined operand (GCC 12)

namespace pydl::conv::avx512 {

using namespace pydl::ops::avx512;

constexpr int kFwdMO = 8, kFwdNV = 3;
constexpr int kWgMO = 4, kWgKB = 6;
constexpr int kTPix = 24;  // channel-vectorised tiles: kTPix / m pixels (or taps) x m vectors
constexpr int kMaxMOV = 4;  // channel vectors per channel-vectorised tile
constexpr int kDwNV = 8;

#include "conv/direct_kernels.inc"

}  // namespace pydl::conv::avx512
