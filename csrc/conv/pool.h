// Pooling over NCHW planes (PyTorch semantics). P = N*C independent planes of (H, W) in,
// (OH, OW) out; threads split planes, so results do not depend on the thread count.
//
// max:      y[i, j] = max over the window rows i*sh - ph + [0, KH), cols j*sw - pw + [0, KW),
//           clipped to the input (padding is -inf); idx = ih*W + iw of the first maximum (a NaN
//           wins, as torch). Backward: dx[idx] += dy.
// avg:      y[i, j] = sum over the clipped window / (KH*KW)  (count_include_pad=True; without
//           ceil_mode every window lies inside the padded input). Backward spreads dy / (KH*KW).
// adaptive: rows [floor(i*H/OH), ceil((i+1)*H/OH)), likewise columns; y = mean over the bin.
#pragma once

#include <cstdint>

namespace pydl::conv {

struct Pool2dShape {
  int64_t P, H, W, OH, OW;   // planes (N*C), input and output sizes
  int64_t KH, KW, sh, sw, ph, pw;  // window, stride, padding (unused by adaptive pooling)
};

// y, idx (P, OH, OW); x (P, H, W).
template <class T>
void max_pool2d_forward(T* y, int64_t* idx, const T* x, const Pool2dShape& s);
// dx (P, H, W) = scatter-add of dy (P, OH, OW) at idx. Returns false (dx then partly written) if
// an index lies outside [0, H*W): idx may come from the user.
template <class T>
bool max_pool2d_backward(T* dx, const T* dy, const int64_t* idx, const Pool2dShape& s);

template <class T>
void avg_pool2d_forward(T* y, const T* x, const Pool2dShape& s);
template <class T>
void avg_pool2d_backward(T* dx, const T* dy, const Pool2dShape& s);

template <class T>
void adaptive_avg_pool2d_forward(T* y, const T* x, const Pool2dShape& s);
template <class T>
void adaptive_avg_pool2d_backward(T* dx, const T* dy, const Pool2dShape& s);

}  // namespace pydl::conv
