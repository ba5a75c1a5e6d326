// Softmax and log-softmax over the last axis, and the fused softmax cross-entropy: the C++ API
// (implemented in softmax*.cpp and cross_entropy*.cpp). Arrays are row-major (rows, cols).
#pragma once

#include <cstdint>

namespace pydl::ops {

// y = softmax(x) (or log_softmax when log) over each row of x (rows, cols); y may alias x.
template <class T>
void softmax_forward(T* y, const T* x, int64_t rows, int64_t cols, bool log);

// dx from dy and the forward output y (softmax, or log_softmax when log); dx may alias dy.
//   softmax:     dx = y * (dy - sum(dy * y))        log_softmax: dx = dy - exp(y) * sum(dy)
template <class T>
void softmax_backward(T* dx, const T* dy, const T* y, int64_t rows, int64_t cols, bool log);

// The first class index outside [0, c) the cross-entropy kernel met (pos < 0: none).
struct CeBadTarget {
  int64_t pos = -1;   // row
  int64_t value = 0;  // the index read there
};

// Cross-entropy of logits (n, c) against class indices target_idx (n,) or probabilities
// target_prob (n, c) (exactly one non-null), optional class weights (c,), label smoothing eps,
// reduction mean (true) or sum; semantics of torch.nn.functional.cross_entropy. Returns the loss;
// when grad (n, c) is non-null also writes dL/dlogits.
// Class indices are memory the kernel does not own (another Python thread may write them while
// the GIL is released, ARCHITECTURE.md 3.4): each is read once, checked against [0, c) and only
// then used. On a bad index the kernel records the first one in *bad, skips that row (its grad
// row is left unwritten, other rows may be written) and the return value is meaningless; the
// binding then raises. Callers check the indices before the call too (cross_entropy_check_targets)
// so that a bad argument is reported before anything is written.
template <class T>
double cross_entropy(T* grad, const T* logits, const int64_t* target_idx, const T* target_prob, const T* weight,
                     int64_t n, int64_t c, double label_smoothing, bool mean, CeBadTarget* bad);

// Index of the first target outside [0, c), or -1 when all are valid.
int64_t cross_entropy_check_targets(const int64_t* target_idx, int64_t n, int64_t c);

}  // namespace pydl::ops
