// One training step of a multilayer perceptron in one call: the forward pass through a chain of
// dense layers, the loss gradient, the backward pass, and the optimizer update of each layer as
// soon as its gradients are final. The chain may be cut into stages with a leading activation and
// an identity shortcut each (a residual MLP: Stage below).
//
// Every piece is a kernel the layer-by-layer path calls (linear_forward, activation_forward,
// cross_entropy, linear_backward, activation_backward, the optimizer steps of
// optim/multi_tensor.h, and an elementwise sum where nn.Residual adds with numpy), called on the
// same arrays with the same arguments, so the results are bitwise those of the layer-by-layer
// path (docs/ARCHITECTURE.md §2, "Fused training step"). The one change of order: layer l's
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

// A stage of a network cut from its chain of dense layers: y = [x +] chain(pre(x)), where pre is
// an activation run alone (none: no such step; its derivative reads x), chain the layers
// [first, last) of the network's list (last > first) and, when residual, the stage's input is
// added back (an identity shortcut: nn.Residual; the chain then maps a width to itself). A plain
// chain of dense layers is the one stage {0, L}. The stages of a network cover its layers in order.
struct Stage {
  size_t first, last;
  pydl::ops::Act pre = pydl::ops::Act::none;
  double pre_slope = 0.0;
  bool residual = false;
};

// Where one batch's values live (pointers into an MlpWorkspace, made by reserve()):
// ys[l] layer l's output, pre[s] stage s's activated input (null without pre), out[s] stage s's
// output: its sum with the input when residual, else ys[last - 1]; the last stage's output is
// the caller's array.
template <class T>
struct NetBuffers {
  std::vector<T*> ys, pre, out;
};

// x (N, width in) -> out.back() (N, width out), stage by stage: pre, the chain, the shortcut sum.
template <class T>
void net_forward(const NetBuffers<T>& b, const T* x, int64_t N, const std::vector<DenseLayer<T>>& layers,
                 const std::vector<Stage>& stages);

// dy is dL/d(out.back()); x and b as net_forward left them. Stages last to first: the chain's
// backward (mlp_backward's order and updates, through scratch[0..1]), then, except for stage 0
// (nobody reads dL/dx), dL/d(stage input) = pre's backward of the chain's dL/dx (+ dy when
// residual) into stage_grad[s % 2]. scratch and stage_grad hold N * max_{l > 0} layers[l].in
// elements each.
template <class T>
void net_backward(const T* dy, const T* x, const NetBuffers<T>& b, int64_t N, const std::vector<DenseLayer<T>>& layers,
                  const std::vector<Stage>& stages, T* const* scratch, T* const* stage_grad, const LayerUpdate& update);

// The memory a training step reuses from batch to batch: the values of NetBuffers (the last
// output is the caller's), dL/dlogits and the backward buffers. Grows with the batch, never shrinks.
template <class T>
struct MlpWorkspace {
  std::vector<std::vector<T>> values;  // the layers' outputs, activated stage inputs, residual sums
  std::vector<T> grad_out;             // (N, layers[L-1].out)
  std::vector<T> grad[4];              // (N, max in) each: scratch (0, 1) and stage_grad (2, 3) of net_backward
  // Sizes the buffers for a batch of N; returns where net_forward writes, out last.
  NetBuffers<T> reserve(const std::vector<DenseLayer<T>>& layers, const std::vector<Stage>& stages, int64_t N, T* out);
  T* const* scratch() { return grad_ptrs_; }
  T* const* stage_grad() { return grad_ptrs_ + 2; }

 private:
  T* grad_ptrs_[4] = {};
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

// A whole training step: net_forward (out (N, C) last), cross_entropy (loss and dL/dout into
// ws), net_backward, each layer updated. Returns the loss. A class index outside [0, C) is
// reported in *bad before anything but out and ws is written (parameters, gradients and
// optimizer state untouched); the return value is then meaningless.
template <class T>
double mlp_step_cross_entropy(T* out, const T* x, int64_t N, const CrossEntropyTarget<T>& target,
                              const std::vector<DenseLayer<T>>& layers, const std::vector<Stage>& stages,
                              MlpWorkspace<T>& ws, const LayerUpdate& update, pydl::ops::CeBadTarget* bad);

// Rows i of out (N, C) whose argmax is index[i]; the argmax is numpy's: the first maximum, or the
// first NaN of a row that has one. (The Trainer's accuracy of a batch.)
template <class T>
int64_t count_argmax_hits(const T* out, const int64_t* index, int64_t N, int64_t C);

// An epoch of training steps in one call (the Trainer's loop without Python between batches).
// The data set is x (n, layers[0].in) and its targets (whole arrays in `target`); batch b is
// rows bounds[b] .. bounds[b + 1] - 1 of x, or with an order the rows order[bounds[b] - bounds[0]],
// ..., order[bounds[b + 1] - 1 - bounds[0]] (order holds the positions bounds[0] .. bounds.back()
// of the epoch's permutation), gathered into buffers as the Trainer's x[idx] gathers them. Runs
// batches 0, 1, ..., bounds.size() - 2: before the k-th step, advance(k) sets the optimizer's
// scalars (step counts t0 + k); then mlp_step_cross_entropy into out (the batch's rows). Stops at a batch with a class index outside [0, C) (reported in *bad; of it only out is
// written). For each batch run: its loss into losses and, when correct is non-null (class index
// targets only), count_argmax_hits of its output.
template <class T>
void mlp_epoch_cross_entropy(T* out, const T* x, const CrossEntropyTarget<T>& target, const int64_t* order,
                             const std::vector<int64_t>& bounds, const std::vector<DenseLayer<T>>& layers,
                             const std::vector<Stage>& stages, MlpWorkspace<T>& ws, const LayerUpdate& update,
                             const std::function<void(int64_t)>& advance, pydl::ops::CeBadTarget* bad,
                             std::vector<double>* losses, std::vector<int64_t>* correct);

}  // namespace pydl::nn
