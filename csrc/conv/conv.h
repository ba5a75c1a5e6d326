// Convolution (NCHW, PyTorch semantics: cross-correlation, groups, stride, dilation, zero padding).
//
// Shapes: x (N, C, H, W), w (OC, C/G, KH, KW), b (OC,) or null, y (N, OC, OH, OW) with
//   OH = (H + pad_top + pad_bottom - dil_h*(KH-1) - 1) / stride_h + 1   (likewise OW).
// Only the top/left pads enter the kernels: bottom/right padding is implied by OH/OW (taps that
// fall outside the input read zero), which gives PyTorch's asymmetric "same" padding for free.
//
//   y[n, o, i, j] = act(b[o] + sum_{c in group(o), p, q} w[o, c, p, q] * x[n, g*C/G + c, i*sh - pt + p*dh, j*sw - pl + q*dw])
//
// Backward from dy = dL/dy (and y when act = relu: dz = dy * [y > 0], else dz = dy):
//   dx = the transposed correlation of dz with w, dw = sum_n dz_n (x) x_n, db = sum_{n,i,j} dz.
//
// Fast paths: float32 convolutions with k > 1 whose output channels per group are whole vectors
// or fewer than 32 run the direct kernels of direct.h (a padded input copy, split into the stride's
// phases when strided; no im2col), for stride 1 when the padding is at most the dilated kernel
// extent, for strides when the windows overlap and OC/G < 256 (direct_suits). The rest (float64,
// 1x1, wide odd channel counts, ...) use conv.cpp: im2col (Chellapilla et al. 2006; Caffe) + the packed GEMM, col2im for the
// data gradient; 1x1 stride-1 unpadded convolutions use x itself as the GEMM operand. Threads split
// images (forward, data gradient); the weight gradient is reduced over fixed, shape-determined
// chunks of images (chunk_images) whose partial sums are added in chunk order: bitwise identical
// for any thread count (docs/ARCHITECTURE.md §3.5).
#pragma once

#include <cstdint>

#include "ops/activation.h"

namespace pydl::conv {

struct Conv2dShape {
  int64_t N, C, H, W;        // input
  int64_t OC, KH, KW;        // weight (OC, C/groups, KH, KW)
  int64_t OH, OW;            // output
  int64_t sh, sw, pt, pl, dh, dw;  // stride, top/left padding, dilation
  int64_t groups;
};

// y (N, OC, OH, OW) = act(conv(x, w) + b). act is none or relu.
template <class T>
void conv2d_forward(T* y, const T* x, const T* w, const T* b, const Conv2dShape& s, pydl::ops::Act act);

// dx (N, C, H, W) or null; dw (OC, C/G, KH, KW) (+= when accumulate_w); db (OC,) or null
// (+= when accumulate_b). dy, y (N, OC, OH, OW); y is read only when act = relu.
template <class T>
void conv2d_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w, const T* y, const Conv2dShape& s,
                     pydl::ops::Act act, bool accumulate_w, bool accumulate_b);

// The naive references (direct loops, one thread): same contracts. The test oracle.
template <class T>
void conv2d_forward_ref(T* y, const T* x, const T* w, const T* b, const Conv2dShape& s, pydl::ops::Act act);
template <class T>
void conv2d_backward_ref(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w, const T* y,
                         const Conv2dShape& s, pydl::ops::Act act, bool accumulate_w, bool accumulate_b);

// im2col for one image: x (C, H, W) -> col (C*KH*KW, OH*OW) with row stride ldcol >= OH*OW;
// col[(c*KH + p)*KW + q, i*OW + j] = x[c, i*sh - pt + p*dh, j*sw - pl + q*dw] or 0 outside.
template <class T>
void im2col(T* col, int64_t ldcol, const T* x, int64_t C, const Conv2dShape& s);

// col2im for one image, the adjoint of im2col: dx (C, H, W) += scatter of col (C*KH*KW, OH*OW).
template <class T>
void col2im_add(T* dx, const T* col, int64_t ldcol, int64_t C, const Conv2dShape& s);

// Images per weight-gradient chunk (both paths), a function of the shape only, never of the thread
// count: the chunks' partial sums are added in chunk order, so the bits do not depend on how
// threads share the chunks. ceil(N / 16) images (at most 16 chunks), but at least kMinChunkPixels
// output pixels per chunk (each chunk pays fixed costs: its partial dW, the kernels' register
// reductions or the GEMM's packing; tiny images in 16 chunks spent more there than in the
// arithmetic), and fewer when a chunk would hold more than max_elems scratch elements
// (per_image each). L = OH*OW.
inline int64_t chunk_images(int64_t N, int64_t L, int64_t per_image, int64_t max_elems) {
  constexpr int64_t kMaxChunks = 16, kMinChunkPixels = 1024;
  if (N <= 0) return 1;
  int64_t ipc = (N + kMaxChunks - 1) / kMaxChunks;
  const int64_t by_pixels = L > 0 ? (kMinChunkPixels + L - 1) / L : N;
  if (by_pixels > ipc) ipc = by_pixels < N ? by_pixels : N;
  if (ipc > 1 && ipc * per_image > max_elems) ipc = max_elems / per_image > 1 ? max_elems / per_image : 1;
  return ipc;
}

}  // namespace pydl::conv
