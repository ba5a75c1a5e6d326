// pydl._C bindings of the layer kernels pydl.nn calls (private: pydl.nn validates user input;
// the checks here, args.h, guard the kernels against inconsistent arrays). Arrays a kernel writes
// share no memory with any other argument (the kernels read inputs after writing outputs and use
// restrict pointers: aliasing would give silently wrong numbers), except the elementwise dropout,
// which may run in place.
#include <string>

#include "bindings/args.h"
#include "nn/linear.h"
#include "ops/activation.h"
#include "ops/batchnorm.h"
#include "ops/dropout.h"

namespace py = pybind11;
using namespace pydl::bind;
using pydl::ops::Act;

namespace {

// The (N, features) input of a layer: float32/float64, 2-D, C-contiguous.
Arg layer_input(const py::object& o) { return Arg(o, "input").floating().rank(2).contiguous(); }

// An array of the input's dtype and this exact shape, C-contiguous (None allowed when optional).
Arg input_like(Arg a, const Arg& x, std::initializer_list<int64_t> shape) {
  return a.dtype_as(x).shape(shape).contiguous();
}
Arg output_like(Arg a, const Arg& x, std::initializer_list<int64_t> shape) {
  return input_like(a, x, shape).writeable();
}

// The arguments both passes of a linear layer take: input (N, IN), weight (OUT, IN), activation.
struct Linear {
  Arg x, weight;
  Act act;
  int64_t N, IN, OUT;
};

Linear linear_args(const py::object& x_obj, const py::object& weight_obj, const std::string& activation) {
  Arg x = layer_input(x_obj);
  Arg weight = Arg(weight_obj, "weight").rank(2);
  const Act act = activation_arg(activation);
  const int64_t N = x.dim(0), IN = x.dim(1), OUT = weight.dim(0);
  return {x, input_like(weight, x, {OUT, IN}), act, N, IN, OUT};
}

void linear_forward(const py::object& x_obj, const py::object& weight_obj, const py::object& bias_obj,
                    const py::object& out_obj, const std::string& activation, double negative_slope) {
  const Linear l = linear_args(x_obj, weight_obj, activation);
  Arg out = output_like(Arg(out_obj, "out"), l.x, {l.N, l.OUT});
  Arg bias = input_like(Arg::optional(bias_obj, "bias"), l.x, {l.OUT});
  require_disjoint({&out}, {&l.x, &l.weight, &bias});
  dispatch_float(l.x.dtype(), [&](auto t) {
    using T = decltype(t);
    const T *xp = l.x.cptr<T>(), *wp = l.weight.cptr<T>(), *bp = bias.cptr<T>();
    T* yp = out.ptr<T>();
    py::gil_scoped_release nogil;
    pydl::nn::linear_forward<T>(yp, xp, wp, bp, l.N, l.IN, l.OUT, l.act, T(negative_slope));
  });
}

void linear_backward(const py::object& grad_out_obj, const py::object& x_obj, const py::object& weight_obj,
                     const py::object& out_obj, const py::object& grad_in_obj, const py::object& grad_weight_obj,
                     const py::object& grad_bias_obj, const std::string& activation, double negative_slope,
                     bool accumulate_weight, bool accumulate_bias) {
  const Linear l = linear_args(x_obj, weight_obj, activation);
  Arg grad_out = input_like(Arg(grad_out_obj, "grad_out"), l.x, {l.N, l.OUT});
  Arg grad_weight = output_like(Arg(grad_weight_obj, "grad_weight"), l.x, {l.OUT, l.IN});
  Arg out = input_like(Arg::optional(out_obj, "out"), l.x, {l.N, l.OUT});
  if (l.act != Act::none) {
    if (!out.present()) throw py::value_error("out: the forward output is needed for this activation");
    if (!pydl::nn::act_backward_from_output(l.act, negative_slope))
      throw py::value_error("activation: its derivative cannot be computed from the output");
  }
  Arg grad_in = output_like(Arg::optional(grad_in_obj, "grad_in"), l.x, {l.N, l.IN});
  Arg grad_bias = output_like(Arg::optional(grad_bias_obj, "grad_bias"), l.x, {l.OUT});
  require_disjoint({&grad_in, &grad_weight, &grad_bias}, {&grad_out, &l.x, &l.weight, &out});
  dispatch_float(l.x.dtype(), [&](auto t) {
    using T = decltype(t);
    const T *dyp = grad_out.cptr<T>(), *xp = l.x.cptr<T>(), *wp = l.weight.cptr<T>(), *yp = out.cptr<T>();
    T *dxp = grad_in.ptr<T>(), *dwp = grad_weight.ptr<T>(), *dbp = grad_bias.ptr<T>();
    py::gil_scoped_release nogil;
    pydl::nn::linear_backward<T>(dxp, dwp, dbp, dyp, xp, wp, yp, l.N, l.IN, l.OUT, l.act, T(negative_slope),
                                 accumulate_weight, accumulate_bias);
  });
}

// The uint8 keep mask, C-contiguous, of n elements (n < 0: any).
Arg mask_arg(const py::object& o, int64_t n) {
  Arg mask = Arg(o, "mask");
  if (!mask.array().dtype().equal(py::dtype::of<uint8_t>()))
    throw py::type_error("mask: expected uint8, got " + dtype_str(mask.array()));
  mask.contiguous();
  if (n >= 0 && mask.size() != n)
    throw py::value_error("mask: expected " + std::to_string(n) + " elements, got shape " + shape_str(mask.array()));
  return mask;
}

// Dropout's output: ref's dtype and number of elements, C-contiguous, writeable, ref itself or disjoint.
Arg dropout_output(const py::object& o, const char* name, const Arg& ref) {
  Arg a = Arg(o, name).floating().dtype_as(ref).contiguous().writeable();
  if (a.size() != ref.size())
    throw py::value_error(a.label() + ": expected " + std::to_string(ref.size()) + " elements, got shape " +
                          shape_str(a.array()));
  return a.same_or_disjoint(ref);
}

void dropout_forward(const py::object& x_obj, const py::object& out_obj, const py::object& mask_obj, double p,
                     uint64_t seed) {
  probability_arg(p, "p");
  Arg x = Arg(x_obj, "input").floating().contiguous();
  Arg out = dropout_output(out_obj, "out", x);
  const int64_t n = x.size();
  Arg mask = mask_arg(mask_obj, n).writeable().disjoint_from(x).disjoint_from(out);
  dispatch_float(x.dtype(), [&](auto t) {
    using T = decltype(t);
    const T* xp = x.cptr<T>();
    T* yp = out.ptr<T>();
    uint8_t* mp = mask.ptr<uint8_t>();
    py::gil_scoped_release nogil;
    pydl::ops::dropout_forward<T>(yp, mp, xp, n, p, seed);
  });
}

void dropout_backward(const py::object& grad_out_obj, const py::object& mask_obj, const py::object& grad_in_obj,
                      double p) {
  probability_arg(p, "p");
  Arg grad_out = Arg(grad_out_obj, "grad_out").floating().contiguous();
  const int64_t n = grad_out.size();
  Arg mask = mask_arg(mask_obj, n);
  Arg grad_in = dropout_output(grad_in_obj, "grad_in", grad_out).disjoint_from(mask);
  dispatch_float(grad_out.dtype(), [&](auto t) {
    using T = decltype(t);
    const T* gp = grad_out.cptr<T>();
    const uint8_t* mp = mask.cptr<uint8_t>();
    T* dp = grad_in.ptr<T>();
    py::gil_scoped_release nogil;
    pydl::ops::dropout_backward<T>(dp, gp, mp, n, p);
  });
}

void dropout_mask(const py::object& mask_obj, double p, uint64_t seed) {
  probability_arg(p, "p");
  Arg mask = mask_arg(mask_obj, -1).writeable();
  uint8_t* mp = mask.ptr<uint8_t>();
  const int64_t n = mask.size();
  py::gil_scoped_release nogil;
  pydl::ops::dropout_mask(mp, n, p, seed);
}

// weight and bias (C,) of an affine batch norm: both arrays or both None.
struct Affine {
  Arg weight, bias;
};

Affine affine_args(const py::object& weight_obj, const py::object& bias_obj, const Arg& x, int64_t C) {
  Arg weight = input_like(Arg::optional(weight_obj, "weight"), x, {C});
  Arg bias = input_like(Arg::optional(bias_obj, "bias"), x, {C});
  if (weight.present() != bias.present()) throw py::value_error("weight, bias: give both or neither");
  return {weight, bias};
}

void batchnorm_forward_train(const py::object& x_obj, const py::object& weight_obj, const py::object& bias_obj,
                             const py::object& out_obj, const py::object& save_mean_obj,
                             const py::object& save_invstd_obj, const py::object& running_mean_obj,
                             const py::object& running_var_obj, double eps, double momentum) {
  Arg x = layer_input(x_obj);
  const int64_t N = x.dim(0), C = x.dim(1);
  Arg out = output_like(Arg(out_obj, "out"), x, {N, C});
  Arg save_mean = output_like(Arg(save_mean_obj, "save_mean"), x, {C});
  Arg save_invstd = output_like(Arg(save_invstd_obj, "save_invstd"), x, {C});
  const Affine affine = affine_args(weight_obj, bias_obj, x, C);
  Arg running_mean = output_like(Arg::optional(running_mean_obj, "running_mean"), x, {C});
  Arg running_var = output_like(Arg::optional(running_var_obj, "running_var"), x, {C});
  require_disjoint({&out, &save_mean, &save_invstd, &running_mean, &running_var}, {&x, &affine.weight, &affine.bias});
  dispatch_float(x.dtype(), [&](auto t) {
    using T = decltype(t);
    const T *xp = x.cptr<T>(), *gp = affine.weight.cptr<T>(), *bp = affine.bias.cptr<T>();
    T *yp = out.ptr<T>(), *mp = save_mean.ptr<T>(), *ip = save_invstd.ptr<T>();
    T *rmp = running_mean.ptr<T>(), *rvp = running_var.ptr<T>();
    py::gil_scoped_release nogil;
    pydl::ops::batchnorm_forward_train<T>(yp, mp, ip, rmp, rvp, xp, gp, bp, N, C, eps, momentum);
  });
}

void batchnorm_forward_eval(const py::object& x_obj, const py::object& weight_obj, const py::object& bias_obj,
                            const py::object& running_mean_obj, const py::object& running_var_obj,
                            const py::object& out_obj, double eps) {
  Arg x = layer_input(x_obj);
  const int64_t N = x.dim(0), C = x.dim(1);
  const Affine affine = affine_args(weight_obj, bias_obj, x, C);
  Arg running_mean = input_like(Arg(running_mean_obj, "running_mean"), x, {C});
  Arg running_var = input_like(Arg(running_var_obj, "running_var"), x, {C});
  Arg out = output_like(Arg(out_obj, "out"), x, {N, C});
  require_disjoint({&out}, {&x, &running_mean, &running_var, &affine.weight, &affine.bias});
  dispatch_float(x.dtype(), [&](auto t) {
    using T = decltype(t);
    const T *xp = x.cptr<T>(), *rmp = running_mean.cptr<T>(), *rvp = running_var.cptr<T>();
    const T *gp = affine.weight.cptr<T>(), *bp = affine.bias.cptr<T>();
    T* yp = out.ptr<T>();
    py::gil_scoped_release nogil;
    pydl::ops::batchnorm_forward_eval<T>(yp, xp, rmp, rvp, gp, bp, N, C, eps);
  });
}

void batchnorm_backward(const py::object& grad_out_obj, const py::object& x_obj, const py::object& mean_obj,
                        const py::object& invstd_obj, const py::object& weight_obj, const py::object& grad_in_obj,
                        const py::object& grad_weight_obj, const py::object& grad_bias_obj, bool training,
                        bool accumulate) {
  Arg x = layer_input(x_obj);
  const int64_t N = x.dim(0), C = x.dim(1);
  Arg grad_out = input_like(Arg(grad_out_obj, "grad_out"), x, {N, C});
  Arg mean = input_like(Arg(mean_obj, "mean"), x, {C});
  Arg invstd = input_like(Arg(invstd_obj, "invstd"), x, {C});
  Arg weight = input_like(Arg::optional(weight_obj, "weight"), x, {C});
  Arg grad_in = output_like(Arg::optional(grad_in_obj, "grad_in"), x, {N, C});
  Arg grad_weight = output_like(Arg::optional(grad_weight_obj, "grad_weight"), x, {C});
  Arg grad_bias = output_like(Arg::optional(grad_bias_obj, "grad_bias"), x, {C});
  require_disjoint({&grad_in, &grad_weight, &grad_bias}, {&grad_out, &x, &mean, &invstd, &weight});
  dispatch_float(x.dtype(), [&](auto t) {
    using T = decltype(t);
    const T *dyp = grad_out.cptr<T>(), *xp = x.cptr<T>(), *mp = mean.cptr<T>(), *ip = invstd.cptr<T>();
    const T* gp = weight.cptr<T>();
    T *dxp = grad_in.ptr<T>(), *dgp = grad_weight.ptr<T>(), *dbp = grad_bias.ptr<T>();
    py::gil_scoped_release nogil;
    pydl::ops::batchnorm_backward<T>(dxp, dgp, dbp, dyp, xp, mp, ip, gp, N, C, training, accumulate);
  });
}

}  // namespace

void register_nn(py::module_& m) {
  m.def(
      "activation_derivative_from_output",
      [](const std::string& activation, double negative_slope) {
        return pydl::nn::act_backward_from_output(activation_arg(activation), negative_slope);
      },
      py::arg("activation"), py::arg("negative_slope") = 0.0,
      "True when the activation's derivative is a function of its output alone (relu, sigmoid, tanh, "
      "leaky_relu with a slope >= 0, none): it can then run in a GEMM epilogue and its backward from the "
      "output, without keeping the pre-activation.");
  m.def("linear_forward", &linear_forward, py::arg("input"), py::arg("weight"), py::arg("bias"), py::arg("out"),
        py::arg("activation") = "none", py::arg("negative_slope") = 0.0,
        "out (N, OUT) = act(input (N, IN) @ weight (OUT, IN)^T + bias (OUT,)); GEMM with the bias/activation "
        "epilogue.");
  m.def("linear_backward", &linear_backward, py::arg("grad_out"), py::arg("input"), py::arg("weight"),
        py::arg("out"), py::arg("grad_in"), py::arg("grad_weight"), py::arg("grad_bias"),
        py::arg("activation") = "none", py::arg("negative_slope") = 0.0, py::arg("accumulate_weight") = false,
        py::arg("accumulate_bias") = false,
        "Fused backward of out = act(input W^T + b): dz = grad_out * act'(.) (from out), grad_in = dz W "
        "(skipped when None), grad_weight (+)= dz^T input, grad_bias (+)= sum_rows dz (skipped when None).");
  m.def("dropout_forward", &dropout_forward, py::arg("input"), py::arg("out"), py::arg("mask"), py::arg("p"),
        py::arg("seed"), "Inverted dropout: mask = keep(seed, i) (P = 1 - p), out = input * mask / (1 - p).");
  m.def("dropout_backward", &dropout_backward, py::arg("grad_out"), py::arg("mask"), py::arg("grad_in"),
        py::arg("p"), "grad_in = grad_out * mask / (1 - p).");
  m.def("dropout_mask", &dropout_mask, py::arg("mask"), py::arg("p"), py::arg("seed"),
        "The keep mask dropout_forward draws for (p, seed).");
  m.def("batchnorm_forward_train", &batchnorm_forward_train, py::arg("input"), py::arg("weight"), py::arg("bias"),
        py::arg("out"), py::arg("save_mean"), py::arg("save_invstd"), py::arg("running_mean"),
        py::arg("running_var"), py::arg("eps"), py::arg("momentum"),
        "Training-mode batch norm over (N, C) with batch statistics; updates the running stats (unbiased var).");
  m.def("batchnorm_forward_eval", &batchnorm_forward_eval, py::arg("input"), py::arg("weight"), py::arg("bias"),
        py::arg("running_mean"), py::arg("running_var"), py::arg("out"), py::arg("eps"),
        "Eval-mode batch norm with the running statistics.");
  m.def("batchnorm_backward", &batchnorm_backward, py::arg("grad_out"), py::arg("input"), py::arg("mean"),
        py::arg("invstd"), py::arg("weight"), py::arg("grad_in"), py::arg("grad_weight"), py::arg("grad_bias"),
        py::arg("training"), py::arg("accumulate"),
        "Batch-norm backward: grad_weight (+)= sum dy xhat, grad_bias (+)= sum dy, grad_in as in the header.");
}
