// The direct convolution kernels (direct_kernels.inc) for avx512: forward 8 channels x 3 pixel
// vectors, weight gradient 4 channels x 6 taps, depthwise 8 pixel vectors per tile.
#include <algorithm>
#include <cstring>

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

#define PYDL_DIRECT_SPLIT
#include "conv/direct_kernels.inc"

namespace {

// Lanes m < 16 with 0 <= base + m < n.
__mmask16 lanes_in(int64_t base, int64_t n) {
  const int64_t lo = std::clamp<int64_t>(-base, 0, 16), hi = std::clamp<int64_t>(n - base, 0, 16);
  return hi > lo ? static_cast<__mmask16>(((1u << hi) - 1u) & ~((1u << lo) - 1u)) : 0;
}

// Strides 1 and 2 in vectors: masked loads read only the input (the lanes outside it are zero and
// never touched), vpermt2ps splits a pair of vectors into even and odd columns.
void split_rows(float* d, int64_t ldd, int64_t pstride, const float* src, int64_t lds, int64_t R, int64_t W,
                int64_t pl, int64_t sw, int64_t Wp) {
  if (sw > 2) return split_rows_any(d, ldd, pstride, src, lds, R, W, pl, sw, Wp);
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  for (int64_t j0 = 0; j0 < Wp; j0 += 16) {
    const __mmask16 st = lanes_in(0, Wp - j0);  // j0 + lane < Wp
    const int64_t base = sw * j0 - pl;  // input column of lane 0
    const __mmask16 m0 = lanes_in(base, W), m1 = lanes_in(base + 16, W);
    const float* s = src + base;
    float* o = d + j0;
    for (int64_t r = 0; r < R; ++r, s += lds, o += ldd) {
      const __m512 a = _mm512_maskz_loadu_ps(m0, s);
      if (sw == 1) {
        _mm512_mask_storeu_ps(o, st, a);
        continue;
      }
      const __m512 b = _mm512_maskz_loadu_ps(m1, s + 16);
      _mm512_mask_storeu_ps(o, st, _mm512_permutex2var_ps(a, even, b));
      _mm512_mask_storeu_ps(o + pstride, st, _mm512_permutex2var_ps(a, odd, b));
    }
  }
}

void merge_rows(float* dst, int64_t ldd, const float* d, int64_t lds, int64_t pstride, int64_t R, int64_t W,
                int64_t pl, int64_t sw, int64_t Wp) {
  if (sw > 2) return merge_rows_any(dst, ldd, d, lds, pstride, R, W, pl, sw, Wp);
  for (int64_t w0 = 0; w0 < W; w0 += 16) {
    const __mmask16 st = lanes_in(0, W - w0);
    const int64_t m0 = w0 + pl, jb = m0 / sw;  // lane i reads column m0 + i of the padded row
    const __mmask16 ld = lanes_in(0, Wp - jb);
    alignas(64) int32_t idx[16];
    for (int i = 0; i < 16; ++i) idx[i] = int32_t(((m0 + i) % sw) * 16 + (m0 + i) / sw - jb);
    const __m512i ix = _mm512_load_si512(idx);
    const float* s = d + jb;
    float* o = dst + w0;
    for (int64_t r = 0; r < R; ++r, s += lds, o += ldd) {
      const __m512 e = _mm512_maskz_loadu_ps(ld, s);
      const __m512 v = sw == 1 ? e : _mm512_permutex2var_ps(e, ix, _mm512_maskz_loadu_ps(ld, s + pstride));
      _mm512_mask_storeu_ps(o, st, v);
    }
  }
}

}  // namespace

}  // namespace pydl::conv::avx512
