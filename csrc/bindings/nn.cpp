// pydl._C bindings of the layer kernels pydl.nn calls (private: pydl.nn validates user input;
// the checks here only guard the kernels against inconsistent arrays).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "bindings/common.h"
#include "nn/linear.h"
#include "ops/activation.h"
#include "ops/batchnorm.h"
#include "ops/dropout.h"

namespace py = pybind11;
using namespace pydl::bind;

namespace {

// A float array of `dtype`'s type, C-contiguous, of exactly `shape`.
void require(const py::array& a, const char* name, DType dtype, std::initializer_list<py::ssize_t> shape,
             bool writeable = false) {
  DType d = require_float(a, name);
  if (d != dtype) throw py::type_error(std::string(name) + ": expected " + (dtype == DType::f32 ? "float32" : "float64") + ", got " + dtype_str(a));
  require_ndim(a, name, static_cast<py::ssize_t>(shape.size()));
  py::ssize_t i = 0;
  for (py::ssize_t s : shape) {
    if (a.shape(i) != s) {
      std::string want = "(";
      for (py::ssize_t e : shape) want += std::to_string(e) + ",";
      throw py::value_error(std::string(name) + ": expected shape " + want + "), got " + shape_str(a));
    }
    ++i;
  }
  require_c_contiguous(a, name);
  if (writeable) require_writeable(a, name);
}

// Optional array argument: None -> nullptr.
template <class T>
const T* opt_in(const py::object& o, const char* name, DType dt, std::initializer_list<py::ssize_t> shape) {
  if (o.is_none()) return nullptr;
  if (!py::isinstance<py::array>(o)) throw py::type_error(std::string(name) + ": expected a numpy.ndarray or None, got " + std::string(Py_TYPE(o.ptr())->tp_name));
  py::array a = py::reinterpret_borrow<py::array>(o);
  require(a, name, dt, shape);
  return static_cast<const T*>(a.data());
}
template <class T>
T* opt_out(const py::object& o, const char* name, DType dt, std::initializer_list<py::ssize_t> shape) {
  if (o.is_none()) return nullptr;
  if (!py::isinstance<py::array>(o)) throw py::type_error(std::string(name) + ": expected a numpy.ndarray or None, got " + std::string(Py_TYPE(o.ptr())->tp_name));
  py::array a = py::reinterpret_borrow<py::array>(o);
  require(a, name, dt, shape, true);
  return static_cast<T*>(a.mutable_data());
}

// Named array arguments, None allowed (skipped).
using Named = std::initializer_list<std::pair<const char*, py::handle>>;

// Every output shares no memory with any input nor with another output (the kernels read inputs
// after writing outputs and use restrict pointers: aliasing gives silently wrong numbers).
void require_outputs_disjoint(Named outs, Named ins) {
  for (auto o = outs.begin(); o != outs.end(); ++o) {
    if (o->second.is_none()) continue;
    py::array oa = py::reinterpret_borrow<py::array>(o->second);
    for (auto& [iname, i] : ins)
      if (!i.is_none()) require_disjoint(oa, o->first, py::reinterpret_borrow<py::array>(i), iname);
    for (auto p = outs.begin(); p != o; ++p)
      if (!p->second.is_none()) require_disjoint(oa, o->first, py::reinterpret_borrow<py::array>(p->second), p->first);
  }
}

pydl::ops::Act act_of(const std::string& s) {
  pydl::ops::Act a;
  if (!pydl::ops::parse_act(s.c_str(), &a)) throw py::value_error("activation: unknown kind '" + s + "'");
  return a;
}

template <class T>
void linear_forward_t(const py::array& x, const py::array& w, const py::object& b, py::array& y,
                      pydl::ops::Act act, double alpha, DType dt) {
  int64_t N = x.shape(0), IN = x.shape(1), OUT = w.shape(0);
  require(w, "weight", dt, {OUT, IN});
  require(y, "out", dt, {N, OUT}, true);
  const T* bp = opt_in<T>(b, "bias", dt, {OUT});
  require_outputs_disjoint({{"out", y}}, {{"input", x}, {"weight", w}, {"bias", b}});
  const T* xp = cptr<T>(x);
  const T* wp = cptr<T>(w);
  T* yp = ptr<T>(y);
  py::gil_scoped_release nogil;
  pydl::nn::linear_forward<T>(yp, xp, wp, bp, N, IN, OUT, act, T(alpha));
}

template <class T>
void linear_backward_t(const py::array& dy, const py::array& x, const py::array& w, const py::object& y,
                       const py::object& dx, py::array& dw, const py::object& db, pydl::ops::Act act, double alpha,
                       bool acc_w, bool acc_b, DType dt) {
  int64_t N = x.shape(0), IN = x.shape(1), OUT = w.shape(0);
  require(w, "weight", dt, {OUT, IN});
  require(dy, "grad_out", dt, {N, OUT});
  require(dw, "grad_weight", dt, {OUT, IN}, true);
  const T* yp = opt_in<T>(y, "out", dt, {N, OUT});
  if (act != pydl::ops::Act::none) {
    if (!yp) throw py::value_error("out: the forward output is needed for this activation");
    if (!pydl::nn::act_backward_from_output(act, alpha))
      throw py::value_error("activation: its derivative cannot be computed from the output");
  }
  T* dxp = opt_out<T>(dx, "grad_in", dt, {N, IN});
  T* dbp = opt_out<T>(db, "grad_bias", dt, {OUT});
  require_outputs_disjoint({{"grad_in", dx}, {"grad_weight", dw}, {"grad_bias", db}},
                           {{"grad_out", dy}, {"input", x}, {"weight", w}, {"out", y}});
  const T *dyp = cptr<T>(dy), *xp = cptr<T>(x), *wp = cptr<T>(w);
  T* dwp = ptr<T>(dw);
  py::gil_scoped_release nogil;
  pydl::nn::linear_backward<T>(dxp, dwp, dbp, dyp, xp, wp, yp, N, IN, OUT, act, T(alpha), acc_w, acc_b);
}

template <class T>
void bn_train_t(const py::array& x, const py::object& gamma, const py::object& beta, py::array& y, py::array& mean,
                py::array& invstd, const py::object& rmean, const py::object& rvar, double eps, double momentum,
                DType dt) {
  int64_t N = x.shape(0), C = x.shape(1);
  require(y, "out", dt, {N, C}, true);
  require(mean, "save_mean", dt, {C}, true);
  require(invstd, "save_invstd", dt, {C}, true);
  const T* g = opt_in<T>(gamma, "weight", dt, {C});
  const T* b = opt_in<T>(beta, "bias", dt, {C});
  if ((g == nullptr) != (b == nullptr)) throw py::value_error("weight, bias: give both or neither");
  T* rm = opt_out<T>(rmean, "running_mean", dt, {C});
  T* rv = opt_out<T>(rvar, "running_var", dt, {C});
  require_outputs_disjoint({{"out", y}, {"save_mean", mean}, {"save_invstd", invstd}, {"running_mean", rmean},
                            {"running_var", rvar}},
                           {{"input", x}, {"weight", gamma}, {"bias", beta}});
  const T* xp = cptr<T>(x);
  T *yp = ptr<T>(y), *mp = ptr<T>(mean), *ip = ptr<T>(invstd);
  py::gil_scoped_release nogil;
  pydl::ops::batchnorm_forward_train<T>(yp, mp, ip, rm, rv, xp, g, b, N, C, eps, momentum);
}

template <class T>
void bn_eval_t(const py::array& x, const py::object& gamma, const py::object& beta, const py::array& rmean,
               const py::array& rvar, py::array& y, double eps, DType dt) {
  int64_t N = x.shape(0), C = x.shape(1);
  require(y, "out", dt, {N, C}, true);
  require(rmean, "running_mean", dt, {C});
  require(rvar, "running_var", dt, {C});
  const T* g = opt_in<T>(gamma, "weight", dt, {C});
  const T* b = opt_in<T>(beta, "bias", dt, {C});
  if ((g == nullptr) != (b == nullptr)) throw py::value_error("weight, bias: give both or neither");
  require_outputs_disjoint({{"out", y}}, {{"input", x}, {"running_mean", rmean}, {"running_var", rvar},
                                          {"weight", gamma}, {"bias", beta}});
  const T *xp = cptr<T>(x), *rm = cptr<T>(rmean), *rv = cptr<T>(rvar);
  T* yp = ptr<T>(y);
  py::gil_scoped_release nogil;
  pydl::ops::batchnorm_forward_eval<T>(yp, xp, rm, rv, g, b, N, C, eps);
}

template <class T>
void bn_backward_t(const py::array& dy, const py::array& x, const py::array& mean, const py::array& invstd,
                   const py::object& gamma, const py::object& dx, const py::object& dgamma, const py::object& dbeta,
                   bool training, bool accumulate, DType dt) {
  int64_t N = x.shape(0), C = x.shape(1);
  require(dy, "grad_out", dt, {N, C});
  require(mean, "mean", dt, {C});
  require(invstd, "invstd", dt, {C});
  const T* g = opt_in<T>(gamma, "weight", dt, {C});
  T* dxp = opt_out<T>(dx, "grad_in", dt, {N, C});
  T* dgp = opt_out<T>(dgamma, "grad_weight", dt, {C});
  T* dbp = opt_out<T>(dbeta, "grad_bias", dt, {C});
  require_outputs_disjoint({{"grad_in", dx}, {"grad_weight", dgamma}, {"grad_bias", dbeta}},
                           {{"grad_out", dy}, {"input", x}, {"mean", mean}, {"invstd", invstd}, {"weight", gamma}});
  const T *dyp = cptr<T>(dy), *xp = cptr<T>(x), *mp = cptr<T>(mean), *ip = cptr<T>(invstd);
  py::gil_scoped_release nogil;
  pydl::ops::batchnorm_backward<T>(dxp, dgp, dbp, dyp, xp, mp, ip, g, N, C, training, accumulate);
}

// Elementwise kernels may write in place (out is exactly the input) but not into a shifted view of it.
void require_alias_or_disjoint(const py::array& out, const char* out_name, const py::array& in, const char* in_name) {
  if (out.data() == in.data() && out.nbytes() == in.nbytes()) return;
  if (shares_bytes(out, in))
    throw py::value_error(std::string(out_name) + ": overlaps " + in_name + " partially (it may only be the same array or disjoint)");
}

void check_p(double p) {
  if (!(p >= 0.0 && p <= 1.0)) throw py::value_error("p: expected a probability in [0, 1], got " + std::to_string(p));
}

void require_mask(const py::array& mask, int64_t n) {
  if (!mask.dtype().equal(py::dtype::of<uint8_t>())) throw py::type_error("mask: expected uint8, got " + dtype_str(mask));
  require_c_contiguous(mask, "mask");
  if (mask.size() != n) throw py::value_error("mask: expected " + std::to_string(n) + " elements, got shape " + shape_str(mask));
}

}  // namespace

void register_nn(py::module_& m) {
  m.def(
      "activation_derivative_from_output",
      [](const std::string& activation, double alpha) {
        return pydl::nn::act_backward_from_output(act_of(activation), alpha);
      },
      py::arg("activation"), py::arg("alpha") = 0.0,
      "True when the activation's derivative is a function of its output alone (relu, sigmoid, tanh, "
      "leaky_relu with a slope >= 0, none): it can then run in a GEMM epilogue and its backward from the "
      "output, without keeping the pre-activation.");
  m.def(
      "linear_forward",
      [](const py::object& x_o, const py::object& weight_o, const py::object& bias, const py::object& out_o,
         const std::string& activation, double alpha) {
        py::array x = array_arg(x_o, "input");
        py::array weight = array_arg(weight_o, "weight");
        py::array out = array_arg(out_o, "out");
        DType dt = require_float(x, "input");
        require_ndim(x, "input", 2);
        require_c_contiguous(x, "input");
        require_ndim(weight, "weight", 2);
        pydl::ops::Act act = act_of(activation);
        if (dt == DType::f32) linear_forward_t<float>(x, weight, bias, out, act, alpha, dt);
        else linear_forward_t<double>(x, weight, bias, out, act, alpha, dt);
      },
      py::arg("input"), py::arg("weight"), py::arg("bias"), py::arg("out"), py::arg("activation") = "none",
      py::arg("alpha") = 0.0,
      "out (N, OUT) = act(input (N, IN) @ weight (OUT, IN)^T + bias (OUT,)); GEMM with the bias/activation "
      "epilogue.");
  m.def(
      "linear_backward",
      [](const py::object& grad_out_o, const py::object& x_o, const py::object& weight_o, const py::object& out,
         const py::object& grad_in, const py::object& grad_weight_o, const py::object& grad_bias,
         const std::string& activation, double alpha, bool accumulate_weight, bool accumulate_bias) {
        py::array grad_out = array_arg(grad_out_o, "grad_out");
        py::array x = array_arg(x_o, "input");
        py::array weight = array_arg(weight_o, "weight");
        py::array grad_weight = array_arg(grad_weight_o, "grad_weight");
        DType dt = require_float(x, "input");
        require_ndim(x, "input", 2);
        require_c_contiguous(x, "input");
        require_ndim(weight, "weight", 2);
        pydl::ops::Act act = act_of(activation);
        if (dt == DType::f32)
          linear_backward_t<float>(grad_out, x, weight, out, grad_in, grad_weight, grad_bias, act, alpha,
                                   accumulate_weight, accumulate_bias, dt);
        else
          linear_backward_t<double>(grad_out, x, weight, out, grad_in, grad_weight, grad_bias, act, alpha,
                                    accumulate_weight, accumulate_bias, dt);
      },
      py::arg("grad_out"), py::arg("input"), py::arg("weight"), py::arg("out"), py::arg("grad_in"),
      py::arg("grad_weight"), py::arg("grad_bias"), py::arg("activation") = "none", py::arg("alpha") = 0.0,
      py::arg("accumulate_weight") = false, py::arg("accumulate_bias") = false,
      "Fused backward of out = act(input W^T + b): dz = grad_out * act'(.) (from out), grad_in = dz W "
      "(skipped when None), grad_weight (+)= dz^T input, grad_bias (+)= sum_rows dz (skipped when None).");

  m.def(
      "dropout_forward",
      [](const py::object& x_o, const py::object& out_o, const py::object& mask_o, double p, uint64_t seed) {
        py::array x = array_arg(x_o, "input");
        py::array out = array_arg(out_o, "out");
        py::array mask = array_arg(mask_o, "mask");
        check_p(p);
        DType dt = require_float(x, "input");
        require_c_contiguous(x, "input");
        int64_t n = x.size();
        require_mask(mask, n);
        require_writeable(mask, "mask");
        require_float(out, "out");
        require_same_dtype(x, "input", out, "out");
        require_c_contiguous(out, "out");
        require_writeable(out, "out");
        if (out.size() != n) throw py::value_error("out: expected " + std::to_string(n) + " elements, got shape " + shape_str(out));
        require_alias_or_disjoint(out, "out", x, "input");
        require_disjoint(mask, "mask", x, "input");
        require_disjoint(mask, "mask", out, "out");
        uint8_t* mp = static_cast<uint8_t*>(mask.mutable_data());
        if (dt == DType::f32) {
          const float* xp = cptr<float>(x);
          float* yp = ptr<float>(out);
          py::gil_scoped_release nogil;
          pydl::ops::dropout_forward<float>(yp, mp, xp, n, p, seed);
        } else {
          const double* xp = cptr<double>(x);
          double* yp = ptr<double>(out);
          py::gil_scoped_release nogil;
          pydl::ops::dropout_forward<double>(yp, mp, xp, n, p, seed);
        }
      },
      py::arg("input"), py::arg("out"), py::arg("mask"), py::arg("p"), py::arg("seed"),
      "Inverted dropout: mask = keep(seed, i) (P = 1 - p), out = input * mask / (1 - p).");
  m.def(
      "dropout_backward",
      [](const py::object& grad_out_o, const py::object& mask_o, const py::object& grad_in_o, double p) {
        py::array grad_out = array_arg(grad_out_o, "grad_out");
        py::array mask = array_arg(mask_o, "mask");
        py::array grad_in = array_arg(grad_in_o, "grad_in");
        check_p(p);
        DType dt = require_float(grad_out, "grad_out");
        require_c_contiguous(grad_out, "grad_out");
        int64_t n = grad_out.size();
        require_mask(mask, n);
        require_same_dtype(grad_out, "grad_out", grad_in, "grad_in");
        require_c_contiguous(grad_in, "grad_in");
        require_writeable(grad_in, "grad_in");
        if (grad_in.size() != n) throw py::value_error("grad_in: expected " + std::to_string(n) + " elements, got shape " + shape_str(grad_in));
        require_alias_or_disjoint(grad_in, "grad_in", grad_out, "grad_out");
        require_disjoint(grad_in, "grad_in", mask, "mask");
        const uint8_t* mp = static_cast<const uint8_t*>(mask.data());
        if (dt == DType::f32) {
          const float* g = cptr<float>(grad_out);
          float* d = ptr<float>(grad_in);
          py::gil_scoped_release nogil;
          pydl::ops::dropout_backward<float>(d, g, mp, n, p);
        } else {
          const double* g = cptr<double>(grad_out);
          double* d = ptr<double>(grad_in);
          py::gil_scoped_release nogil;
          pydl::ops::dropout_backward<double>(d, g, mp, n, p);
        }
      },
      py::arg("grad_out"), py::arg("mask"), py::arg("grad_in"), py::arg("p"),
      "grad_in = grad_out * mask / (1 - p).");
  m.def(
      "dropout_mask",
      [](const py::object& mask_o, double p, uint64_t seed) {
        py::array mask = array_arg(mask_o, "mask");
        check_p(p);
        require_mask(mask, mask.size());
        require_writeable(mask, "mask");
        uint8_t* mp = static_cast<uint8_t*>(mask.mutable_data());
        int64_t n = mask.size();
        py::gil_scoped_release nogil;
        pydl::ops::dropout_mask(mp, n, p, seed);
      },
      py::arg("mask"), py::arg("p"), py::arg("seed"), "The keep mask dropout_forward draws for (p, seed).");

  m.def(
      "batchnorm_forward_train",
      [](const py::object& x_o, const py::object& weight, const py::object& bias, const py::object& out_o, const py::object& save_mean_o,
         const py::object& save_invstd_o, const py::object& running_mean, const py::object& running_var, double eps,
         double momentum) {
        py::array x = array_arg(x_o, "input");
        py::array out = array_arg(out_o, "out");
        py::array save_mean = array_arg(save_mean_o, "save_mean");
        py::array save_invstd = array_arg(save_invstd_o, "save_invstd");
        DType dt = require_float(x, "input");
        require_ndim(x, "input", 2);
        require_c_contiguous(x, "input");
        if (dt == DType::f32)
          bn_train_t<float>(x, weight, bias, out, save_mean, save_invstd, running_mean, running_var, eps, momentum, dt);
        else
          bn_train_t<double>(x, weight, bias, out, save_mean, save_invstd, running_mean, running_var, eps, momentum, dt);
      },
      py::arg("input"), py::arg("weight"), py::arg("bias"), py::arg("out"), py::arg("save_mean"),
      py::arg("save_invstd"), py::arg("running_mean"), py::arg("running_var"), py::arg("eps"), py::arg("momentum"),
      "Training-mode batch norm over (N, C) with batch statistics; updates the running stats (unbiased var).");
  m.def(
      "batchnorm_forward_eval",
      [](const py::object& x_o, const py::object& weight, const py::object& bias, const py::object& running_mean_o,
         const py::object& running_var_o, const py::object& out_o, double eps) {
        py::array x = array_arg(x_o, "input");
        py::array running_mean = array_arg(running_mean_o, "running_mean");
        py::array running_var = array_arg(running_var_o, "running_var");
        py::array out = array_arg(out_o, "out");
        DType dt = require_float(x, "input");
        require_ndim(x, "input", 2);
        require_c_contiguous(x, "input");
        if (dt == DType::f32) bn_eval_t<float>(x, weight, bias, running_mean, running_var, out, eps, dt);
        else bn_eval_t<double>(x, weight, bias, running_mean, running_var, out, eps, dt);
      },
      py::arg("input"), py::arg("weight"), py::arg("bias"), py::arg("running_mean"), py::arg("running_var"),
      py::arg("out"), py::arg("eps"), "Eval-mode batch norm with the running statistics.");
  m.def(
      "batchnorm_backward",
      [](const py::object& grad_out_o, const py::object& x_o, const py::object& mean_o, const py::object& invstd_o,
         const py::object& weight, const py::object& grad_in, const py::object& grad_weight,
         const py::object& grad_bias, bool training, bool accumulate) {
        py::array grad_out = array_arg(grad_out_o, "grad_out");
        py::array x = array_arg(x_o, "input");
        py::array mean = array_arg(mean_o, "mean");
        py::array invstd = array_arg(invstd_o, "invstd");
        DType dt = require_float(x, "input");
        require_ndim(x, "input", 2);
        require_c_contiguous(x, "input");
        if (dt == DType::f32)
          bn_backward_t<float>(grad_out, x, mean, invstd, weight, grad_in, grad_weight, grad_bias, training, accumulate, dt);
        else
          bn_backward_t<double>(grad_out, x, mean, invstd, weight, grad_in, grad_weight, grad_bias, training, accumulate, dt);
      },
      py::arg("grad_out"), py::arg("input"), py::arg("mean"), py::arg("invstd"), py::arg("weight"),
      py::arg("grad_in"), py::arg("grad_weight"), py::arg("grad_bias"), py::arg("training"),
      py::arg("accumulate"),
      "Batch-norm backward: grad_weight (+)= sum dy xhat, grad_bias (+)= sum dy, grad_in as in the header.");
}
