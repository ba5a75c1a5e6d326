// im2col / col2im for one NCHW image (Chellapilla, Puri & Simard 2006; Caffe's layout).
//
// x (C, H, W) <-> col (C*KH*KW, OH*OW), row r = (c*KH + p)*KW + q, column i*OW + j. For each
// row and output row i the valid output columns [j0, j1) are computed once, so the inner loop is
// a plain copy (stride 1) or a strided gather, with no per-pixel bounds test.
#include <cstring>

#include "conv/conv.h"

namespace pydl::conv {

namespace {

// ceil(a / b) for b > 0 and any sign of a.
inline int64_t ceil_div(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }
inline int64_t clamp(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

// Output columns j whose input column j*sw - pl + off lies in [0, W): [j0, j1).
inline void valid_cols(const Conv2dShape& s, int64_t off, int64_t* j0, int64_t* j1) {
  *j0 = clamp(ceil_div(s.pl - off, s.sw), 0, s.OW);
  *j1 = clamp(ceil_div(s.W + s.pl - off, s.sw), *j0, s.OW);
}

}  // namespace

template <class T>
void im2col(T* col, int64_t ldcol, const T* x, int64_t C, const Conv2dShape& s) {
  // x is (C, H, W), col is (C*KH*KW, ldcol) with the first OH*OW columns written.
  const int64_t H = s.H, W = s.W, OH = s.OH, OW = s.OW;
  for (int64_t c = 0; c < C; ++c)
    for (int64_t p = 0; p < s.KH; ++p)
      for (int64_t q = 0; q < s.KW; ++q) {
        T* dst = col + ((c * s.KH + p) * s.KW + q) * ldcol;
        const int64_t off = q * s.dw;
        int64_t j0, j1;
        valid_cols(s, off, &j0, &j1);
        for (int64_t i = 0; i < OH; ++i, dst += OW) {
          const int64_t ih = i * s.sh - s.pt + p * s.dh;
          if (ih < 0 || ih >= H || j0 >= j1) {
            for (int64_t j = 0; j < OW; ++j) dst[j] = T(0);
            continue;
          }
          const T* xrow = x + (c * H + ih) * W;
          const int64_t shift = off - s.pl;  // output column j reads input column j*sw + shift
          for (int64_t j = 0; j < j0; ++j) dst[j] = T(0);
          if (s.sw == 1) {  // a plain loop: rows are short (memcpy's call and setup cost more)
            const T* src = xrow + j0 + shift;
            T* d = dst + j0;
            for (int64_t j = 0; j < j1 - j0; ++j) d[j] = src[j];
          } else
            for (int64_t j = j0; j < j1; ++j) dst[j] = xrow[j * s.sw + shift];
          for (int64_t j = j1; j < OW; ++j) dst[j] = T(0);
        }
      }
}

template <class T>
void col2im_add(T* dx, const T* col, int64_t ldcol, int64_t C, const Conv2dShape& s) {
  // dx is (C, H, W), col is (C*KH*KW, ldcol); rows and output rows in a fixed order.
  const int64_t H = s.H, W = s.W, OH = s.OH, OW = s.OW;
  for (int64_t c = 0; c < C; ++c)
    for (int64_t p = 0; p < s.KH; ++p)
      for (int64_t q = 0; q < s.KW; ++q) {
        const T* src = col + ((c * s.KH + p) * s.KW + q) * ldcol;
        const int64_t off = q * s.dw;
        int64_t j0, j1;
        valid_cols(s, off, &j0, &j1);
        if (j0 >= j1) continue;
        for (int64_t i = 0; i < OH; ++i, src += OW) {
          const int64_t ih = i * s.sh - s.pt + p * s.dh;
          if (ih < 0 || ih >= H) continue;
          T* dxrow = dx + (c * H + ih) * W;
          const int64_t shift = off - s.pl;
          if (s.sw == 1) {
            T* d = dxrow + j0 + shift;
            const T* g = src + j0;
            for (int64_t j = 0; j < j1 - j0; ++j) d[j] += g[j];
          } else {
            for (int64_t j = j0; j < j1; ++j) dxrow[j * s.sw + shift] += src[j];
          }
        }
      }
}

template void im2col<float>(float*, int64_t, const float*, int64_t, const Conv2dShape&);
template void im2col<double>(double*, int64_t, const double*, int64_t, const Conv2dShape&);
template void col2im_add<float>(float*, const float*, int64_t, int64_t, const Conv2dShape&);
template void col2im_add<double>(double*, const double*, int64_t, int64_t, const Conv2dShape&);

}  // namespace pydl::conv
