// One training step of a multilayer perceptron in one call: the forward pass through a chain of
// dense layers, the loss gradient, the backward pass, and the optimizer update of each layer as
// soon as its gradients are final.
//
// Every piece is a kernel the layer-by-layer path calls (linear_forward, cross_entropy,
// linear_backward, the optimizer steps of optim/multi_tensor.h), called on the same arrays with
// the same arguments, so the results are bitwise those of the layer-by-layer path
// (docs/ARCHITECTURE.md §2, "Fused training step"). The one change of order: layer l's
// parameters are updated right after its backward, before the backward of layer l - 1. That is
// the same arithmetic, because nothing after layer l's backward reads its parameters or their
// gradients, and an optimizer step is elementwise per tensor.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "ops/activation.h"
#include "ops/softmax.h"

namespace pydl::nn {

// Layer l of the chain: y (N, out) = act(x (N, in) W^T + b). w is (out, in), b (out,) or null;
// dw, db (db null when b is) receive the gradients: written, or added to with accumulate_w /
// accumulate_b (a parameter that already holds a gradient). An optimizer may update w and b in
// place once the layer's backward is done.
template <class T>
struct DenseLayer {
  T* w;
  T* b;
  T* dw;
  T* db;
  int64_t in, out;
  pydl::ops::Act act;  // its derivative must follow from the output (act_backward_from_output)
  T negative_slope;
  bool accumulate_w = false, accumulate_b = false;
};

// Called with a layer's index once its backward is done: the optimizer step of its w and b.
using LayerUpdate = std::function<void(size_t layer)>;

// x is (N, layers[0].in); ys[l] is (N, layers[l].out). ys[l] = layer l applied to ys[l - 1]
// (to x for l = 0).
template <class T>
void mlp_forward(T* const* ys, const T* x, int64_t N, const std::vector<DenseLayer<T>>& layers);

// dy is dL/dys[L-1]; x and ys as mlp_forward left them. For l = L-1 .. 0: linear_backward of
// layer l, its dL/dx into scratch[l % 2] for l > 0 and into dx for l = 0 (skipped when dx is
// null), then (*update)(l) when update is non-null. scratch[0] and scratch[1] hold
// N * max_{l > 0} layers[l].in elements each.
template <class T>
void mlp_backward(T* dx, const T* dy, const T* x, const T* const* ys, int64_t N,
                  const std::vector<DenseLayer<T>>& layers, T* const* scratch, const LayerUpdate* update);

// The memory a training step reuses from batch to batch: the layers' outputs (the last one is
// the caller's), dL/dlogits and the two backward buffers. Grows with the batch, never shrinks.
template <class T>
struct MlpWorkspace {
  std::vector<std::vector<T>> hidden;  // hidden[l]: (N, layers[l].out), l < L - 1
  std::vector<T> grad_out;             // (N, layers[L-1].out)
  std::vector<T> grad[2];              // (N, max in) each
  // Sizes the buffers for a batch of N; returns the output pointers for mlp_forward, out last.
  std::vector<T*> reserve(const std::vector<DenseLayer<T>>& layers, int64_t N, T* out);
};

// The loss of a step by softmax cross-entropy (ops::cross_entropy's arguments): class indices
// (N,) or probabilities (N, C) (exactly one non-null), class weights (C,) or null.
template <class T>
struct CrossEntropyTarget {
  const int64_t* index;
  const T* prob;
  const T* weight;
  double label_smoothing;
  bool mean;
};

// A whole training step: mlp_forward (out (N, C) last), cross_entropy (loss and dL/dout into
// ws), mlp_backward without dL/dx, each layer updated. Returns the loss. A class index outside
// [0, C) is reported in *bad before anything but out and ws is written (parameters, gradients and
// optimizer state untouched); the return value is then meaningless.
template <class T>
double mlp_step_cross_entropy(T* out, const T* x, int64_t N, const CrossEntropyTarget<T>& target,
                              const std::vector<DenseLayer<T>>& layers, MlpWorkspace<T>& ws,
                              const LayerUpdate& update, pydl::ops::CeBadTarget* bad);

}  // namespace pydl::nn
