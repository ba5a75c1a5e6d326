// pydl._C optimizer steps: <name>_step(params, grads, <state lists>..., hyperparameters...).
// One call updates every tensor of the lists in place (csrc/optim/multi_tensor.h). The lists
// are validated here (lengths, dtype, shape, C-contiguity, writeability, no shared memory;
// messages name the argument and the index), then the kernels run with the GIL released.
// Hyperparameters may be passed by keyword; pydl.optim passes them by position, which saves
// pybind11's keyword matching (a few microseconds a call, more than the per-tensor checks).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <tuple>
#include <vector>

#include "bindings/common.h"
#include "optim/multi_tensor.h"

namespace py = pybind11;
using namespace pydl::bind;
using namespace pydl::optim;

namespace {

std::string item(const char* name, size_t i) { return std::string(name) + "[" + std::to_string(i) + "]"; }

// The arrays of list argument `name`; expected_len < 0 accepts any length.
std::vector<py::array> array_list(const py::handle& obj, const char* name, py::ssize_t expected_len) {
  if (!py::isinstance<py::list>(obj) && !py::isinstance<py::tuple>(obj))
    throw py::type_error(std::string(name) + ": expected a list of numpy.ndarray, got " +
                         std::string(py::str(py::type::handle_of(obj).attr("__name__"))));
  py::sequence seq = py::reinterpret_borrow<py::sequence>(obj);
  if (expected_len >= 0 && static_cast<py::ssize_t>(seq.size()) != expected_len)
    throw py::value_error(std::string(name) + ": expected " + std::to_string(expected_len) +
                          " arrays (one per parameter), got " + std::to_string(seq.size()));
  std::vector<py::array> out;
  out.reserve(seq.size());
  for (size_t i = 0; i < seq.size(); ++i) {
    py::object o = seq[i];
    if (!py::isinstance<py::array>(o))
      throw py::type_error(item(name, i) + ": expected a numpy.ndarray, got " +
                           std::string(py::str(py::type::handle_of(o).attr("__name__"))));
    out.push_back(py::reinterpret_borrow<py::array>(o));
  }
  return out;
}

bool same_shape(const py::array& a, const py::array& b) {
  if (a.ndim() != b.ndim()) return false;
  for (py::ssize_t d = 0; d < a.ndim(); ++d)
    if (a.shape(d) != b.shape(d)) return false;
  return true;
}

// Checks `arr` (element i of list `name`) against params[i]. Messages are built only on failure:
// this runs for every array of every step.
void check_like(const py::array& arr, const char* name, size_t i, const py::array& p, bool writeable) {
  auto an = [&] { return item(name, i); };
  if (!same_dtype(arr, p))
    throw py::type_error(an() + ": expected dtype " + dtype_str(p) + " (as " + item("params", i) + "), got " +
                         dtype_str(arr));
  if (!same_shape(arr, p))
    throw py::value_error(an() + ": expected shape " + shape_str(p) + " (as " + item("params", i) + "), got " +
                          shape_str(arr));
  if (!(arr.flags() & py::array::c_style)) require_c_contiguous(arr, an().c_str());
  if (writeable && !arr.writeable()) require_writeable(arr, an().c_str());
}

// The validated lists of one step: parameters, gradients and up to three state lists.
struct Lists {
  std::vector<py::array> params, grads;
  std::vector<std::vector<py::array>> states;  // each empty (unused) or one per parameter
  DType dtype = DType::f32;
};

// The kernels use __restrict pointers: no array they write may share memory with any other array
// of the call (a repeated parameter would also be updated twice). Gradients may share memory with
// each other. Sweep the byte ranges in address order, keeping the furthest end seen so far among
// written and among read-only arrays.
void require_no_overlap(const Lists& L, const std::vector<const char*>& state_names) {
  struct Range { uintptr_t lo, hi; bool written; const char* list; size_t index; };
  std::vector<Range> r;
  r.reserve(L.params.size() * (2 + L.states.size()));
  auto add = [&](const py::array& a, bool written, const char* list, size_t i) {
    if (a.nbytes() == 0) return;
    auto lo = reinterpret_cast<uintptr_t>(a.data());
    r.push_back({lo, lo + static_cast<uintptr_t>(a.nbytes()), written, list, i});
  };
  for (size_t i = 0; i < L.params.size(); ++i) {
    add(L.params[i], true, "params", i);
    add(L.grads[i], false, "grads", i);
    for (size_t s = 0; s < L.states.size(); ++s)
      if (!L.states[s].empty()) add(L.states[s][i], true, state_names[s], i);
  }
  std::sort(r.begin(), r.end(), [](const Range& a, const Range& b) { return a.lo < b.lo; });
  const Range* far_written = nullptr;
  const Range* far_read = nullptr;
  for (const Range& x : r) {
    const Range* hit = nullptr;
    if (far_written && x.lo < far_written->hi) hit = far_written;
    else if (x.written && far_read && x.lo < far_read->hi) hit = far_read;
    if (hit)
      throw py::value_error(item(x.list, x.index) + ": shares memory with " + item(hit->list, hit->index) +
                            " (every array the step writes needs its own memory)");
    const Range*& far = x.written ? far_written : far_read;
    if (!far || x.hi > far->hi) far = &x;
  }
}

// state_specs: (name, needed). A needed state list must be a list of len(params); an unneeded one
// may be None (or any list, ignored).
Lists collect(const py::object& params, const py::object& grads,
              std::vector<std::pair<const char*, std::pair<py::object, bool>>> state_specs) {
  Lists L;
  L.params = array_list(params, "params", -1);
  const py::ssize_t n = static_cast<py::ssize_t>(L.params.size());
  for (size_t i = 0; i < L.params.size(); ++i) {
    const py::array& p = L.params[i];
    if (i == 0) {
      L.dtype = require_float(p, "params[0]");
    } else if (!same_dtype(p, L.params[0])) {
      require_float(p, item("params", i).c_str());
      throw py::type_error(item("params", i) + ": expected dtype " + dtype_str(L.params[0]) + " (as params[0]), got " +
                           dtype_str(p));
    }
    if (!(p.flags() & py::array::c_style)) require_c_contiguous(p, item("params", i).c_str());
    if (!p.writeable()) require_writeable(p, item("params", i).c_str());
  }
  L.grads = array_list(grads, "grads", n);
  for (size_t i = 0; i < L.grads.size(); ++i) check_like(L.grads[i], "grads", i, L.params[i], false);
  std::vector<const char*> state_names;
  for (auto& [name, spec] : state_specs) {
    state_names.push_back(name);
    auto& [obj, needed] = spec;
    if (!needed) {
      L.states.emplace_back();
      continue;
    }
    if (obj.is_none())
      throw py::value_error(std::string(name) + ": required by these options, got None");
    L.states.push_back(array_list(obj, name, n));
    for (size_t i = 0; i < L.states.back().size(); ++i) check_like(L.states.back()[i], name, i, L.params[i], true);
  }
  require_no_overlap(L, state_names);
  return L;
}

template <class T>
std::vector<TensorSlot<T>> slots(Lists& L) {
  std::vector<TensorSlot<T>> out(L.params.size());
  for (size_t i = 0; i < out.size(); ++i) {
    out[i].p = ptr<T>(L.params[i]);
    out[i].g = cptr<T>(L.grads[i]);
    out[i].n = static_cast<int64_t>(L.params[i].size());
    for (size_t s = 0; s < 3; ++s)
      out[i].state[s] = s < L.states.size() && !L.states[s].empty() ? ptr<T>(L.states[s][i]) : nullptr;
  }
  return out;
}

// Runs multi<float> or multi<double> on L with the GIL released.
template <class Args, class F32, class F64>
void run(Lists& L, const std::vector<Args>& args, F32 f32, F64 f64) {
  if (L.dtype == DType::f32) {
    auto t = slots<float>(L);
    py::gil_scoped_release nogil;
    f32(t, args);
  } else {
    auto t = slots<double>(L);
    py::gil_scoped_release nogil;
    f64(t, args);
  }
}

std::vector<int64_t> check_steps(const std::vector<int64_t>& steps, size_t n) {
  if (steps.size() != n)
    throw py::value_error("steps: expected " + std::to_string(n) + " step counts (one per parameter), got " +
                          std::to_string(steps.size()));
  for (size_t i = 0; i < n; ++i)
    if (steps[i] < 1) throw py::value_error(item("steps", i) + ": expected a step count >= 1, got " + std::to_string(steps[i]));
  return steps;
}

Impl impl_of(bool reference) { return reference ? Impl::reference : Impl::fast; }

}  // namespace

void register_optim(py::module_& m) {
  m.def(
      "sgd_step",
      [](py::object params, py::object grads, py::object momentum_buffers, py::object first_obj, double lr,
         double momentum, double dampening, double weight_decay, bool nesterov, bool maximize, bool reference) {
        Lists L = collect(params, grads, {{"momentum_buffers", {momentum_buffers, momentum != 0}}});
        // first: one flag per parameter, read only when momentum != 0 (None allowed otherwise).
        std::vector<bool> first;
        if (momentum != 0) {
          if (first_obj.is_none()) throw py::value_error("first: required when momentum != 0, got None");
          if (!py::isinstance<py::sequence>(first_obj) || py::isinstance<py::str>(first_obj))
            throw py::type_error("first: expected a list of bool, got " + std::string(Py_TYPE(first_obj.ptr())->tp_name));
          for (py::handle h : first_obj) first.push_back(PyObject_IsTrue(h.ptr()) == 1);
        }
        if (momentum != 0 && first.size() != L.params.size())
          throw py::value_error("first: expected " + std::to_string(L.params.size()) + " flags (one per parameter), got " +
                                std::to_string(first.size()));
        std::vector<SgdArgs> args(L.params.size());
        for (size_t i = 0; i < args.size(); ++i)
          args[i] = {lr, momentum, dampening, weight_decay, nesterov, maximize, momentum != 0 && bool(first[i])};
        Impl impl = impl_of(reference);
        run(L, args, [&](auto& t, auto& a) { sgd_multi<float>(t, a, impl); },
            [&](auto& t, auto& a) { sgd_multi<double>(t, a, impl); });
      },
      py::arg("params"), py::arg("grads"), py::arg("momentum_buffers"), py::arg("first"), 
      py::arg("lr"), py::arg("momentum"), py::arg("dampening"), py::arg("weight_decay"), py::arg("nesterov"),
      py::arg("maximize"), py::arg("reference") = false,
      R"doc(SGD step over lists of arrays, in place.

g = -grad if maximize else grad; g += weight_decay * p;
momentum != 0: b = g if first[i] else momentum * b + (1 - dampening) * g; g = g + momentum * b if nesterov else b;
p -= lr * g. momentum_buffers (and first) may be None when momentum == 0.)doc");

  m.def(
      "adagrad_step",
      [](py::object params, py::object grads, py::object state_sums, std::vector<int64_t> steps, double lr,
         double lr_decay, double weight_decay, double eps, bool maximize, bool reference) {
        Lists L = collect(params, grads, {{"state_sums", {state_sums, true}}});
        check_steps(steps, L.params.size());
        std::vector<AdagradArgs> args(L.params.size());
        for (size_t i = 0; i < args.size(); ++i)
          args[i] = {lr / (1.0 + double(steps[i] - 1) * lr_decay), weight_decay, eps, maximize};
        Impl impl = impl_of(reference);
        run(L, args, [&](auto& t, auto& a) { adagrad_multi<float>(t, a, impl); },
            [&](auto& t, auto& a) { adagrad_multi<double>(t, a, impl); });
      },
      py::arg("params"), py::arg("grads"), py::arg("state_sums"), py::arg("steps"), py::arg("lr"),
      py::arg("lr_decay"), py::arg("weight_decay"), py::arg("eps"), py::arg("maximize"), py::arg("reference") = false,
      R"doc(Adagrad step over lists of arrays, in place; steps[i] = t >= 1 of tensor i.

clr = lr / (1 + (t - 1) * lr_decay); g += weight_decay * p; s += g^2; p -= clr * g / (sqrt(s) + eps).)doc");

  m.def(
      "adadelta_step",
      [](py::object params, py::object grads, py::object square_avgs, py::object acc_deltas, double lr, double rho,
         double eps, double weight_decay, bool maximize, bool reference) {
        Lists L = collect(params, grads, {{"square_avgs", {square_avgs, true}}, {"acc_deltas", {acc_deltas, true}}});
        std::vector<AdadeltaArgs> args(L.params.size(), AdadeltaArgs{lr, rho, eps, weight_decay, maximize});
        Impl impl = impl_of(reference);
        run(L, args, [&](auto& t, auto& a) { adadelta_multi<float>(t, a, impl); },
            [&](auto& t, auto& a) { adadelta_multi<double>(t, a, impl); });
      },
      py::arg("params"), py::arg("grads"), py::arg("square_avgs"), py::arg("acc_deltas"), 
      py::arg("lr"), py::arg("rho"), py::arg("eps"), py::arg("weight_decay"), py::arg("maximize"),
      py::arg("reference") = false,
      R"doc(Adadelta step over lists of arrays, in place.

g += weight_decay * p; v = rho * v + (1 - rho) * g^2; dx = sqrt(u + eps) / sqrt(v + eps) * g;
u = rho * u + (1 - rho) * dx^2; p -= lr * dx.)doc");

  m.def(
      "rmsprop_step",
      [](py::object params, py::object grads, py::object square_avgs, py::object grad_avgs,
         py::object momentum_buffers, double lr, double alpha, double eps, double weight_decay, double momentum,
         bool centered, bool maximize, bool reference) {
        Lists L = collect(params, grads,
                          {{"square_avgs", {square_avgs, true}},
                           {"grad_avgs", {grad_avgs, centered}},
                           {"momentum_buffers", {momentum_buffers, momentum > 0}}});
        std::vector<RmspropArgs> args(L.params.size(),
                                      RmspropArgs{lr, alpha, eps, weight_decay, momentum, centered, maximize});
        Impl impl = impl_of(reference);
        run(L, args, [&](auto& t, auto& a) { rmsprop_multi<float>(t, a, impl); },
            [&](auto& t, auto& a) { rmsprop_multi<double>(t, a, impl); });
      },
      py::arg("params"), py::arg("grads"), py::arg("square_avgs"), py::arg("grad_avgs"), py::arg("momentum_buffers"),
      py::arg("lr"), py::arg("alpha"), py::arg("eps"), py::arg("weight_decay"), py::arg("momentum"),
      py::arg("centered"), py::arg("maximize"), py::arg("reference") = false,
      R"doc(RMSprop step over lists of arrays, in place.

g += weight_decay * p; v = alpha * v + (1 - alpha) * g^2;
centered: a = alpha * a + (1 - alpha) * g, vt = v - a^2, else vt = v; avg = sqrt(vt) + eps;
momentum > 0: b = momentum * b + g / avg, p -= lr * b; else p -= lr * g / avg.
grad_avgs may be None unless centered, momentum_buffers unless momentum > 0.)doc");

  m.def(
      "adam_step",
      [](py::object params, py::object grads, py::object exp_avgs, py::object exp_avg_sqs,
         py::object max_exp_avg_sqs, std::vector<int64_t> steps, double lr, double beta1, double beta2, double eps,
         double weight_decay, bool amsgrad, bool maximize, bool decoupled_weight_decay, bool reference) {
        Lists L = collect(params, grads,
                          {{"exp_avgs", {exp_avgs, true}},
                           {"exp_avg_sqs", {exp_avg_sqs, true}},
                           {"max_exp_avg_sqs", {max_exp_avg_sqs, amsgrad}}});
        check_steps(steps, L.params.size());
        std::vector<AdamArgs> args(L.params.size());
        for (size_t i = 0; i < args.size(); ++i) {
          const double t = double(steps[i]);
          const double bc1 = 1.0 - std::pow(beta1, t), bc2 = 1.0 - std::pow(beta2, t);
          args[i] = {lr, beta1, beta2, eps, weight_decay, lr / bc1, std::sqrt(bc2), amsgrad, maximize,
                     decoupled_weight_decay};
        }
        Impl impl = impl_of(reference);
        run(L, args, [&](auto& t, auto& a) { adam_multi<float>(t, a, impl); },
            [&](auto& t, auto& a) { adam_multi<double>(t, a, impl); });
      },
      py::arg("params"), py::arg("grads"), py::arg("exp_avgs"), py::arg("exp_avg_sqs"), py::arg("max_exp_avg_sqs"),
      py::arg("steps"), py::arg("lr"), py::arg("beta1"), py::arg("beta2"), py::arg("eps"),
      py::arg("weight_decay"), py::arg("amsgrad"), py::arg("maximize"), py::arg("decoupled_weight_decay") = false,
      py::arg("reference") = false,
      R"doc(Adam / AdamW step over lists of arrays, in place; steps[i] = t >= 1 of tensor i.

AdamW (decoupled_weight_decay): p *= 1 - lr * weight_decay; Adam: g += weight_decay * p;
m = beta1 * m + (1 - beta1) * g; v = beta2 * v + (1 - beta2) * g^2; vmax = max(vmax, v) if amsgrad;
p -= (lr / (1 - beta1^t)) * m / (sqrt(v or vmax) / sqrt(1 - beta2^t) + eps).
max_exp_avg_sqs may be None unless amsgrad.)doc");
}
