// pydl._C bindings of the chains of dense layers (csrc/nn/mlp_step.h):
//
//   linear_chain_forward / linear_chain_backward   a Sequential of Linear layers in one call each
//                                                  way (pydl.ops.linear_chain*, per call)
//   MlpStep                                        a whole training step in one call, bound to
//                                                  one model's parameters and one optimizer's
//                                                  state (pydl.train.TrainStep)
//
// A chain is given as lists, one entry per layer: weights (out_l, in_l) with in_l == out_{l-1},
// biases (out_l,) or None, activation names and negative slopes; all of one float dtype.
//
// MlpStep checks its arrays once, when made (dtype, shapes along the chain, C-contiguity,
// writeability, no shared memory), and keeps references to them, so they stay alive while the
// GIL is released; each call then checks only its batch (input, target, out, grad_out) and the
// step's scalars. Its parameters are listed as the model lists them: weight then bias (if any)
// of each layer. The optimizer's state lists follow that order, in the order of the kernel's
// arguments (optim.h):
//   sgd:  [momentum_buffers] when momentum != 0, else []
//   adam: [exp_avgs, exp_avg_sqs] (+ [max_exp_avg_sqs] with amsgrad)
// and each call passes, per parameter group, the group's hyperparameters as a tuple:
//   sgd:  (lr, momentum, dampening, weight_decay, nesterov, maximize)
//   adam: (lr, beta1, beta2, eps, weight_decay, amsgrad, maximize, decoupled_weight_decay)
// with `steps` (adam: each parameter's step number t >= 1, as pydl.optim.Adam passes them).
// `stages` cuts the chain for a residual MLP (nn/mlp_step.h, Stage): a list of
// (first, last, pre, pre_slope, residual) tuples covering the layers in order, pre an activation
// name ("none": no leading activation); None is the one plain stage (0, L, "none", 0.0, False).
#include <pybind11/stl.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "bindings/args.h"
#include "nn/linear.h"
#include "nn/mlp_step.h"
#include "optim/multi_tensor.h"

namespace py = pybind11;
using namespace pydl::bind;
using pydl::nn::DenseLayer;
using pydl::nn::LayerUpdate;
using pydl::nn::MlpWorkspace;
using pydl::nn::NetBuffers;
using pydl::nn::Stage;
using pydl::optim::AdamArgs;
using pydl::optim::SgdArgs;
using pydl::optim::TensorSlot;

namespace {

// The layers of a chain, checked: weights (out, in) chained, biases (out,) or absent (biases None:
// all absent), one float dtype, C-contiguous; activations whose derivative follows from the output.
struct Chain {
  std::vector<Arg> weights, biases;
  std::vector<pydl::ops::Act> acts;
  std::vector<double> slopes;

  size_t size() const { return weights.size(); }
  const Arg& first() const { return weights.front(); }
  int64_t in() const { return weights.front().dim(1); }
  int64_t out() const { return weights.back().dim(0); }

  // The layers for dtype T, with gradients dw / db (null lists: none) and accumulate flags.
  template <class T>
  std::vector<DenseLayer<T>> layers(const std::vector<Arg>* dw = nullptr, const std::vector<Arg>* db = nullptr,
                                    const std::vector<bool>* acc_w = nullptr,
                                    const std::vector<bool>* acc_b = nullptr) const {
    std::vector<DenseLayer<T>> out;
    for (size_t l = 0; l < size(); ++l)
      out.push_back({weights[l].ptr<T>(), biases[l].ptr<T>(), dw ? (*dw)[l].ptr<T>() : nullptr,
                     db ? (*db)[l].ptr<T>() : nullptr, weights[l].dim(1), weights[l].dim(0), acts[l],
                     T(slopes[l]), acc_w && (*acc_w)[l], acc_b && (*acc_b)[l]});
    return out;
  }
};

Chain chain_args(const py::object& weights, const py::object& biases, const std::vector<std::string>& activations,
                 const std::vector<double>& negative_slopes) {
  Chain c;
  c.weights = array_list(weights, "weights", -1);
  const size_t L = c.weights.size();
  if (L == 0) throw py::value_error("weights: expected at least one layer");
  c.biases = biases.is_none() ? std::vector<Arg>(L, Arg::optional(biases, "biases"))
                              : array_list(biases, "biases", static_cast<py::ssize_t>(L), true);
  if (activations.size() != L || negative_slopes.size() != L)
    throw py::value_error("activations, negative_slopes: expected one per layer (" + std::to_string(L) + "), got " +
                          std::to_string(activations.size()) + " and " + std::to_string(negative_slopes.size()));
  c.weights[0].floating();
  for (size_t l = 0; l < L; ++l) {
    Arg& w = c.weights[l].dtype_as(c.weights[0]).rank(2).contiguous();
    if (l > 0) w.shape({w.dim(0), c.weights[l - 1].dim(0)});  // in_l == out_{l-1}
    c.biases[l].dtype_as(w).shape({w.dim(0)}).contiguous();
    const pydl::ops::Act act = activation_arg(activations[l]);
    if (!pydl::nn::act_backward_from_output(act, negative_slopes[l]))
      throw py::value_error("activations[" + std::to_string(l) + "]: its derivative cannot be computed from its output");
    c.acts.push_back(act);
  }
  c.slopes = negative_slopes;
  return c;
}

// The batch input (N >= 1, in) of a chain.
Arg chain_input(const py::object& o, const Chain& c) {
  Arg x = Arg(o, "input").dtype_as(c.first()).rank(2).contiguous();
  if (x.dim(0) < 1) throw py::value_error("input: expected at least one sample, got shape " + shape_str(x.array()));
  return x.shape({x.dim(0), c.in()});
}

// outs: layer l's output (N, out_l) each. With last_optional the last may be None when its
// activation is "none" (a backward does not read it then).
std::vector<Arg> chain_outputs(const py::object& o, const Chain& c, int64_t N, bool last_optional = false) {
  const size_t L = c.size();
  std::vector<Arg> outs = array_list(o, "outs", static_cast<py::ssize_t>(L), last_optional);
  for (size_t l = 0; l < L; ++l) {
    if (!outs[l].present() && (l + 1 < L || c.acts[l] != pydl::ops::Act::none))
      throw py::type_error("outs[" + std::to_string(l) + "]: expected a numpy.ndarray, got None");
    outs[l].dtype_as(c.first()).shape({N, c.weights[l].dim(0)}).contiguous();
  }
  return outs;
}

std::vector<const Arg*> pointers_to(std::initializer_list<const std::vector<Arg>*> lists) {
  std::vector<const Arg*> out;
  for (const auto* list : lists)
    for (const Arg& a : *list) out.push_back(&a);
  return out;
}

template <class T>
std::vector<T*> data_of(const std::vector<Arg>& arrays) {
  std::vector<T*> out;
  for (const Arg& a : arrays) out.push_back(a.ptr<T>());
  return out;
}

py::object linear_chain_forward(const py::object& input, const py::object& weights, const py::object& biases,
                                const py::object& outs_obj, const std::vector<std::string>& activations,
                                const std::vector<double>& negative_slopes) {
  const Chain c = chain_args(weights, biases, activations, negative_slopes);
  Arg x = chain_input(input, c);
  const int64_t N = x.dim(0);
  py::object result = outs_obj;
  if (outs_obj.is_none()) {  // new arrays
    py::list made;
    for (size_t l = 0; l < c.size(); ++l)
      made.append(py::array(c.first().array().dtype(), std::vector<py::ssize_t>{N, c.weights[l].dim(0)}));
    result = made;
  }
  std::vector<Arg> outs = chain_outputs(result, c, N);
  for (Arg& y : outs) y.writeable();
  // Parameters are read here, but no two layers may share memory: the chain's backward writes
  // each layer's gradients once (layers sharing a parameter accumulate, layer by layer).
  require_disjoint(pointers_to({&outs, &c.weights, &c.biases}), {&x});
  dispatch_float(x.dtype(), [&](auto t) {
    using T = decltype(t);
    const std::vector<DenseLayer<T>> layers = c.layers<T>();
    const std::vector<T*> ys = data_of<T>(outs);
    const T* xp = x.cptr<T>();
    py::gil_scoped_release nogil;
    pydl::nn::mlp_forward<T>(ys.data(), xp, N, layers);
  });
  return result;
}

// The two buffers mlp_backward passes dL/dx through, per thread, grown as needed.
template <class T>
std::vector<T*> backward_scratch(const Chain& c, int64_t N) {
  thread_local std::vector<T> buf[2];
  int64_t widest = 0;
  for (size_t l = 1; l < c.size(); ++l) widest = std::max(widest, c.weights[l].dim(1));
  for (auto& b : buf)
    if (b.size() < static_cast<size_t>(N * widest)) b.resize(static_cast<size_t>(N * widest));
  return {buf[0].data(), buf[1].data()};
}

// The gradient lists of a chain's backward, one entry per layer: an array (written, or added to
// with its accumulate flag), None (a new array, written) or, for a bias, False (the layer has no
// bias). New arrays are made here, so one call replaces the caller's per-layer allocations.
// Returns the list with the new arrays in place of None (None for False); fills `args` with its
// entries (absent for False) and `acc_out` with the accumulate flags that apply.
py::list gradient_list(const py::object& obj, const char* name, const Chain& c, bool bias,
                       const std::vector<bool>& accumulate, std::vector<Arg>& args, std::vector<bool>& acc_out) {
  const size_t L = c.size();
  if (!py::isinstance<py::list>(obj) && !py::isinstance<py::tuple>(obj))
    throw py::type_error(std::string(name) + ": expected a list of numpy.ndarray, got " +
                         std::string(Py_TYPE(obj.ptr())->tp_name));
  py::sequence seq = py::reinterpret_borrow<py::sequence>(obj);
  if (seq.size() != L)
    throw py::value_error(std::string(name) + ": expected " + std::to_string(L) + " entries (one per layer), got " +
                          std::to_string(seq.size()));
  if (accumulate.size() != L)
    throw py::value_error("accumulate_weights, accumulate_biases: expected one flag per layer (" + std::to_string(L) + ")");
  py::list out;
  acc_out.assign(L, false);
  for (size_t l = 0; l < L; ++l) {
    py::object e = seq[l];
    const py::array& w = c.weights[l].array();
    if (bias && e.ptr() == Py_False) {
      e = py::none();
    } else if (e.is_none()) {
      e = bias ? py::array(w.dtype(), std::vector<py::ssize_t>{w.shape(0)})
               : py::array(w.dtype(), std::vector<py::ssize_t>{w.shape(0), w.shape(1)});
    } else {
      acc_out[l] = accumulate[l];
    }
    args.push_back(bias ? Arg::optional(e, name, static_cast<int64_t>(l)) : Arg(e, name, static_cast<int64_t>(l)));
    out.append(e);
  }
  return out;
}

py::tuple linear_chain_backward(const py::object& grad_out, const py::object& input, const py::object& outs_obj,
                                const py::object& weights, const py::object& grad_in_obj,
                                const py::object& grad_weights, const py::object& grad_biases,
                                const std::vector<std::string>& activations, const std::vector<double>& negative_slopes,
                                const std::vector<bool>& accumulate_weights,
                                const std::vector<bool>& accumulate_biases) {
  const Chain c = chain_args(weights, py::none(), activations, negative_slopes);
  const size_t L = c.size();
  Arg x = chain_input(input, c);
  const int64_t N = x.dim(0);
  std::vector<Arg> outs = chain_outputs(outs_obj, c, N, true);
  Arg g = Arg(grad_out, "grad_out").dtype_as(x).shape({N, c.out()}).contiguous();
  Arg grad_in = Arg::optional(grad_in_obj, "grad_in").like(x).writeable();
  std::vector<bool> acc_w, acc_b;
  std::vector<Arg> gw, gb;
  py::list gw_list = gradient_list(grad_weights, "grad_weights", c, false, accumulate_weights, gw, acc_w);
  py::list gb_list = gradient_list(grad_biases, "grad_biases", c, true, accumulate_biases, gb, acc_b);
  for (size_t l = 0; l < L; ++l) {
    gw[l].like(c.weights[l]).writeable();
    gb[l].dtype_as(x).shape({c.weights[l].dim(0)}).contiguous().writeable();
  }
  std::vector<const Arg*> written = pointers_to({&gw, &gb});
  written.push_back(&grad_in);
  std::vector<const Arg*> read = pointers_to({&c.weights, &outs});
  read.push_back(&x);
  read.push_back(&g);
  require_disjoint(written, read);
  dispatch_float(x.dtype(), [&](auto t) {
    using T = decltype(t);
    const std::vector<DenseLayer<T>> layers = c.layers<T>(&gw, &gb, &acc_w, &acc_b);
    const std::vector<T*> ys = data_of<T>(outs);
    const T *gp = g.cptr<T>(), *xp = x.cptr<T>();
    T* dxp = grad_in.ptr<T>();
    py::gil_scoped_release nogil;
    const std::vector<T*> scratch = backward_scratch<T>(c, N);
    pydl::nn::mlp_backward<T>(dxp, gp, xp, ys.data(), N, layers, scratch.data(), nullptr);
  });
  return py::make_tuple(grad_in_obj, gw_list, gb_list);
}

// ---------------------------------------------------------------------------------- MlpStep
enum class Optim { sgd, adam };

Optim optim_arg(const std::string& name) {
  if (name == "sgd") return Optim::sgd;
  if (name == "adam") return Optim::adam;
  throw py::value_error("optimizer: expected 'sgd' or 'adam', got '" + name + "'");
}

// The hyperparameter tuple of group g, with `size` entries.
py::sequence group_hyper(const py::sequence& hyper, int64_t g, size_t size) {
  if (static_cast<size_t>(g) >= py::len(hyper))
    throw py::value_error("hyper: expected a tuple per parameter group, got " + std::to_string(py::len(hyper)) +
                          " for group " + std::to_string(g));
  py::object h = hyper[static_cast<size_t>(g)];
  if (!py::isinstance<py::tuple>(h) || py::len(h) != size)
    throw py::value_error("hyper[" + std::to_string(g) + "]: expected a tuple of " + std::to_string(size) +
                          " hyperparameters");
  return py::reinterpret_borrow<py::sequence>(h);
}

// (holder, name, value) triples.
std::vector<py::tuple> watch_list(const py::list& watch, const char* name) {
  std::vector<py::tuple> out;
  for (size_t i = 0; i < watch.size(); ++i) {
    py::object w = watch[i];
    if (!py::isinstance<py::tuple>(w) || py::len(w) != 3)
      throw py::type_error(std::string(name) + "[" + std::to_string(i) + "]: expected a (holder, name, value) tuple");
    out.push_back(py::reinterpret_borrow<py::tuple>(w));
  }
  return out;
}

// The stages of a chain (see the header comment), checked: they cover layers 0..L-1 in order, and a
// residual stage maps its width to itself.
std::vector<Stage> stage_args(const py::object& o, const Chain& c) {
  const size_t L = c.size();
  if (o.is_none()) return {Stage{0, L}};
  if (!py::isinstance<py::list>(o) || py::len(o) == 0)
    throw py::type_error("stages: expected a non-empty list of (first, last, pre, pre_slope, residual) tuples or None");
  std::vector<Stage> stages;
  size_t next = 0;
  for (const py::handle h : py::reinterpret_borrow<py::list>(o)) {
    const std::string name = "stages[" + std::to_string(stages.size()) + "]";
    if (!py::isinstance<py::tuple>(h) || py::len(h) != 5)
      throw py::type_error(name + ": expected a (first, last, pre, pre_slope, residual) tuple");
    const auto t = py::reinterpret_borrow<py::tuple>(h);
    Stage st{};
    std::string pre;
    try {
      st = {t[0].cast<size_t>(), t[1].cast<size_t>(), pydl::ops::Act::none, t[3].cast<double>(), t[4].cast<bool>()};
      pre = t[2].cast<std::string>();
    } catch (const py::cast_error&) {
      throw py::type_error(name + ": expected (int >= 0, int >= 0, str, float, bool)");
    }
    st.pre = activation_arg(pre);
    if (st.first != next || st.last <= st.first || st.last > L)
      throw py::value_error(name + ": expected layers [" + std::to_string(next) + ", last) with last in (" +
                            std::to_string(next) + ", " + std::to_string(L) + "], got [" + std::to_string(st.first) +
                            ", " + std::to_string(st.last) + ")");
    const int64_t in = c.weights[st.first].dim(1), out = c.weights[st.last - 1].dim(0);
    if (st.residual && in != out)
      throw py::value_error(name + ": a residual stage must keep its width, got " + std::to_string(in) + " -> " +
                            std::to_string(out));
    next = st.last;
    stages.push_back(st);
  }
  if (next != L) throw py::value_error("stages: expected them to cover the " + std::to_string(L) + " layers, got " +
                                       std::to_string(next));
  return stages;
}

// The cross-entropy arguments of a step: targets for N rows (int64 class indices (N,) or
// probabilities (N, C) of x's dtype), class weights (C,) or None, the label smoothing; none may
// share memory with the output y.
struct CeArgs {
  Arg target, weight;
  bool index;
  double label_smoothing;
  bool mean;
  template <class T>
  pydl::nn::CrossEntropyTarget<T> get() const {
    return {index ? target.cptr<int64_t>() : nullptr, index ? nullptr : target.cptr<T>(), weight.cptr<T>(),
            label_smoothing, mean};
  }
};

CeArgs ce_args(const py::object& target, const py::object& class_weight, double label_smoothing, bool mean,
               const Arg& x, int64_t N, int64_t C, Arg& y) {
  Arg t = Arg(target, "target").contiguous();
  const bool index = is_int64(t.array());
  if (index) t.shape({N});
  else t.dtype_as(x).shape({N, C});
  Arg w = Arg::optional(class_weight, "weight").dtype_as(x).shape({C}).contiguous();
  probability_arg(label_smoothing, "label_smoothing");
  y.disjoint_from(t).disjoint_from(w);
  return {t, w, index, label_smoothing, mean};
}

class MlpStep {
 public:
  MlpStep(const py::object& weights, const py::object& biases, const py::object& grad_weights,
          const py::object& grad_biases, const std::vector<std::string>& activations,
          const std::vector<double>& negative_slopes, const std::string& optimizer, const py::object& states,
          const std::vector<int64_t>& groups, const py::list& watch_attrs, const py::list& watch_items,
          const py::object& stages);

  // True while getattr(holder, name) (watch_attrs) and holder[name] (watch_items) are still the
  // value given, for every (holder, name, value) triple: the caller's sign that the model and the
  // optimizer still hold the arrays this plan was made with.
  bool current() const;
  py::object step(const py::object& input, const py::object& target, const py::object& out,
                  const py::object& class_weight, double label_smoothing, bool mean, const py::sequence& hyper,
                  const std::vector<int64_t>& steps);
  void forward(const py::object& input, const py::object& out);
  void backward_step(const py::object& grad_out, const py::sequence& hyper, const std::vector<int64_t>& steps);
  py::tuple epoch(const py::object& input, const py::object& target, const py::object& order,
                  const std::vector<int64_t>& bounds, const py::object& out, const py::object& class_weight,
                  double label_smoothing, bool mean, const py::sequence& hyper,
                  const std::vector<int64_t>& steps, bool count_correct);

 private:
  template <class T>
  MlpWorkspace<T>& workspace() {
    if constexpr (std::is_same_v<T, float>) return ws32_;
    else return ws64_;
  }
  Arg input_arg(const py::object& o) const;
  Arg output_arg(const py::object& o, const char* name, int64_t N) const;
  // The optimizer's scalars of every parameter for this step, from hyper and steps.
  template <class A>
  std::vector<A> optimizer_args(const py::sequence& hyper, const std::vector<int64_t>& steps) const;
  // Runs fn(T{}, layers, workspace, update, advance) with the GIL released, update being the
  // optimizer step of a layer and advance(k) setting the optimizer's scalars for the k-th step
  // from now (step counts steps[i] + k).
  template <class Fn>
  void run(const py::sequence& hyper, const std::vector<int64_t>& steps, Fn&& fn);

  Chain chain_;
  std::vector<Stage> stages_;
  std::vector<Arg> grad_weights_, grad_biases_;
  Optim optim_;
  std::vector<std::vector<Arg>> states_;     // per state list, one array per parameter
  std::vector<int64_t> groups_;              // group of each parameter
  std::vector<std::vector<size_t>> params_;  // per layer: the positions of its weight and bias among the parameters
  std::unique_ptr<DisjointSet> owned_;       // everything above: no batch array may overlap it
  std::vector<py::tuple> watch_attrs_, watch_items_;
  MlpWorkspace<float> ws32_;
  MlpWorkspace<double> ws64_;
  std::mutex busy_;                          // one step at a time on the workspace
  py::object fwd_input_, fwd_out_;           // the batch of the last forward(), for backward_step()
};

MlpStep::MlpStep(const py::object& weights, const py::object& biases, const py::object& grad_weights,
                 const py::object& grad_biases, const std::vector<std::string>& activations,
                 const std::vector<double>& negative_slopes, const std::string& optimizer, const py::object& states,
                 const std::vector<int64_t>& groups, const py::list& watch_attrs, const py::list& watch_items,
                 const py::object& stages)
    : chain_(chain_args(weights, biases, activations, negative_slopes)),
      stages_(stage_args(stages, chain_)),
      optim_(optim_arg(optimizer)),
      watch_attrs_(watch_list(watch_attrs, "watch_attrs")),
      watch_items_(watch_list(watch_items, "watch_items")) {
  const size_t L = chain_.size();
  grad_weights_ = array_list(grad_weights, "grad_weights", static_cast<py::ssize_t>(L));
  grad_biases_ = array_list(grad_biases, "grad_biases", static_cast<py::ssize_t>(L), true);
  size_t n_params = 0;
  for (size_t l = 0; l < L; ++l) {
    chain_.weights[l].writeable();
    chain_.biases[l].writeable();
    grad_weights_[l].like(chain_.weights[l]).writeable();
    grad_biases_[l].dtype_as(chain_.first()).shape({chain_.weights[l].dim(0)}).contiguous().writeable();
    if (chain_.biases[l].present() != grad_biases_[l].present())
      throw py::value_error("grad_biases[" + std::to_string(l) + "]: give one exactly for a layer with a bias");
    params_.push_back({n_params++});
    if (chain_.biases[l].present()) params_.back().push_back(n_params++);
  }
  const size_t n_lists = py::len(states);
  const size_t max_lists = optim_ == Optim::sgd ? 1 : 3, min_lists = optim_ == Optim::sgd ? 0 : 2;
  if (!py::isinstance<py::list>(states) || n_lists < min_lists || n_lists > max_lists)
    throw py::value_error("states: expected a list of " + std::to_string(min_lists) + " to " +
                          std::to_string(max_lists) + " state lists for '" + optimizer + "'");
  static const char* const names[] = {"states[0]", "states[1]", "states[2]"};  // elements: "states[s][i]"
  for (size_t s = 0; s < n_lists; ++s) {
    states_.push_back(array_list(py::list(states)[s], names[s], static_cast<py::ssize_t>(n_params)));
    for (size_t l = 0; l < L; ++l) {
      states_.back()[params_[l][0]].like(chain_.weights[l]).writeable();
      if (params_[l].size() > 1) states_.back()[params_[l][1]].like(chain_.biases[l]).writeable();
    }
  }
  if (groups.size() != n_params)
    throw py::value_error("groups: expected " + std::to_string(n_params) + " group indices (one per parameter), got " +
                          std::to_string(groups.size()));
  for (int64_t g : groups)
    if (g < 0) throw py::value_error("groups: expected indices >= 0");
  groups_ = groups;
  std::vector<const Arg*> all = pointers_to({&chain_.weights, &chain_.biases, &grad_weights_, &grad_biases_});
  for (const auto& list : states_)
    for (const Arg& a : list) all.push_back(&a);
  owned_ = std::make_unique<DisjointSet>(all);
}

bool MlpStep::current() const {
  for (int items = 0; items < 2; ++items)
    for (const py::tuple& w : items ? watch_items_ : watch_attrs_) {
      PyObject* v = items ? PyObject_GetItem(w[0].ptr(), w[1].ptr()) : PyObject_GetAttr(w[0].ptr(), w[1].ptr());
      if (!v) {
        PyErr_Clear();
        return false;
      }
      Py_DECREF(v);  // (the holder keeps it alive; only its identity is compared)
      if (v != w[2].ptr()) return false;
    }
  return true;
}

Arg MlpStep::input_arg(const py::object& o) const {
  Arg x = chain_input(o, chain_);
  owned_->require_disjoint_from(x);
  return x;
}

Arg MlpStep::output_arg(const py::object& o, const char* name, int64_t N) const {
  Arg a = Arg(o, name).dtype_as(chain_.first()).shape({N, chain_.out()}).contiguous();
  owned_->require_disjoint_from(a);
  return a;
}

template <class A>
std::vector<A> MlpStep::optimizer_args(const py::sequence& hyper, const std::vector<int64_t>& steps) const {
  const size_t n = groups_.size();
  std::vector<A> args(n);
  if constexpr (std::is_same_v<A, SgdArgs>) {
    for (size_t i = 0; i < n; ++i) {
      const py::sequence h = group_hyper(hyper, groups_[i], 6);
      const double momentum = h[1].cast<double>();
      if ((momentum != 0) != (states_.size() == 1))
        throw py::value_error("hyper: momentum " + std::string(momentum != 0 ? "!= 0 needs" : "== 0 takes no") +
                              " momentum buffers (make a new plan)");
      args[i] = {h[0].cast<double>(), momentum, h[2].cast<double>(), h[3].cast<double>(), h[4].cast<bool>(),
                 h[5].cast<bool>(), false};
    }
  } else {
    check_steps(steps, n);
    for (size_t i = 0; i < n; ++i) {
      const py::sequence h = group_hyper(hyper, groups_[i], 8);
      const bool amsgrad = h[5].cast<bool>();
      if (amsgrad != (states_.size() == 3))
        throw py::value_error("hyper: amsgrad " + std::string(amsgrad ? "needs" : "takes no") +
                              " max_exp_avg_sqs (make a new plan)");
      args[i] = pydl::optim::adam_args(h[0].cast<double>(), h[1].cast<double>(), h[2].cast<double>(),
                                       h[3].cast<double>(), h[4].cast<double>(), steps[i], amsgrad, h[6].cast<bool>(),
                                       h[7].cast<bool>());
    }
  }
  return args;
}

template <class Fn>
void MlpStep::run(const py::sequence& hyper, const std::vector<int64_t>& steps, Fn&& fn) {
  std::vector<SgdArgs> sgd;
  std::vector<AdamArgs> adam;
  if (optim_ == Optim::sgd) sgd = optimizer_args<SgdArgs>(hyper, steps);
  else adam = optimizer_args<AdamArgs>(hyper, steps);
  const std::function<void(int64_t)> advance = [&](int64_t k) {
    for (size_t i = 0; i < adam.size(); ++i) {  // (SGD's scalars do not depend on the step)
      const AdamArgs a = adam[i];
      adam[i] = pydl::optim::adam_args(a.lr, a.beta1, a.beta2, a.eps, a.weight_decay, steps[i] + k, a.amsgrad,
                                       a.maximize, a.decoupled);
    }
  };
  dispatch_float(chain_.first().dtype(), [&](auto t) {
    using T = decltype(t);
    const std::vector<DenseLayer<T>> layers = chain_.layers<T>(&grad_weights_, &grad_biases_);
    // per layer, its weight and bias as tensors of one multi-tensor optimizer call
    std::vector<std::vector<TensorSlot<T>>> tensors(layers.size());
    for (size_t l = 0; l < layers.size(); ++l)
      for (size_t k = 0; k < params_[l].size(); ++k) {
        const size_t i = params_[l][k];
        const Arg& p = k == 0 ? chain_.weights[l] : chain_.biases[l];
        TensorSlot<T> s{p.ptr<T>(), k == 0 ? layers[l].dw : layers[l].db, {nullptr, nullptr, nullptr}, p.size()};
        for (size_t j = 0; j < states_.size(); ++j) s.state[j] = states_[j][i].ptr<T>();
        tensors[l].push_back(s);
      }
    const auto kernels = pydl::optim::kernels_for<T>(pydl::optim::Impl::fast);
    const LayerUpdate update = [&](size_t l) {
      if (optim_ == Optim::sgd) {
        std::vector<SgdArgs> args;
        for (size_t i : params_[l]) args.push_back(sgd[i]);
        pydl::optim::multi_tensor_step(tensors[l], args, kernels.sgd);
      } else {
        std::vector<AdamArgs> args;
        for (size_t i : params_[l]) args.push_back(adam[i]);
        pydl::optim::multi_tensor_step(tensors[l], args, kernels.adam);
      }
    };
    py::gil_scoped_release nogil;
    std::lock_guard<std::mutex> lock(busy_);
    fn(t, layers, workspace<T>(), update, advance);
  });
}

py::object MlpStep::step(const py::object& input, const py::object& target, const py::object& out,
                         const py::object& class_weight, double label_smoothing, bool mean,
                         const py::sequence& hyper, const std::vector<int64_t>& steps) {
  Arg x = input_arg(input);
  const int64_t N = x.dim(0), C = chain_.out();
  Arg y = output_arg(out, "out", N).writeable().disjoint_from(x);
  const CeArgs ce = ce_args(target, class_weight, label_smoothing, mean, x, N, C, y);
  pydl::ops::CeBadTarget bad;
  double loss = 0.0;
  run(hyper, steps, [&](auto tag, const auto& layers, auto& ws, const LayerUpdate& update, const auto&) {
    using T = decltype(tag);
    loss = pydl::nn::mlp_step_cross_entropy<T>(y.ptr<T>(), x.cptr<T>(), N, ce.get<T>(), layers, stages_, ws, update, &bad);
  });
  if (bad.pos >= 0) return py::none();  // nothing but out written: the caller runs the layer-by-layer path
  return py::float_(loss);
}

void MlpStep::forward(const py::object& input, const py::object& out) {
  Arg x = input_arg(input);
  const int64_t N = x.dim(0);
  Arg y = output_arg(out, "out", N).writeable().disjoint_from(x);
  dispatch_float(x.dtype(), [&](auto t) {
    using T = decltype(t);
    const std::vector<DenseLayer<T>> layers = chain_.layers<T>();
    const T* xp = x.cptr<T>();
    T* yp = y.ptr<T>();
    py::gil_scoped_release nogil;
    std::lock_guard<std::mutex> lock(busy_);
    const NetBuffers<T> b = workspace<T>().reserve(layers, stages_, N, yp);
    pydl::nn::net_forward<T>(b, xp, N, layers, stages_);
  });
  fwd_input_ = input;
  fwd_out_ = out;
}

void MlpStep::backward_step(const py::object& grad_out, const py::sequence& hyper, const std::vector<int64_t>& steps) {
  if (!fwd_input_ || fwd_input_.is_none()) throw py::value_error("backward_step: no forward() to take the gradient of");
  Arg x = input_arg(fwd_input_);
  const int64_t N = x.dim(0);
  Arg y = output_arg(fwd_out_, "out", N);
  Arg g = output_arg(grad_out, "grad_out", N);
  py::object keep_x = std::move(fwd_input_), keep_y = std::move(fwd_out_);  // one backward per forward
  fwd_input_ = fwd_out_ = py::none();
  run(hyper, steps, [&](auto tag, const auto& layers, auto& ws, const LayerUpdate& update, const auto&) {
    using T = decltype(tag);
    const NetBuffers<T> b = ws.reserve(layers, stages_, N, y.ptr<T>());  // (sized by forward(): the same buffers)
    pydl::nn::net_backward<T>(g.cptr<T>(), x.cptr<T>(), b, N, layers, stages_, ws.scratch(), ws.stage_grad(), update);
  });
}

py::tuple MlpStep::epoch(const py::object& input, const py::object& target, const py::object& order,
                         const std::vector<int64_t>& bounds, const py::object& out,
                         const py::object& class_weight, double label_smoothing, bool mean,
                         const py::sequence& hyper, const std::vector<int64_t>& steps, bool count_correct) {
  Arg x = input_arg(input);
  const int64_t n = x.dim(0), C = chain_.out();
  const size_t n_batches = bounds.size() < 2 ? 0 : bounds.size() - 1;
  bool ordered = n_batches > 0 && bounds.front() >= 0 && bounds.back() <= n;
  for (size_t b = 0; ordered && b < n_batches; ++b) ordered = bounds[b] < bounds[b + 1];
  if (!ordered)
    throw py::value_error("bounds: expected batch boundaries 0 <= b_0 < b_1 < ... <= " + std::to_string(n) +
                          " (the rows of input), " + std::to_string(bounds.size()) + " given");
  int64_t max_rows = 0;
  for (size_t b = 0; b < n_batches; ++b) max_rows = std::max(max_rows, bounds[b + 1] - bounds[b]);
  Arg y = Arg(out, "out").dtype_as(x).rank(2).contiguous().writeable().disjoint_from(x);
  if (y.dim(0) < max_rows || y.dim(1) != C)
    throw py::value_error("out: expected shape (rows >= " + std::to_string(max_rows) + ", " + std::to_string(C) +
                          "), got " + shape_str(y.array()));
  owned_->require_disjoint_from(y);
  const CeArgs ce = ce_args(target, class_weight, label_smoothing, mean, x, n, C, y);
  // The positions bounds[0] .. bounds.back() of order, copied: nothing else can change them while
  // the GIL is released (and a call of a few batches reads only its own part of the permutation).
  std::vector<int64_t> rows;
  Arg o = Arg::optional(order, "order");
  if (o.present()) {
    if (!is_int64(o.array())) throw py::type_error("order: expected int64 row indices, got " + dtype_str(o.array()));
    o.shape({n}).contiguous();
    rows.assign(o.cptr<int64_t>() + bounds.front(), o.cptr<int64_t>() + bounds.back());
    for (int64_t r : rows)
      if (r < 0 || r >= n)
        throw py::value_error("order: expected row indices in [0, " + std::to_string(n) + "), got " + std::to_string(r));
  }
  pydl::ops::CeBadTarget bad;
  std::vector<double> losses;
  std::vector<int64_t> correct;
  run(hyper, steps, [&](auto tag, const auto& layers, auto& ws, const LayerUpdate& update, const auto& advance) {
    using T = decltype(tag);
    pydl::nn::mlp_epoch_cross_entropy<T>(y.ptr<T>(), x.cptr<T>(), ce.get<T>(), o.present() ? rows.data() : nullptr,
                                         bounds, layers, stages_, ws, update, advance, &bad, &losses,
                                         ce.index && count_correct ? &correct : nullptr);
  });
  return py::make_tuple(py::cast(losses), ce.index && count_correct ? py::object(py::cast(correct)) : py::none());
}

}  // namespace

void register_mlp_step(py::module_& m) {
  m.def("linear_chain_forward", &linear_chain_forward, py::arg("input"), py::arg("weights"), py::arg("biases"),
        py::arg("outs"), py::arg("activations"), py::arg("negative_slopes"),
        "outs[l] (N, out_l) = act_l(outs[l-1] @ weights[l]^T + biases[l]), outs[-1] = input: a chain of dense "
        "layers, one linear_forward each. Layers must not share memory. outs None: new arrays. Returns the "
        "list of outputs.");
  m.def("linear_chain_backward", &linear_chain_backward, py::arg("grad_out"), py::arg("input"), py::arg("outs"),
        py::arg("weights"), py::arg("grad_in"), py::arg("grad_weights"), py::arg("grad_biases"),
        py::arg("activations"), py::arg("negative_slopes"), py::arg("accumulate_weights"),
        py::arg("accumulate_biases"),
        "Backward of linear_chain_forward from grad_out = dL/douts[-1]: one linear_backward per layer, last "
        "first; grad_weights[l] / grad_biases[l] written or added to (accumulate_*[l]), None: a new array, "
        "grad_biases[l] False: the layer has no bias; grad_in = dL/dinput (None skips it). outs[-1] may be None "
        "when the last activation is 'none'. Returns (grad_in, grad_weights, grad_biases), the new arrays in "
        "place of None (and None for False).");
  py::class_<MlpStep>(m, "MlpStep",
                      "A multilayer perceptron's training step in one call, bound to its parameters and optimizer "
                      "state; stages cut its chain of layers for a residual MLP (see csrc/bindings/mlp_step.cpp).")
      .def(py::init<const py::object&, const py::object&, const py::object&, const py::object&,
                    const std::vector<std::string>&, const std::vector<double>&, const std::string&,
                    const py::object&, const std::vector<int64_t>&, const py::list&, const py::list&,
                    const py::object&>(),
           py::arg("weights"), py::arg("biases"), py::arg("grad_weights"), py::arg("grad_biases"),
           py::arg("activations"), py::arg("negative_slopes"), py::arg("optimizer"), py::arg("states"),
           py::arg("groups"), py::arg("watch_attrs") = py::list(), py::arg("watch_items") = py::list(),
           py::arg("stages") = py::none())
      .def("current", &MlpStep::current,
           "Whether every watched (holder, name, value) still holds: getattr(holder, name) is value "
           "(watch_attrs), holder[name] is value (watch_items).")
      .def("step", &MlpStep::step, py::arg("input"), py::arg("target"), py::arg("out"), py::arg("weight"),
           py::arg("label_smoothing"), py::arg("mean"), py::arg("hyper"), py::arg("steps"),
           "Forward into out, softmax cross-entropy against target (int64 class indices (N,) or probabilities "
           "(N, C)), backward, and the optimizer step of every layer. Returns the loss, or None when a class "
           "index is out of range (then nothing but out was written).")
      .def("forward", &MlpStep::forward, py::arg("input"), py::arg("out"),
           "out = the chain of layers applied to input; keeps the batch for backward_step.")
      .def("backward_step", &MlpStep::backward_step, py::arg("grad_out"), py::arg("hyper"), py::arg("steps"),
           "Backward of the last forward() from grad_out = dL/dout, and the optimizer step of every layer.")
      .def("epoch", &MlpStep::epoch, py::arg("input"), py::arg("target"), py::arg("order"), py::arg("bounds"),
           py::arg("out"), py::arg("weight"), py::arg("label_smoothing"), py::arg("mean"),
           py::arg("hyper"), py::arg("steps"), py::arg("count_correct"),
           "step() on consecutive batches of an epoch in one call: batch b is the rows "
           "order[bounds[b]:bounds[b + 1]] of input and target (rows bounds[b]:bounds[b + 1] when order is None, "
           "the epoch's permutation of the rows of input), its output in out's first rows; steps are the step "
           "counts of the first batch, advanced by one per batch. Stops before a batch with a class index out of range. Returns (losses, correct): a loss per "
           "batch run and, with count_correct and class indices, per batch the rows whose argmax is the target "
           "(else None).");
}
