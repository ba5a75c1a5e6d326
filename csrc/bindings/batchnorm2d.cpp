// pydl._C bindings of the NCHW batch-norm kernels (csrc/ops/batchnorm2d.h). pydl.nn validates user
// input; these checks guard the kernels: dtype, exact shape, contiguity, writeability and aliasing
// of every array, errors naming the argument. x is (N, C, S): pydl.ops passes (N, C, H*W) views.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <vector>

#include "bindings/args.h"
#include "ops/batchnorm2d.h"

namespace py = pybind11;
using namespace pydl::bind;

namespace {

// The arrays of one call: `x` (N, C, S) fixes the dtype and sizes; every other argument is checked
// against it as it is taken (per channel: (C,); else x's shape) and remembered for the aliasing check.
struct Args {
  Arg x;
  std::vector<Arg> ins, outs;

  explicit Args(const py::handle& x_o) : x(x_o, "input") {
    x.floating().rank(3).contiguous();
    ins.reserve(8);
    outs.reserve(8);
  }

  template <class T>
  T* take(const py::handle& o, const char* name, bool per_channel, bool out, bool optional = false) {
    Arg a = optional ? Arg::optional(o, name) : Arg(o, name);
    a.dtype_as(x).contiguous();
    if (per_channel) a.shape({x.dim(1)});
    else a.shape_as(x);
    if (out) a.writeable();
    T* p = a.ptr<T>();
    (out ? outs : ins).push_back(std::move(a));
    return p;
  }

  void require_no_aliasing() const {
    std::vector<const Arg*> w{}, r{&x};
    for (const Arg& a : outs) w.push_back(&a);
    for (const Arg& a : ins) r.push_back(&a);
    require_disjoint(w, r);
  }

  int64_t N() const { return x.dim(0); }
  int64_t C() const { return x.dim(1); }
  int64_t S() const { return x.dim(2); }
};

void both_or_neither(const void* gamma, const void* beta) {
  if ((gamma == nullptr) != (beta == nullptr)) throw py::value_error("weight, bias: give both or neither");
}

template <class T>
void train_t(Args& a, const py::object& weight, const py::object& bias, const py::object& out,
             const py::object& save_mean, const py::object& save_invstd, const py::object& running_mean,
             const py::object& running_var, double eps, double momentum) {
  const T* g = a.take<T>(weight, "weight", true, false, true);
  const T* b = a.take<T>(bias, "bias", true, false, true);
  both_or_neither(g, b);
  T* y = a.take<T>(out, "out", false, true);
  T* mean = a.take<T>(save_mean, "save_mean", true, true);
  T* invstd = a.take<T>(save_invstd, "save_invstd", true, true);
  T* rm = a.take<T>(running_mean, "running_mean", true, true, true);
  T* rv = a.take<T>(running_var, "running_var", true, true, true);
  a.require_no_aliasing();
  const T* x = a.x.cptr<T>();
  const int64_t N = a.N(), C = a.C(), S = a.S();
  py::gil_scoped_release nogil;
  pydl::ops::batchnorm2d_forward_train<T>(y, mean, invstd, rm, rv, x, g, b, N, C, S, eps, momentum);
}

template <class T>
void eval_t(Args& a, const py::object& weight, const py::object& bias, const py::object& running_mean,
            const py::object& running_var, const py::object& out, double eps) {
  const T* g = a.take<T>(weight, "weight", true, false, true);
  const T* b = a.take<T>(bias, "bias", true, false, true);
  both_or_neither(g, b);
  const T* rm = a.take<T>(running_mean, "running_mean", true, false);
  const T* rv = a.take<T>(running_var, "running_var", true, false);
  T* y = a.take<T>(out, "out", false, true);
  a.require_no_aliasing();
  const T* x = a.x.cptr<T>();
  const int64_t N = a.N(), C = a.C(), S = a.S();
  py::gil_scoped_release nogil;
  pydl::ops::batchnorm2d_forward_eval<T>(y, x, rm, rv, g, b, N, C, S, eps);
}

template <class T>
void backward_t(Args& a, const py::object& grad_out, const py::object& mean, const py::object& invstd,
                const py::object& weight, const py::object& grad_in, const py::object& grad_weight,
                const py::object& grad_bias, bool training, bool accumulate) {
  const T* dy = a.take<T>(grad_out, "grad_out", false, false);
  const T* m = a.take<T>(mean, "mean", true, false);
  const T* inv = a.take<T>(invstd, "invstd", true, false);
  const T* g = a.take<T>(weight, "weight", true, false, true);
  T* dx = a.take<T>(grad_in, "grad_in", false, true, true);
  T* dg = a.take<T>(grad_weight, "grad_weight", true, true, true);
  T* db = a.take<T>(grad_bias, "grad_bias", true, true, true);
  a.require_no_aliasing();
  const T* x = a.x.cptr<T>();
  const int64_t N = a.N(), C = a.C(), S = a.S();
  py::gil_scoped_release nogil;
  pydl::ops::batchnorm2d_backward<T>(dx, dg, db, dy, x, m, inv, g, N, C, S, training, accumulate);
}

}  // namespace

void register_batchnorm2d(py::module_& m) {
  m.def(
      "batchnorm2d_forward_train",
      [](const py::object& x, const py::object& weight, const py::object& bias, const py::object& out,
         const py::object& save_mean, const py::object& save_invstd, const py::object& running_mean,
         const py::object& running_var, double eps, double momentum) {
        Args a(x);
        dispatch_float(a.x.dtype(), [&](auto t) {
          train_t<decltype(t)>(a, weight, bias, out, save_mean, save_invstd, running_mean, running_var, eps, momentum);
        });
      },
      py::arg("input"), py::arg("weight"), py::arg("bias"), py::arg("out"), py::arg("save_mean"),
      py::arg("save_invstd"), py::arg("running_mean"), py::arg("running_var"), py::arg("eps"), py::arg("momentum"),
      "Training-mode batch norm of input (N, C, S) with per-channel batch statistics over N*S values; "
      "writes out, save_mean, save_invstd and updates running_mean/var (unbiased var) when given.");
  m.def(
      "batchnorm2d_forward_eval",
      [](const py::object& x, const py::object& weight, const py::object& bias, const py::object& running_mean,
         const py::object& running_var, const py::object& out, double eps) {
        Args a(x);
        dispatch_float(a.x.dtype(), [&](auto t) { eval_t<decltype(t)>(a, weight, bias, running_mean, running_var, out, eps); });
      },
      py::arg("input"), py::arg("weight"), py::arg("bias"), py::arg("running_mean"), py::arg("running_var"),
      py::arg("out"), py::arg("eps"), "Eval-mode batch norm of input (N, C, S) with the running statistics.");
  m.def(
      "batchnorm2d_backward",
      [](const py::object& grad_out, const py::object& x, const py::object& mean, const py::object& invstd,
         const py::object& weight, const py::object& grad_in, const py::object& grad_weight,
         const py::object& grad_bias, bool training, bool accumulate) {
        Args a(x);
        dispatch_float(a.x.dtype(), [&](auto t) {
          backward_t<decltype(t)>(a, grad_out, mean, invstd, weight, grad_in, grad_weight, grad_bias, training,
                                  accumulate);
        });
      },
      py::arg("grad_out"), py::arg("input"), py::arg("mean"), py::arg("invstd"), py::arg("weight"),
      py::arg("grad_in"), py::arg("grad_weight"), py::arg("grad_bias"), py::arg("training"), py::arg("accumulate"),
      "Batch-norm backward on (N, C, S): grad_weight (+)= sum dy xhat, grad_bias (+)= sum dy (added to when "
      "accumulate), grad_in (None: skipped) as in csrc/ops/batchnorm2d.h.");
}
