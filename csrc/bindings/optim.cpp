// pydl._C optimizer steps: <name>_step(params, grads, <state lists>..., hyperparameters...).
// One call updates every tensor of the lists in place (csrc/optim/multi_tensor.h). The lists
// are validated here (lengths, dtype, shape, C-contiguity, writeability, no shared memory;
// messages name the argument and the index), then the kernels run with the GIL released.
// Hyperparameters may be passed by keyword; pydl.optim passes them by position, which saves
// pybind11's keyword matching (a few microseconds a call, more than the per-tensor checks).
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "bindings/args.h"
#include "optim/multi_tensor.h"

namespace py = pybind11;
using namespace pydl::bind;
using namespace pydl::optim;

namespace {

// A state list the options use (one array per parameter, each like it) or, when not needed,
// ignored (None allowed).
struct StateList {
  const char* name;
  py::object obj;
  bool needed;
};

// The validated lists of one step: parameters, gradients and up to three state lists.
struct Lists {
  std::vector<Arg> params, grads;
  std::vector<std::vector<Arg>> states;  // each empty (unused) or one per parameter
  DType dtype = DType::f32;
};

// The kernels use __restrict pointers: no array they write may share memory with any other array
// of the call (a repeated parameter would also be updated twice). Gradients may share memory with
// each other.
void require_no_overlap(const Lists& L) {
  std::vector<const Arg*> written, read;
  for (const Arg& p : L.params) written.push_back(&p);
  for (const auto& list : L.states)
    for (const Arg& s : list) written.push_back(&s);
  for (const Arg& g : L.grads) read.push_back(&g);
  require_disjoint(written, read);
}

Lists collect(const py::object& params, const py::object& grads, const std::vector<StateList>& state_lists) {
  Lists L;
  L.params = array_list(params, "params", -1);
  const py::ssize_t n = static_cast<py::ssize_t>(L.params.size());
  for (Arg& p : L.params) p.floating().dtype_as(L.params[0]).contiguous().writeable();
  if (n > 0) L.dtype = L.params[0].dtype();
  L.grads = array_list(grads, "grads", n);
  for (size_t i = 0; i < L.grads.size(); ++i) L.grads[i].like(L.params[i]);
  for (const StateList& s : state_lists) {
    L.states.emplace_back();
    if (!s.needed) continue;
    if (s.obj.is_none()) throw py::value_error(std::string(s.name) + ": required by these options, got None");
    L.states.back() = array_list(s.obj, s.name, n);
    for (size_t i = 0; i < L.states.back().size(); ++i) L.states.back()[i].like(L.params[i]).writeable();
  }
  require_no_overlap(L);
  return L;
}

template <class T>
std::vector<TensorSlot<T>> slots(const Lists& L) {
  std::vector<TensorSlot<T>> out(L.params.size());
  for (size_t i = 0; i < out.size(); ++i) {
    out[i].p = L.params[i].ptr<T>();
    out[i].g = L.grads[i].cptr<T>();
    out[i].n = L.params[i].size();
    for (size_t s = 0; s < 3; ++s)
      out[i].state[s] = s < L.states.size() && !L.states[s].empty() ? L.states[s][i].ptr<T>() : nullptr;
  }
  return out;
}

// Runs the kernel `pick` chooses from Kernels<T> (e.g. [](auto& k) { return k.adam; }) over the
// lists, with the GIL released.
template <class Args, class Pick>
void step(const Lists& L, const std::vector<Args>& args, bool reference, Pick pick) {
  dispatch_float(L.dtype, [&](auto t) {
    using T = decltype(t);
    const auto tensors = slots<T>(L);
    const auto kernel = pick(kernels_for<T>(reference ? Impl::reference : Impl::fast));
    py::gil_scoped_release nogil;
    multi_tensor_step(tensors, args, kernel);
  });
}

}  // namespace

void register_optim(py::module_& m) {
  m.def(
      "sgd_step",
      [](py::object params, py::object grads, py::object momentum_buffers, py::object first_obj, double lr,
         double momentum, double dampening, double weight_decay, bool nesterov, bool maximize, bool reference) {
        Lists L = collect(params, grads, {{"momentum_buffers", momentum_buffers, momentum != 0}});
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
        step(L, args, reference, [](const auto& k) { return k.sgd; });
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
        Lists L = collect(params, grads, {{"state_sums", state_sums, true}});
        check_steps(steps, L.params.size());
        std::vector<AdagradArgs> args(L.params.size());
        for (size_t i = 0; i < args.size(); ++i)
          args[i] = {lr / (1.0 + double(steps[i] - 1) * lr_decay), weight_decay, eps, maximize};
        step(L, args, reference, [](const auto& k) { return k.adagrad; });
      },
      py::arg("params"), py::arg("grads"), py::arg("state_sums"), py::arg("steps"), py::arg("lr"),
      py::arg("lr_decay"), py::arg("weight_decay"), py::arg("eps"), py::arg("maximize"), py::arg("reference") = false,
      R"doc(Adagrad step over lists of arrays, in place; steps[i] = t >= 1 of tensor i.

clr = lr / (1 + (t - 1) * lr_decay); g += weight_decay * p; s += g^2; p -= clr * g / (sqrt(s) + eps).)doc");

  m.def(
      "adadelta_step",
      [](py::object params, py::object grads, py::object square_avgs, py::object acc_deltas, double lr, double rho,
         double eps, double weight_decay, bool maximize, bool reference) {
        Lists L = collect(params, grads, {{"square_avgs", square_avgs, true}, {"acc_deltas", acc_deltas, true}});
        std::vector<AdadeltaArgs> args(L.params.size(), AdadeltaArgs{lr, rho, eps, weight_decay, maximize});
        step(L, args, reference, [](const auto& k) { return k.adadelta; });
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
                          {{"square_avgs", square_avgs, true},
                           {"grad_avgs", grad_avgs, centered},
                           {"momentum_buffers", momentum_buffers, momentum > 0}});
        std::vector<RmspropArgs> args(L.params.size(),
                                      RmspropArgs{lr, alpha, eps, weight_decay, momentum, centered, maximize});
        step(L, args, reference, [](const auto& k) { return k.rmsprop; });
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
                          {{"exp_avgs", exp_avgs, true},
                           {"exp_avg_sqs", exp_avg_sqs, true},
                           {"max_exp_avg_sqs", max_exp_avg_sqs, amsgrad}});
        check_steps(steps, L.params.size());
        std::vector<AdamArgs> args(L.params.size());
        for (size_t i = 0; i < args.size(); ++i)
          args[i] = adam_args(lr, beta1, beta2, eps, weight_decay, steps[i], amsgrad, maximize, decoupled_weight_decay);
        step(L, args, reference, [](const auto& k) { return k.adam; });
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
