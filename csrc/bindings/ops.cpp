// Bindings of the elementwise kernels: activations, softmax / log-softmax, fused cross-entropy.
// Private API (pydl._C); pydl.ops and pydl.nn wrap it. Every argument is checked here (dtype,
// shape, contiguity, writeability, aliasing) and the kernels run with the GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "bindings/common.h"
#include "ops/activation.h"
#include "ops/softmax.h"
#include "ops/vmath.h"

namespace py = pybind11;
using namespace pydl::bind;
using pydl::ops::Act;

namespace {

py::array as_array(const py::object& o, const char* name) {
  if (!py::isinstance<py::array>(o))
    throw py::type_error(std::string(name) + ": expected a numpy.ndarray, got " +
                         std::string(Py_TYPE(o.ptr())->tp_name));
  return py::reinterpret_borrow<py::array>(o);
}

bool same_shape(const py::array& a, const py::array& b) {
  if (a.ndim() != b.ndim()) return false;
  for (py::ssize_t i = 0; i < a.ndim(); ++i)
    if (a.shape(i) != b.shape(i)) return false;
  return true;
}

void require_same_shape(const py::array& a, const char* an, const py::array& b, const char* bn) {
  if (!same_shape(a, b))
    throw py::value_error(std::string(bn) + ": expected shape " + shape_str(a) + " (as " + an + "), got " +
                          shape_str(b));
}

// b must be exactly a, or not overlap it at all.
void require_alias_or_disjoint(const py::array& a, const char* an, const py::array& b, const char* bn) {
  const char* a0 = static_cast<const char*>(a.data());
  const char* b0 = static_cast<const char*>(b.data());
  const char* a1 = a0 + a.nbytes();
  const char* b1 = b0 + b.nbytes();
  if (a0 == b0 && a.nbytes() == b.nbytes()) return;
  if (a0 < b1 && b0 < a1)
    throw py::value_error(std::string(bn) + ": overlaps " + an + " partially (it may only be the same array or disjoint)");
}

// A C-contiguous float32/float64 array (input).
py::array float_input(const py::object& o, const char* name) {
  py::array a = as_array(o, name);
  require_float(a, name);
  require_c_contiguous(a, name);
  return a;
}

// An output shaped and typed like ref, C-contiguous and writeable.
py::array float_output(const py::object& o, const char* name, const py::array& ref, const char* ref_name) {
  py::array a = as_array(o, name);
  require_same_dtype(ref, ref_name, a, name);
  require_same_shape(ref, ref_name, a, name);
  require_c_contiguous(a, name);
  require_writeable(a, name);
  return a;
}

Act parse_kind(const std::string& kind) {
  Act act;
  if (!pydl::ops::parse_act(kind.c_str(), &act))
    throw py::value_error("kind: expected one of 'none', 'relu', 'leaky_relu', 'sigmoid', 'tanh', 'gelu', "
                          "'gelu_tanh', got '" + kind + "'");
  return act;
}

// rows x cols view of a C-contiguous array of rank >= 1, softmax over the last axis.
void rows_cols(const py::array& a, const char* name, int64_t* rows, int64_t* cols) {
  if (a.ndim() < 1) throw py::value_error(std::string(name) + ": expected at least 1 dimension, got shape ()");
  *cols = a.shape(a.ndim() - 1);
  *rows = *cols ? a.size() / *cols : 0;
}

void activation_forward(const std::string& kind, const py::object& xo, const py::object& outo, double alpha) {
  Act act = parse_kind(kind);
  py::array x = float_input(xo, "x");
  py::array out = float_output(outo, "out", x, "x");
  require_alias_or_disjoint(x, "x", out, "out");
  const int64_t n = x.size();
  py::gil_scoped_release nogil;
  if (dtype_of(x) == DType::f32)
    pydl::ops::activation_forward<float>(act, cptr<float>(x), ptr<float>(out), n, float(alpha));
  else
    pydl::ops::activation_forward<double>(act, cptr<double>(x), ptr<double>(out), n, alpha);
}

void activation_backward(const std::string& kind, const py::object& go, const py::object& xo, const py::object& yo,
                         const py::object& gio, double alpha) {
  Act act = parse_kind(kind);
  py::array g = float_input(go, "grad_out");
  py::array gi = float_output(gio, "grad_in", g, "grad_out");
  require_alias_or_disjoint(g, "grad_out", gi, "grad_in");
  const bool needs_y = act == Act::sigmoid || act == Act::tanh;
  const bool needs_x = act == Act::relu || act == Act::leaky_relu || act == Act::gelu || act == Act::gelu_tanh;
  py::array x, y;
  auto check_in = [&](const py::object& o, const char* name) {
    py::array a = as_array(o, name);
    require_same_dtype(g, "grad_out", a, name);
    require_same_shape(g, "grad_out", a, name);
    require_c_contiguous(a, name);
    require_alias_or_disjoint(a, name, gi, "grad_in");
    return a;
  };
  if (needs_x) {
    if (xo.is_none()) throw py::value_error("x: the forward input is required for '" + kind + "', got None");
    x = check_in(xo, "x");
  }
  if (needs_y) {
    if (yo.is_none()) throw py::value_error("y: the forward output is required for '" + kind + "', got None");
    y = check_in(yo, "y");
  }
  const int64_t n = g.size();
  py::gil_scoped_release nogil;
  if (dtype_of(g) == DType::f32)
    pydl::ops::activation_backward<float>(act, cptr<float>(g), needs_x ? cptr<float>(x) : nullptr,
                                          needs_y ? cptr<float>(y) : nullptr, ptr<float>(gi), n, float(alpha));
  else
    pydl::ops::activation_backward<double>(act, cptr<double>(g), needs_x ? cptr<double>(x) : nullptr,
                                           needs_y ? cptr<double>(y) : nullptr, ptr<double>(gi), n, alpha);
}

void softmax_forward(const py::object& xo, const py::object& outo, bool log) {
  py::array x = float_input(xo, "x");
  py::array out = float_output(outo, "out", x, "x");
  require_alias_or_disjoint(x, "x", out, "out");
  int64_t rows, cols;
  rows_cols(x, "x", &rows, &cols);
  py::gil_scoped_release nogil;
  if (dtype_of(x) == DType::f32)
    pydl::ops::softmax_forward<float>(ptr<float>(out), cptr<float>(x), rows, cols, log);
  else
    pydl::ops::softmax_forward<double>(ptr<double>(out), cptr<double>(x), rows, cols, log);
}

void softmax_backward(const py::object& go, const py::object& yo, const py::object& gio, bool log) {
  py::array g = float_input(go, "grad_out");
  py::array y = as_array(yo, "y");
  require_same_dtype(g, "grad_out", y, "y");
  require_same_shape(g, "grad_out", y, "y");
  require_c_contiguous(y, "y");
  py::array gi = float_output(gio, "grad_in", g, "grad_out");
  require_alias_or_disjoint(g, "grad_out", gi, "grad_in");
  require_alias_or_disjoint(y, "y", gi, "grad_in");
  int64_t rows, cols;
  rows_cols(g, "grad_out", &rows, &cols);
  py::gil_scoped_release nogil;
  if (dtype_of(g) == DType::f32)
    pydl::ops::softmax_backward<float>(ptr<float>(gi), cptr<float>(g), cptr<float>(y), rows, cols, log);
  else
    pydl::ops::softmax_backward<double>(ptr<double>(gi), cptr<double>(g), cptr<double>(y), rows, cols, log);
}

template <class T>
double cross_entropy_t(py::array& logits, py::array* grad, py::array& target, bool idx, py::array* weight, double eps,
                       bool mean) {
  const int64_t n = logits.shape(0), c = logits.shape(1);
  T* g = grad ? ptr<T>(*grad) : nullptr;
  const T* w = weight ? cptr<T>(*weight) : nullptr;
  const int64_t* ti = idx ? cptr<int64_t>(target) : nullptr;
  const T* tp = idx ? nullptr : cptr<T>(target);
  py::gil_scoped_release nogil;
  return pydl::ops::cross_entropy<T>(g, cptr<T>(logits), ti, tp, w, n, c, eps, mean);
}

double cross_entropy(const py::object& lo, const py::object& to, const py::object& go, const py::object& wo,
                     double label_smoothing, const std::string& reduction) {
  py::array logits = float_input(lo, "logits");
  require_ndim(logits, "logits", 2);
  const int64_t n = logits.shape(0), c = logits.shape(1);
  if (c < 1) throw py::value_error("logits: expected at least one class, got shape " + shape_str(logits));
  py::array target = as_array(to, "target");
  require_c_contiguous(target, "target");
  bool idx;
  if (is_int64(target)) {
    idx = true;
    if (target.ndim() != 1 || target.shape(0) != n)
      throw py::value_error("target: expected class indices of shape (" + std::to_string(n) + ",), got shape " +
                            shape_str(target));
    int64_t bad = pydl::ops::cross_entropy_check_targets(cptr<int64_t>(target), n, c);
    if (bad >= 0)
      throw py::value_error("target: class index " + std::to_string(cptr<int64_t>(target)[bad]) + " at position " +
                            std::to_string(bad) + " is out of range [0, " + std::to_string(c) + ")");
  } else if (same_dtype(target, logits)) {
    idx = false;
    require_same_shape(logits, "logits", target, "target");
  } else {
    throw py::type_error("target: expected int64 class indices or probabilities of dtype " + dtype_str(logits) +
                         " (as logits), got " + dtype_str(target));
  }
  if (!(label_smoothing >= 0.0 && label_smoothing <= 1.0))
    throw py::value_error("label_smoothing: expected a value in [0, 1], got " + std::to_string(label_smoothing));
  if (reduction != "mean" && reduction != "sum")
    throw py::value_error("reduction: expected 'mean' or 'sum', got '" + reduction + "'");
  py::array grad, weight;
  if (!go.is_none()) {
    grad = float_output(go, "grad", logits, "logits");
    require_alias_or_disjoint(logits, "logits", grad, "grad");
    require_alias_or_disjoint(target, "target", grad, "grad");
  }
  if (!wo.is_none()) {
    weight = as_array(wo, "weight");
    require_same_dtype(logits, "logits", weight, "weight");
    if (weight.ndim() != 1 || weight.shape(0) != c)
      throw py::value_error("weight: expected shape (" + std::to_string(c) + ",), got shape " + shape_str(weight));
    require_c_contiguous(weight, "weight");
    if (!go.is_none()) require_alias_or_disjoint(weight, "weight", grad, "grad");
  }
  py::array* gp = go.is_none() ? nullptr : &grad;
  py::array* wp = wo.is_none() ? nullptr : &weight;
  const bool mean = reduction == "mean";
  if (dtype_of(logits) == DType::f32) return cross_entropy_t<float>(logits, gp, target, idx, wp, label_smoothing, mean);
  return cross_entropy_t<double>(logits, gp, target, idx, wp, label_smoothing, mean);
}

void vmath(const std::string& fn, const py::object& xo, const py::object& outo) {
  using pydl::ops::VmathFn;
  VmathFn f;
  if (fn == "exp") f = VmathFn::exp;
  else if (fn == "tanh") f = VmathFn::tanh;
  else if (fn == "erf") f = VmathFn::erf;
  else throw py::value_error("fn: expected 'exp', 'tanh' or 'erf', got '" + fn + "'");
  py::array x = float_input(xo, "x");
  if (dtype_of(x) != DType::f32) throw py::type_error("x: expected float32, got " + dtype_str(x));
  py::array out = float_output(outo, "out", x, "x");
  require_alias_or_disjoint(x, "x", out, "out");
  const int64_t n = x.size();
  py::gil_scoped_release nogil;
  pydl::ops::vmath_f32(f, ptr<float>(out), cptr<float>(x), n);
}

}  // namespace

void register_ops(py::module_& m) {
  m.def("activation_forward", &activation_forward, py::arg("kind"), py::arg("x"), py::arg("out"),
        py::arg("alpha") = 0.0,
        "out = act(x) elementwise; kind in none, relu, leaky_relu (alpha = negative slope), sigmoid, tanh, "
        "gelu (x * Phi(x), erf form), gelu_tanh (PyTorch's tanh approximation). out may be x.");
  m.def("activation_backward", &activation_backward, py::arg("kind"), py::arg("grad_out"), py::arg("x"),
        py::arg("y"), py::arg("grad_in"), py::arg("alpha") = 0.0,
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
  m.def("_vmath", &vmath, py::arg("fn"), py::arg("x"), py::arg("out"),
        "out = fn(x) for fn in exp, tanh, erf with the float32 vector math of the active ISA (tests, benchmarks).");
}
