// A chain of dense layers in one call (see mlp_step.h): the layer kernels of linear.cpp, for a
// residual MLP the activation kernels and a sum per stage, and for a training step the loss
// kernel of cross_entropy.cpp and an optimizer update per layer.
#include "nn/mlp_step.h"

#include <algorithm>
#include <cstddef>

#include "nn/linear.h"

namespace pydl::nn {

using pydl::ops::Act;

// Layers [first, last): x (N, in_first) -> ys[first] -> ... -> ys[last - 1].
template <class T>
static void chain_forward(T* const* ys, const T* x, int64_t N, const std::vector<DenseLayer<T>>& layers, size_t first,
                          size_t last) {
  const T* in = x;
  for (size_t l = first; l < last; ++l) {
    const DenseLayer<T>& d = layers[l];
    linear_forward<T>(ys[l], in, d.w, d.b, N, d.in, d.out, d.act, d.negative_slope);
    in = ys[l];
  }
}

// Layers [first, last) backward from dy = dL/dys[last - 1], last layer first; dL/dx of layer l is
// dL/dy of layer l - 1 (in scratch[l % 2]), that of layer `first` goes to dx (null: skipped).
template <class T>
static void chain_backward(T* dx, const T* dy, const T* x, const T* const* ys, int64_t N,
                           const std::vector<DenseLayer<T>>& layers, size_t first, size_t last, T* const* scratch,
                           const LayerUpdate* update) {
  for (size_t l = last; l-- > first;) {
    const DenseLayer<T>& d = layers[l];
    T* dx_l = l > first ? scratch[l % 2] : dx;
    linear_backward<T>(dx_l, d.dw, d.db, dy, l > first ? ys[l - 1] : x, d.w, ys[l], N, d.in, d.out, d.act,
                       d.negative_slope, d.accumulate_w, d.accumulate_b);
    if (update) (*update)(l);
    dy = dx_l;
  }
}

// z = a + b elementwise (z may be a or b): the sums nn.Residual makes with numpy, the same
// correctly rounded additions.
template <class T>
static void add(T* z, const T* a, const T* b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) z[i] = a[i] + b[i];
}

template <class T>
void mlp_forward(T* const* ys, const T* x, int64_t N, const std::vector<DenseLayer<T>>& layers) {
  chain_forward<T>(ys, x, N, layers, 0, layers.size());
}

template <class T>
void mlp_backward(T* dx, const T* dy, const T* x, const T* const* ys, int64_t N,
                  const std::vector<DenseLayer<T>>& layers, T* const* scratch, const LayerUpdate* update) {
  chain_backward<T>(dx, dy, x, ys, N, layers, 0, layers.size(), scratch, update);
}

// Stage s: a = pre(x) (Residual's first module, an activation run alone), the chain on a, then
// x + chain (Residual.forward's `s + y`, both orders give the same bits).
template <class T>
void net_forward(const NetBuffers<T>& b, const T* x, int64_t N, const std::vector<DenseLayer<T>>& layers,
                 const std::vector<Stage>& stages) {
  const T* in = x;
  for (size_t s = 0; s < stages.size(); ++s) {
    const Stage& st = stages[s];
    const int64_t n = N * layers[st.first].in;
    const T* a = in;
    if (st.pre != Act::none) {
      pydl::ops::activation_forward<T>(b.pre[s], in, n, st.pre, T(st.pre_slope));
      a = b.pre[s];
    }
    chain_forward<T>(b.ys.data(), a, N, layers, st.first, st.last);
    if (st.residual) add<T>(b.out[s], in, b.ys[st.last - 1], n);
    in = b.out[s];
  }
}

// Stage s backward from dy = dL/d(its output): the chain's backward to da = dL/da, then
// dx = pre'(da) (+ dy: Residual.backward's `grad_out + module.backward(grad_out)`), in place.
template <class T>
void net_backward(const T* dy, const T* x, const NetBuffers<T>& b, int64_t N, const std::vector<DenseLayer<T>>& layers,
                  const std::vector<Stage>& stages, T* const* scratch, T* const* stage_grad, const LayerUpdate& update) {
  for (size_t s = stages.size(); s-- > 0;) {
    const Stage& st = stages[s];
    const T* in = s > 0 ? b.out[s - 1] : x;
    T* dx = s > 0 ? stage_grad[s % 2] : nullptr;  // never dy's buffer: that is stage_grad[(s + 1) % 2]
    chain_backward<T>(dx, dy, st.pre != Act::none ? b.pre[s] : in, b.ys.data(), N, layers, st.first, st.last,
                      scratch, &update);
    if (!dx) break;
    const int64_t n = N * layers[st.first].in;
    if (st.pre != Act::none) pydl::ops::activation_backward<T>(dx, dx, in, b.pre[s], n, st.pre, T(st.pre_slope));
    if (st.residual) add<T>(dx, dy, dx, n);
    dy = dx;
  }
}

template <class T>
static void grow(std::vector<T>& v, int64_t n) {
  if (v.size() < static_cast<size_t>(n)) v.resize(static_cast<size_t>(n));
}

template <class T>
NetBuffers<T> MlpWorkspace<T>::reserve(const std::vector<DenseLayer<T>>& layers, const std::vector<Stage>& stages,
                                       int64_t N, T* out) {
  const size_t L = layers.size(), S = stages.size();
  NetBuffers<T> b{std::vector<T*>(L), std::vector<T*>(S), std::vector<T*>(S)};
  size_t count = 0;  // values held by the workspace: all but `out`
  for (const Stage& st : stages) count += (st.pre != Act::none) + (st.last - st.first) + st.residual;
  if (values.size() < count - 1) values.resize(count - 1);
  size_t k = 0;
  auto take = [&](int64_t width) {
    grow(values[k], N * width);
    return values[k++].data();
  };
  for (size_t s = 0; s < S; ++s) {
    const Stage& st = stages[s];
    const bool last = s + 1 == S;
    if (st.pre != Act::none) b.pre[s] = take(layers[st.first].in);
    for (size_t l = st.first; l < st.last; ++l)
      b.ys[l] = last && !st.residual && l + 1 == st.last ? out : take(layers[l].out);
    b.out[s] = !st.residual ? b.ys[st.last - 1] : last ? out : take(layers[st.last - 1].out);
  }
  int64_t widest_in = 0;
  for (size_t l = 1; l < L; ++l)
    if (layers[l].in > widest_in) widest_in = layers[l].in;
  grow(grad_out, N * layers[L - 1].out);
  for (int i = 0; i < 4; ++i) {
    grow(grad[i], N * widest_in);
    grad_ptrs_[i] = grad[i].data();
  }
  return b;
}

template <class T>
double mlp_step_cross_entropy(T* out, const T* x, int64_t N, const CrossEntropyTarget<T>& target,
                              const std::vector<DenseLayer<T>>& layers, const std::vector<Stage>& stages,
                              MlpWorkspace<T>& ws, const LayerUpdate& update, pydl::ops::CeBadTarget* bad) {
  const int64_t C = layers.back().out;
  if (target.index) {  // checked before anything is written (the kernel checks again as it reads)
    const int64_t pos = pydl::ops::cross_entropy_check_targets(target.index, N, C);
    if (pos >= 0) {
      *bad = {pos, target.index[pos]};
      return 0.0;
    }
  }
  const NetBuffers<T> b = ws.reserve(layers, stages, N, out);
  net_forward<T>(b, x, N, layers, stages);
  const double loss = pydl::ops::cross_entropy<T>(ws.grad_out.data(), out, target.index, target.prob, target.weight,
                                                  N, C, target.label_smoothing, target.mean, bad);
  if (bad->pos >= 0) return loss;
  net_backward<T>(ws.grad_out.data(), x, b, N, layers, stages, ws.scratch(), ws.stage_grad(), update);
  return loss;
}

template <class T>
int64_t count_argmax_hits(const T* out, const int64_t* index, int64_t N, int64_t C) {
  int64_t hits = 0;
  for (int64_t i = 0; i < N; ++i) {
    const T* r = out + i * C;
    int64_t best = 0;
    T m = r[0];
    for (int64_t j = 1; j < C && m == m; ++j) {  // (m != m: r[best] is the first NaN, the answer)
      if (r[j] > m || r[j] != r[j]) {
        m = r[j];
        best = j;
      }
    }
    hits += best == index[i];
  }
  return hits;
}

template <class T>
void mlp_epoch_cross_entropy(T* out, const T* x, const CrossEntropyTarget<T>& target, const int64_t* order,
                             const std::vector<int64_t>& bounds, const std::vector<DenseLayer<T>>& layers,
                             const std::vector<Stage>& stages, MlpWorkspace<T>& ws, const LayerUpdate& update,
                             const std::function<void(int64_t)>& advance, pydl::ops::CeBadTarget* bad,
                             std::vector<double>* losses, std::vector<int64_t>* correct) {
  const int64_t in = layers.front().in, C = layers.back().out;
  const size_t n_batches = bounds.size() - 1;
  int64_t max_rows = 0;
  for (size_t b = 0; b < n_batches; ++b) max_rows = std::max(max_rows, bounds[b + 1] - bounds[b]);
  std::vector<T> xb, pb;  // a gathered batch (with order): inputs, probability targets
  std::vector<int64_t> ib;
  if (order) {
    xb.resize(static_cast<size_t>(max_rows * in));
    if (target.index) ib.resize(static_cast<size_t>(max_rows));
    else pb.resize(static_cast<size_t>(max_rows * C));
  }
  for (size_t b = 0; b < n_batches; ++b) {
    const int64_t lo = bounds[b], N = bounds[b + 1] - lo;
    CrossEntropyTarget<T> t = target;
    const T* xs = x + lo * in;
    if (order) {
      for (int64_t i = 0; i < N; ++i) {
        const int64_t r = order[lo - bounds[0] + i];
        std::copy_n(x + r * in, in, xb.data() + i * in);
        if (target.index) ib[static_cast<size_t>(i)] = target.index[r];
        else std::copy_n(target.prob + r * C, C, pb.data() + i * C);
      }
      xs = xb.data();
      t.index = target.index ? ib.data() : nullptr;
      t.prob = target.index ? nullptr : pb.data();
    } else {
      t.index = target.index ? target.index + lo : nullptr;
      t.prob = target.index ? nullptr : target.prob + lo * C;
    }
    advance(static_cast<int64_t>(b));
    const double loss = mlp_step_cross_entropy<T>(out, xs, N, t, layers, stages, ws, update, bad);
    if (bad->pos >= 0) return;
    losses->push_back(loss);
    if (correct) correct->push_back(count_argmax_hits<T>(out, t.index, N, C));
  }
}

#define PYDL_MLP_INSTANTIATE(T)                                                                                        \
  template struct MlpWorkspace<T>;                                                                                 \
  template void mlp_forward<T>(T* const*, const T*, int64_t, const std::vector<DenseLayer<T>>&);                   \
  template void mlp_backward<T>(T*, const T*, const T*, const T* const*, int64_t, const std::vector<DenseLayer<T>>&, \
                                T* const*, const LayerUpdate*);                                                    \
  template void net_forward<T>(const NetBuffers<T>&, const T*, int64_t, const std::vector<DenseLayer<T>>&,         \
                               const std::vector<Stage>&);                                                         \
  template void net_backward<T>(const T*, const T*, const NetBuffers<T>&, int64_t,                                 \
                                const std::vector<DenseLayer<T>>&, const std::vector<Stage>&, T* const*, T* const*, \
                                const LayerUpdate&);                                                               \
  template double mlp_step_cross_entropy<T>(T*, const T*, int64_t, const CrossEntropyTarget<T>&,                   \
                                            const std::vector<DenseLayer<T>>&, const std::vector<Stage>&,          \
                                            MlpWorkspace<T>&, const LayerUpdate&, pydl::ops::CeBadTarget*);  \
  template int64_t count_argmax_hits<T>(const T*, const int64_t*, int64_t, int64_t);                               \
  template void mlp_epoch_cross_entropy<T>(T*, const T*, const CrossEntropyTarget<T>&, const int64_t*,             \
                                           const std::vector<int64_t>&, const std::vector<DenseLayer<T>>&,         \
                                           const std::vector<Stage>&, MlpWorkspace<T>&, const LayerUpdate&,        \
                                           const std::function<void(int64_t)>&, pydl::ops::CeBadTarget*,           \
                                           std::vector<double>*, std::vector<int64_t>*);
PYDL_MLP_INSTANTIATE(float)
PYDL_MLP_INSTANTIATE(double)
#undef PYDL_MLP_INSTANTIATE

}  // namespace pydl::nn
