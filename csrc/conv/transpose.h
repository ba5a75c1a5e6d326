// Blocked matrix transpose shared by the conv paths (conv.cpp's GEMM orientation, direct.cpp's
// channel-blocked layouts).
#pragma once

#include <cstdint>

namespace pydl::conv {

// dst (R, C) = src (C, R) transposed: dst[r * ldd + c] = src[c * lds + r] for r < R, c < C, in
// 16 x 16 blocks so that both sides stay within a few cache lines.
template <class T>
inline void transpose(T* dst, int64_t ldd, const T* src, int64_t lds, int64_t R, int64_t C) {
  for (int64_t c0 = 0; c0 < C; c0 += 16)
    for (int64_t r0 = 0; r0 < R; r0 += 16) {
      const int64_t r1 = r0 + 16 < R ? r0 + 16 : R, c1 = c0 + 16 < C ? c0 + 16 : C;
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = c0; c < c1; ++c) dst[r * ldd + c] = src[c * lds + r];
    }
}

}  // namespace pydl::conv
