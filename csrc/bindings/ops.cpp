// Bindings of the elementwise kernels: activations, softmax / log-softmax, fused cross-entropy.
// Private API (pydl._C); pydl.ops and pydl.nn wrap it. Every argument is checked here (args.h)
// and the kernels run with the GIL released.
#include <string>

#include "bindings/args.h"
#include "ops/activation.h"
#include "ops/softmax.h"
#include "ops/vmath.h"

namespace py = pybind11;
using namespace pydl::bind;
using pydl::ops::Act;

namespace {

// A C-contiguous float32/float64 input.
Arg float_input(const py::object& o, const char* name) { return Arg(o, name).floating().contiguous(); }

// An output of ref's dtype, shape and layout that an elementwise kernel may write in place of ref.
Arg elementwise_output(const py::object& o, const char* name, const Arg& ref) {
  return Arg(o, name).like(ref).writeable().same_or_disjoint(ref);
}

// rows of the last axis of a C-contiguous array of rank >= 1 (softmax is over the last axis).
void rows_cols(const Arg& a, int64_t* rows, int64_t* cols) {
  if (a.ndim() < 1) throw py::value_error(a.label() + ": expected at least 1 dimension, got shape ()");
  *cols = a.dim(a.ndim() - 1);
  *rows = *cols ? a.size() / *cols : 0;
}

void activation_forward(const std::string& activation, const py::object& x_obj, const py::object& out_obj,
                        double negative_slope) {
  const Act act = activation_arg(activation);
  Arg x = float_input(x_obj, "x");
  Arg out = elementwise_output(out_obj, "out", x);
  const int64_t n = x.size();
  dispatch_float(x.dtype(), [&](auto t) {
    using T = decltype(t);
    const T* xp = x.cptr<T>();
    T* yp = out.ptr<T>();
    py::gil_scoped_release nogil;
    pydl::ops::activation_forward<T>(yp, xp, n, act, T(negative_slope));
  });
}

// x (relu, leaky_relu, gelu, gelu_tanh) or y (sigmoid, tanh): the forward array act' reads
// (`what`: input or output); absent when not needed.
Arg activation_saved(const py::object& o, const char* name, const char* what, bool needed,
                     const std::string& activation, const Arg& grad_out, const Arg& grad_in) {
  if (!needed) return Arg::optional(py::none(), name);
  if (o.is_none())
    throw py::value_error(std::string(name) + ": the forward " + what + " is required for '" + activation +
                          "', got None");
  return Arg(o, name).like(grad_out).same_or_disjoint(grad_in);
}

void activation_backward(const std::string& activation, const py::object& grad_out_obj, const py::object& x_obj,
                         const py::object& y_obj, const py::object& grad_in_obj, double negative_slope) {
  const Act act = activation_arg(activation);
  Arg g = float_input(grad_out_obj, "grad_out");
  Arg gi = elementwise_output(grad_in_obj, "grad_in", g);
  const bool needs_y = act == Act::sigmoid || act == Act::tanh;
  const bool needs_x = act == Act::relu || act == Act::leaky_relu || act == Act::gelu || act == Act::gelu_tanh;
  Arg x = activation_saved(x_obj, "x", "input", needs_x, activation, g, gi);
  Arg y = activation_saved(y_obj, "y", "output", needs_y, activation, g, gi);
  const int64_t n = g.size();
  dispatch_float(g.dtype(), [&](auto t) {
    using T = decltype(t);
    const T *gp = g.cptr<T>(), *xp = x.cptr<T>(), *yp = y.cptr<T>();
    T* gip = gi.ptr<T>();
    py::gil_scoped_release nogil;
    pydl::ops::activation_backward<T>(gip, gp, xp, yp, n, act, T(negative_slope));
  });
}

void softmax_forward(const py::object& x_obj, const py::object& out_obj, bool log) {
  Arg x = float_input(x_obj, "x");
  Arg out = elementwise_output(out_obj, "out", x);
  int64_t rows, cols;
  rows_cols(x, &rows, &cols);
  dispatch_float(x.dtype(), [&](auto t) {
    using T = decltype(t);
    const T* xp = x.cptr<T>();
    T* yp = out.ptr<T>();
    py::gil_scoped_release nogil;
    pydl::ops::softmax_forward<T>(yp, xp, rows, cols, log);
  });
}

void softmax_backward(const py::object& grad_out_obj, const py::object& y_obj, const py::object& grad_in_obj,
                      bool log) {
  Arg g = float_input(grad_out_obj, "grad_out");
  Arg y = Arg(y_obj, "y").like(g);
  Arg gi = elementwise_output(grad_in_obj, "grad_in", g).same_or_disjoint(y);
  int64_t rows, cols;
  rows_cols(g, &rows, &cols);
  dispatch_float(g.dtype(), [&](auto t) {
    using T = decltype(t);
    const T *gp = g.cptr<T>(), *yp = y.cptr<T>();
    T* gip = gi.ptr<T>();
    py::gil_scoped_release nogil;
    pydl::ops::softmax_backward<T>(gip, gp, yp, rows, cols, log);
  });
}

// target: int64 class indices (n,) in [0, c), or probabilities of logits' dtype and shape.
// precheck: check the indices here, with the GIL held (so a bad argument is reported before
// anything is written); the kernel checks each index again where it uses it (ARCHITECTURE.md 3.4).
bool class_index_target(Arg& target, const Arg& logits, bool precheck) {
  const int64_t n = logits.dim(0), c = logits.dim(1);
  if (is_int64(target.array())) {
    if (target.ndim() != 1 || target.dim(0) != n)
      throw py::value_error("target: expected class indices of shape (" + std::to_string(n) + ",), got shape " +
                            shape_str(target.array()));
    if (!precheck) return true;
    const int64_t* t = target.cptr<int64_t>();
    const int64_t bad = pydl::ops::cross_entropy_check_targets(t, n, c);
    if (bad >= 0)
      throw py::value_error("target: class index " + std::to_string(t[bad]) + " at position " + std::to_string(bad) +
                            " is out of range [0, " + std::to_string(c) + ")");
    return true;
  }
  if (!same_dtype(target.array(), logits.array()))
    throw py::type_error("target: expected int64 class indices or probabilities of dtype " +
                         dtype_str(logits.array()) + " (as logits), got " + dtype_str(target.array()));
  target.shape_as(logits);
  return false;
}

double cross_entropy_impl(const py::object& logits_obj, const py::object& target_obj, const py::object& grad_obj,
                          const py::object& weight_obj, double label_smoothing, const std::string& reduction,
                          bool precheck) {
  Arg logits = float_input(logits_obj, "logits").rank(2);
  const int64_t n = logits.dim(0), c = logits.dim(1);
  if (c < 1) throw py::value_error("logits: expected at least one class, got shape " + shape_str(logits.array()));
  Arg target = Arg(target_obj, "target").contiguous();
  const bool idx = class_index_target(target, logits, precheck);
  if (!(label_smoothing >= 0.0 && label_smoothing <= 1.0))
    throw py::value_error("label_smoothing: expected a value in [0, 1], got " + std::to_string(label_smoothing));
  if (reduction != "mean" && reduction != "sum")
    throw py::value_error("reduction: expected 'mean' or 'sum', got '" + reduction + "'");
  Arg grad = Arg::optional(grad_obj, "grad").like(logits).writeable().same_or_disjoint(logits);
  // class indices: the kernel reads each one before its row's grad, but an output has no reason
  // to share memory with an index array; probabilities: read before written, element by element.
  if (idx) grad.disjoint_from(target);
  else grad.same_or_disjoint(target);
  Arg weight = Arg::optional(weight_obj, "weight").dtype_as(logits).shape({c}).contiguous();
  grad.same_or_disjoint(weight);
  const bool mean = reduction == "mean";
  pydl::ops::CeBadTarget bad;
  const double loss = dispatch_float(logits.dtype(), [&](auto t) {
    using T = decltype(t);
    const T *lp = logits.cptr<T>(), *wp = weight.cptr<T>();
    const int64_t* ti = idx ? target.cptr<int64_t>() : nullptr;
    const T* tp = idx ? nullptr : target.cptr<T>();
    T* gp = grad.ptr<T>();
    py::gil_scoped_release nogil;
    return pydl::ops::cross_entropy<T>(gp, lp, ti, tp, wp, n, c, label_smoothing, mean, &bad);
  });
  if (bad.pos >= 0)  // (the GIL is held again here)
    throw py::value_error("target: class index " + std::to_string(bad.value) + " at position " +
                          std::to_string(bad.pos) + " is out of range [0, " + std::to_string(c) +
                          ") (found by the kernel: was target modified during the call?)" +
                          (grad.present() ? "; grad is partly written" : ""));
  return loss;
}

double cross_entropy(const py::object& logits_obj, const py::object& target_obj, const py::object& grad_obj,
                     const py::object& weight_obj, double label_smoothing, const std::string& reduction) {
  return cross_entropy_impl(logits_obj, target_obj, grad_obj, weight_obj, label_smoothing, reduction, true);
}

// Tests only: cross_entropy without the binding's check of the class indices, so that the
// kernel's own check (the one a concurrent writer meets) is what reports a bad index.
double cross_entropy_kernel_check(const py::object& logits_obj, const py::object& target_obj,
                                  const py::object& grad_obj, const py::object& weight_obj, double label_smoothing,
                                  const std::string& reduction) {
  return cross_entropy_impl(logits_obj, target_obj, grad_obj, weight_obj, label_smoothing, reduction, false);
}

void vmath(const std::string& fn, const py::object& x_obj, const py::object& out_obj) {
  using pydl::ops::VmathFn;
  VmathFn f;
  if (fn == "exp") f = VmathFn::exp;
  else if (fn == "tanh") f = VmathFn::tanh;
  else if (fn == "erf") f = VmathFn::erf;
  else throw py::value_error("fn: expected 'exp', 'tanh' or 'erf', got '" + fn + "'");
  Arg x = float_input(x_obj, "x");
  if (x.dtype() != DType::f32) throw py::type_error("x: expected float32, got " + dtype_str(x.array()));
  Arg out = elementwise_output(out_obj, "out", x);
  const float* xp = x.cptr<float>();
  float* yp = out.ptr<float>();
  const int64_t n = x.size();
  py::gil_scoped_release nogil;
  pydl::ops::vmath_f32(yp, xp, n, f);
}

}  // namespace

void register_ops(py::module_& m) {
  m.def("activation_forward", &activation_forward, py::arg("activation"), py::arg("x"), py::arg("out"),
        py::arg("negative_slope") = 0.0,
        "out = act(x) elementwise; activation in none, relu, leaky_relu (negative_slope), sigmoid, tanh, gelu "
        "(x * Phi(x), erf form), gelu_tanh (PyTorch's tanh approximation). out may be x.");
  m.def("activation_backward", &activation_backward, py::arg("activation"), py::arg("grad_out"), py::arg("x"),
        py::arg("y"), py::arg("grad_in"), py::arg("negative_slope") = 0.0,
        "grad_in = grad_out * act'(x). x is the forward input (read by relu, leaky_relu, gelu, gelu_tanh), y the "
        "forward output (read by sigmoid, tanh); the unused one may be None. grad_in may be grad_out.");
  m.def("softmax_forward", &softmax_forward, py::arg("x"), py::arg("out"), py::arg("log") = false,
        "out = softmax(x) (log_softmax when log) over the last axis of a C-contiguous array; out may be x.");
  m.def("softmax_backward", &softmax_backward, py::arg("grad_out"), py::arg("y"), py::arg("grad_in"),
        py::arg("log") = false,
        "grad_in from grad_out and the forward output y: y*(g - sum(g*y)) for softmax, g - exp(y)*sum(g) for "
        "log_softmax (log=True), over the last axis. grad_in may be grad_out.");
  m.def("cross_entropy", &cross_entropy, py::arg("logits"), py::arg("target"), py::arg("grad") = py::none(),
        py::arg("weight") = py::none(), py::arg("label_smoothing") = 0.0, py::arg("reduction") = "mean",
        "Fused log-softmax + NLL, torch.nn.functional.cross_entropy semantics. logits (N, C); target int64 class "
        "indices (N,) or probabilities (N, C) of logits' dtype; weight (C,) class weights; reduction 'mean' or "
        "'sum'. Returns the loss; when grad (N, C) is given also writes dL/dlogits into it.");
  m.def("_cross_entropy_kernel_check", &cross_entropy_kernel_check, py::arg("logits"), py::arg("target"),
        py::arg("grad") = py::none(), py::arg("weight") = py::none(), py::arg("label_smoothing") = 0.0,
        py::arg("reduction") = "mean",
        "Tests only: cross_entropy without the binding's pre-check of the class indices, so that the kernel's "
        "own check at use (which guards against targets changed by another thread during the call) raises the "
        "ValueError.");
  m.def("_vmath", &vmath, py::arg("fn"), py::arg("x"), py::arg("out"),
        "out = fn(x) for fn in exp, tanh, erf with the float32 vector math of the active ISA (tests, benchmarks).");
}
