// Direct (implicit GEMM) convolution kernels for float32 convolutions.
//
// The input of one image is copied once into a zero-padded buffer xp (C, Hp, Wp) with
// Hp = OH + dh*(KH-1), Wp = OW + dw*(KW-1). Output pixel (i, j) then reads, for tap k = (c, p, q),
// xp[off[k] + t] with t = i*Wp + j and off[k] = c*Hp*Wp + p*dh*Wp + q*dw: a fixed shift of one
// running pixel index t. A strided convolution becomes such a stride-1 access once the padded
// input is split into its stride phases (direct.cpp), and a batch of small images (a 1-D signal
// is one row) is stacked into one run of pixels. So the convolution is a GEMM whose B operand is never built; the kernels
// load the input at the shifted addresses (no im2col copy, Chellapilla 2006 being the copy this
// avoids; feeding the micro-kernel through addresses is the idea of Dukhan 2019's indirect GEMM).
// Two register layouts:
//   - channel-vectorised (OC a multiple of the vector width): vectors over output channels, input
//     values broadcast; only valid pixels are computed.
//   - pixel-vectorised ("full width"): vectors over t, weights broadcast; whole rows of Wp pixels
//     are computed and the last Wp - OW of each discarded (Wp/OW more arithmetic). For few or odd
//     channel counts, and depthwise planes.
// The data gradient is a forward over the padded output gradient with flipped, transposed weights
// (gather, stride 1) or a per-tap scatter; the weight gradient reduces over pixels. The copies
// around them (the phase split, bias + ReLU into NCHW, dz = dy [y > 0] into wide rows, the bias
// gradient's sums) run a column of short rows per call, vectorised per ISA. Declarations only: the
// kernels are compiled once per ISA (direct_kernels.inc in direct_avx512.cpp, direct_avx2.cpp,
// direct_generic.cpp; docs/ARCHITECTURE.md §3.3).
#pragma once

#include <cstdint>

#include "conv/conv.h"

namespace pydl::conv {

// Every sum in these kernels adds at most kChain products into one register, starting from zero,
// before the register is added into a partial sum (blocked summation): float32
// rounding then grows with kChain plus the number of blocks (Higham, "Accuracy and Stability of
// Numerical Algorithms", 2002, §4.2), not with the full length of the sum (taps times channels, or
// images times pixels for the weight gradient). 64 keeps the direct path at least as accurate as
// im2col + GEMM against float64 and costs nothing measurable (docs/ARCHITECTURE.md §4b).
constexpr int64_t kChain = 64;

struct DirectKernels {
  int64_t lanes;  // floats per vector: the wide pixel count is rounded up to a multiple of it
  int64_t block;  // output channels per channel-vectorised call: a few vectors, the ISA's register budget
  // yw (OC, ldy): yw[o, t] = sum_{k<K} wt[k*OC + o] * xp[off[k] + t] for t < T (T a multiple of lanes).
  // xp must be readable up to max(off) + T.
  void (*forward)(float* yw, int64_t ldy, const float* xp, const int64_t* off, int64_t K, const float* wt,
                  int64_t OC, int64_t T);
  // dw (OC, K): dw[o*K + k] = sum_{n<nimg} sum_{t<T} dz[n*dzs + o*ldz + t] * xp[n*xs + off[k] + t]
  // (written, not added; T a multiple of lanes). The sum runs in a fixed order.
  void (*wgrad)(float* dw, const float* dz, int64_t ldz, int64_t dzs, const float* xp, int64_t xs,
                const int64_t* off, int64_t K, int64_t OC, int64_t nimg, int64_t T);
  // Depthwise 3x3-style rows: for each of C planes, yw[c, t] = sum_{k<K} w[c*K + k] * xp[c*xs + off[k] + t]
  // for t < T (T a multiple of lanes), yw with row stride ldy.
  void (*depthwise)(float* yw, int64_t ldy, const float* xp, int64_t xs, const int64_t* off, int64_t K,
                    const float* w, int64_t C, int64_t T);
  // Data gradient by scatter: for each tap k in order, dxw[c*ldx + toff[k] + t] += sum_{o<OC}
  // wt[(k*OC + o)*C + c] * dzw[o*ldz + t] for t < T (T a multiple of lanes). dxw holds the
  // gradient of the padded input (C, Hp*Wp + slack) and must start zeroed.
  void (*scatter)(float* dxw, int64_t ldx, const float* dzw, int64_t ldz, const int64_t* toff, int64_t KK,
                  const float* wt, int64_t OC, int64_t C, int64_t T);
  // Channel-vectorised kernels: vectors run over a block of OC = m*lanes <= block output channels,
  // so only valid pixels are computed and nothing is summed across lanes.
  // Forward: yt (OH*OW, ldy), yt[i*OW + j, o] (+)= sum_k wt[k*ldw + o] * xp[off[k] + i*Wp + j]
  // (added to yt when accumulate).
  void (*forward_t)(float* yt, int64_t ldy, const float* xp, int64_t Wp, const int64_t* off, int64_t K,
                    const float* wt, int64_t ldw, int64_t OC, int64_t OH, int64_t OW, bool accumulate);
  // Weight gradient (OC = m*lanes <= block): dwt (K, ldd), dwt[k*ldd + o] = sum_{n<nimg} sum_{i,j} xp[n*xs + off[k] + i*Wp + j]
  // * dzt[n*dzs + (i*OW + j)*ldz + o] (written).
  void (*wgrad_t)(float* dwt, int64_t ldd, const float* dzt, int64_t ldz, int64_t dzs, const float* xp, int64_t xs,
                  const int64_t* off, int64_t K, int64_t OC, int64_t nimg, int64_t OH, int64_t OW, int64_t Wp);
  // The copies around the kernels, on R rows at a time (row strides ldd, lds):
  // Rows split into sw stride phases (phase b at d + b*pstride), Wp columns each, left padding pl:
  //   d[b*pstride + r*ldd + j] = src[r*lds + j*sw + b - pl] when 0 <= j*sw + b - pl < W, else 0.
  void (*split_rows)(float* d, int64_t ldd, int64_t pstride, const float* src, int64_t lds, int64_t R, int64_t W,
                     int64_t pl, int64_t sw, int64_t Wp);
  // Its adjoint's gather: dst[r*ldd + w] = d[b*pstride + r*lds + j], (j, b) = divmod(w + pl, sw), for
  // w < W; 0 when j >= Wp.
  void (*merge_rows)(float* dst, int64_t ldd, const float* d, int64_t lds, int64_t pstride, int64_t R, int64_t W,
                     int64_t pl, int64_t sw, int64_t Wp);
  // dst[r*ldd + j] = act(src[r*lds + j] + bias), j < n, act relu (NaN kept) or none.
  void (*rows_bias_act)(float* dst, int64_t ldd, const float* src, int64_t lds, int64_t R, int64_t n, float bias,
                        bool relu);
  // dst[r*ldd + j] = y[r*lds + j] > 0 ? dy[r*lds + j] : 0 (relu'), or dy when y is null; j < n.
  void (*rows_relu_grad)(float* dst, int64_t ldd, const float* dy, const float* y, int64_t lds, int64_t R, int64_t n);
  // sum of src[r*lds + j], r < R, j < n, in double, in an order fixed by (R, n).
  double (*sum_rows)(const float* src, int64_t lds, int64_t R, int64_t n);
};

namespace generic { const DirectKernels& direct_kernels(); }
#ifdef PYDL_X86
namespace avx512 { const DirectKernels& direct_kernels(); }
namespace avx2 { const DirectKernels& direct_kernels(); }
#else
namespace avx2 = generic;  // other CPUs: only the portable kernels are built
namespace avx512 = generic;
#endif

}  // namespace pydl::conv

// ---- the driver (direct.cpp) -----------------------------------------------------------------

namespace pydl::conv {

// True when the direct kernels handle this float32 convolution: not a 1x1; stride 1 with every
// padding at most the dilated kernel extent (so the data gradient may gather: a padded convolution
// again), or any stride and padding; and a shape where they measured faster than im2col + GEMM
// (OC/G whole vectors or below 32; strided: also OC/G < 256 and overlapping windows).
// PYDL_CONV_DIRECT=0 / =1 override.
bool direct_suits(const Conv2dShape& s);

// Same contracts as conv2d_forward / conv2d_backward (conv.h), for shapes where direct_suits().
// Threads split images (forward) and the shape-determined image chunks (backward), whose
// weight-gradient partials are added in chunk order: bitwise identical for any thread count.
void direct_forward(float* y, const float* x, const float* w, const float* b, const Conv2dShape& s,
                    pydl::ops::Act act);
void direct_backward(float* dx, float* dw, float* db, const float* dy, const float* x, const float* w,
                     const float* y, const Conv2dShape& s, pydl::ops::Act act, bool accumulate_w, bool accumulate_b);

}  // namespace pydl::conv
