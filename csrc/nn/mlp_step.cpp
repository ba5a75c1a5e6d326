// A chain of dense layers in one call (see mlp_step.h): the layer kernels of linear.cpp, and
// for a training step the loss kernel of cross_entropy.cpp and an optimizer update per layer.
#include "nn/mlp_step.h"

#include <cstddef>

#include "nn/linear.h"

namespace pydl::nn {

// x (N, in_0) -> ys[0] -> ... -> ys[L-1] (N, out_{L-1}).
template <class T>
void mlp_forward(T* const* ys, const T* x, int64_t N, const std::vector<DenseLayer<T>>& layers) {
  const T* in = x;
  for (size_t l = 0; l < layers.size(); ++l) {
    const DenseLayer<T>& d = layers[l];
    linear_forward<T>(ys[l], in, d.w, d.b, N, d.in, d.out, d.act, d.negative_slope);
    in = ys[l];
  }
}

// dy (N, out_{L-1}) -> every layer's gradients, last layer first; dL/dx of layer l is dL/dy of
// layer l - 1.
template <class T>
void mlp_backward(T* dx, const T* dy, const T* x, const T* const* ys, int64_t N,
                  const std::vector<DenseLayer<T>>& layers, T* const* scratch, const LayerUpdate* update) {
  for (size_t l = layers.size(); l-- > 0;) {
    const DenseLayer<T>& d = layers[l];
    T* dx_l = l > 0 ? scratch[l % 2] : dx;
    linear_backward<T>(dx_l, d.dw, d.db, dy, l > 0 ? ys[l - 1] : x, d.w, ys[l], N, d.in, d.out, d.act,
                       d.negative_slope, d.accumulate_w, d.accumulate_b);
    if (update) (*update)(l);
    dy = dx_l;
  }
}

template <class T>
static void grow(std::vector<T>& v, int64_t n) {
  if (v.size() < static_cast<size_t>(n)) v.resize(static_cast<size_t>(n));
}

template <class T>
std::vector<T*> MlpWorkspace<T>::reserve(const std::vector<DenseLayer<T>>& layers, int64_t N, T* out) {
  const size_t L = layers.size();
  hidden.resize(L - 1);
  std::vector<T*> ys(L, out);
  int64_t widest_in = 0;
  for (size_t l = 0; l < L; ++l) {
    if (l + 1 < L) {
      grow(hidden[l], N * layers[l].out);
      ys[l] = hidden[l].data();
    }
    if (l > 0 && layers[l].in > widest_in) widest_in = layers[l].in;
  }
  grow(grad_out, N * layers[L - 1].out);
  grow(grad[0], N * widest_in);
  grow(grad[1], N * widest_in);
  return ys;
}

template <class T>
double mlp_step_cross_entropy(T* out, const T* x, int64_t N, const CrossEntropyTarget<T>& target,
                              const std::vector<DenseLayer<T>>& layers, MlpWorkspace<T>& ws,
                              const LayerUpdate& update, pydl::ops::CeBadTarget* bad) {
  const int64_t C = layers.back().out;
  if (target.index) {  // checked before anything is written (the kernel checks again as it reads)
    const int64_t pos = pydl::ops::cross_entropy_check_targets(target.index, N, C);
    if (pos >= 0) {
      *bad = {pos, target.index[pos]};
      return 0.0;
    }
  }
  const std::vector<T*> ys = ws.reserve(layers, N, out);
  mlp_forward<T>(ys.data(), x, N, layers);
  const double loss = pydl::ops::cross_entropy<T>(ws.grad_out.data(), out, target.index, target.prob, target.weight,
                                                  N, C, target.label_smoothing, target.mean, bad);
  if (bad->pos >= 0) return loss;
  T* const scratch[2] = {ws.grad[0].data(), ws.grad[1].data()};
  mlp_backward<T>(nullptr, ws.grad_out.data(), x, ys.data(), N, layers, scratch, &update);
  return loss;
}

template struct MlpWorkspace<float>;
template struct MlpWorkspace<double>;
template void mlp_forward<float>(float* const*, const float*, int64_t, const std::vector<DenseLayer<float>>&);
template void mlp_forward<double>(double* const*, const double*, int64_t, const std::vector<DenseLayer<double>>&);
template void mlp_backward<float>(float*, const float*, const float*, const float* const*, int64_t,
                                  const std::vector<DenseLayer<float>>&, float* const*, const LayerUpdate*);
template void mlp_backward<double>(double*, const double*, const double*, const double* const*, int64_t,
                                   const std::vector<DenseLayer<double>>&, double* const*, const LayerUpdate*);
template double mlp_step_cross_entropy<float>(float*, const float*, int64_t, const CrossEntropyTarget<float>&,
                                              const std::vector<DenseLayer<float>>&, MlpWorkspace<float>&,
                                              const LayerUpdate&, pydl::ops::CeBadTarget*);
template double mlp_step_cross_entropy<double>(double*, const double*, int64_t, const CrossEntropyTarget<double>&,
                                               const std::vector<DenseLayer<double>>&, MlpWorkspace<double>&,
                                               const LayerUpdate&, pydl::ops::CeBadTarget*);

}  // namespace pydl::nn
