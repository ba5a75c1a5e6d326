// pydl._C bindings of the convolution and pooling kernels (csrc/conv). pydl.ops validates user
// input with friendly messages; the checks here guard the kernels: every array's dtype, shape
// (derived from the geometry), contiguity, writeability and aliasing, errors naming the argument.
// Each binding: check -> take pointers -> release the GIL -> call the kernel.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <string>

#include "bindings/args.h"
#include "conv/conv.h"
#include "conv/pool.h"

namespace py = pybind11;
using namespace pydl::bind;
using pydl::ops::Act;
using Pair = std::array<int64_t, 2>;
using Quad = std::array<int64_t, 4>;

namespace {

std::string dims_str(std::initializer_list<int64_t> d) {
  std::string s = "(";
  for (int64_t v : d) s += std::to_string(v) + ",";
  if (d.size() > 1) s.pop_back();
  return s + ")";
}

// An input array of ref's dtype, C-contiguous, of exactly `shape`.
Arg input(const py::handle& o, const char* name, const Arg& ref, std::initializer_list<int64_t> shape) {
  Arg a(o, name);
  a.dtype_as(ref).shape(shape).contiguous();
  return a;
}
// The same, writeable (an output).
Arg output(const py::handle& o, const char* name, const Arg& ref, std::initializer_list<int64_t> shape) {
  Arg a = input(o, name, ref, shape);
  a.writeable();
  return a;
}
Arg optional_output(const py::handle& o, const char* name, const Arg& ref, std::initializer_list<int64_t> shape) {
  Arg a = Arg::optional(o, name);
  a.dtype_as(ref).shape(shape).contiguous().writeable();
  return a;
}

void positive(const Pair& p, const char* name) {
  if (p[0] < 1 || p[1] < 1) throw py::value_error(std::string(name) + ": must be positive, got " + dims_str({p[0], p[1]}));
}

// Geometry of a convolution from x (N, C, H, W), weight (OC, C/G, KH, KW) and the options.
pydl::conv::Conv2dShape conv_shape(const Arg& x, const Arg& w, const Pair& stride, const Quad& pad, const Pair& dil,
                                   int64_t groups) {
  positive(stride, "stride");
  positive(dil, "dilation");
  for (int64_t p : pad)
    if (p < 0) throw py::value_error("padding: must be non-negative, got " + dims_str({pad[0], pad[1], pad[2], pad[3]}));
  if (groups < 1) throw py::value_error("groups: must be positive, got " + std::to_string(groups));
  pydl::conv::Conv2dShape s{x.dim(0), x.dim(1), x.dim(2), x.dim(3), w.dim(0), w.dim(2), w.dim(3),
                            0, 0, stride[0], stride[1], pad[0], pad[2], dil[0], dil[1], groups};
  if (s.C % groups || s.OC % groups || w.dim(1) * groups != s.C)
    throw py::value_error("weight: shape " + shape_str(w.array()) + " does not fit input " + shape_str(x.array()) +
                          " with groups=" + std::to_string(groups));
  const int64_t eh = s.H + pad[0] + pad[1] - s.dh * (s.KH - 1) - 1, ew = s.W + pad[2] + pad[3] - s.dw * (s.KW - 1) - 1;
  if (s.KH < 1 || s.KW < 1 || eh < 0 || ew < 0)
    throw py::value_error("weight: kernel " + shape_str(w.array()) + " (dilated) is larger than the padded input " +
                          shape_str(x.array()));
  s.OH = eh / s.sh + 1;
  s.OW = ew / s.sw + 1;
  return s;
}

Act conv_act(const std::string& a) {
  Act act = activation_arg(a);
  if (act != Act::none && act != Act::relu)
    throw py::value_error("activation: expected 'none' or 'relu', got '" + a + "'");
  return act;
}

// input (N, C, H, W) and weight (OC, C/G, KH, KW) checked, the geometry and the activation.
struct ConvArgs {
  Arg x, w;
  pydl::conv::Conv2dShape s;
  Act act;
  ConvArgs(const py::handle& x_, const py::handle& w_, const Pair& stride, const Quad& pad, const Pair& dil,
           int64_t groups, const std::string& activation)
      : x(x_, "input"), w(w_, "weight") {
    x.floating().rank(4).contiguous();
    w.rank(4);
    act = conv_act(activation);
    s = conv_shape(x, w, stride, pad, dil, groups);
    w.dtype_as(x).contiguous();
  }
};

template <bool Ref>
void conv_forward(const py::handle& x_, const py::handle& w_, const py::object& b_, const py::object& y_,
                  const Pair& stride, const Quad& pad, const Pair& dil, int64_t groups, const std::string& activation) {
  const ConvArgs c(x_, w_, stride, pad, dil, groups, activation);
  const Arg &x = c.x, &w = c.w;
  const auto& s = c.s;
  const Act act = c.act;
  Arg y = output(y_, "out", x, {s.N, s.OC, s.OH, s.OW});
  Arg b = Arg::optional(b_, "bias");
  b.dtype_as(x).shape({s.OC}).contiguous();
  require_disjoint({&y}, {&x, &w, &b});
  dispatch_float(x.dtype(), [&](auto t) {
    using T = decltype(t);
    const T *xp = x.cptr<T>(), *wp = w.cptr<T>(), *bp = b.cptr<T>();
    T* yp = y.ptr<T>();
    py::gil_scoped_release nogil;
    (Ref ? pydl::conv::conv2d_forward_ref<T> : pydl::conv::conv2d_forward<T>)(yp, xp, wp, bp, s, act);
  });
}

template <bool Ref>
void conv_backward(const py::handle& dy_, const py::handle& x_, const py::handle& w_, const py::object& y_,
                   const py::object& dx_, const py::object& dw_, const py::object& db_, const Pair& stride,
                   const Quad& pad, const Pair& dil, int64_t groups, const std::string& activation, bool acc_w,
                   bool acc_b) {
  const ConvArgs c(x_, w_, stride, pad, dil, groups, activation);
  const Arg &x = c.x, &w = c.w;
  const auto& s = c.s;
  const Act act = c.act;
  Arg dy = input(dy_, "grad_out", x, {s.N, s.OC, s.OH, s.OW});
  Arg y = Arg::optional(act == Act::relu ? y_ : py::none(), "out");
  if (act == Act::relu && !y.present()) throw py::value_error("out: the forward output is needed for activation='relu'");
  y.dtype_as(x).shape({s.N, s.OC, s.OH, s.OW}).contiguous();
  Arg dw = output(dw_, "grad_weight", x, {s.OC, s.C / s.groups, s.KH, s.KW});
  Arg dx = optional_output(dx_, "grad_in", x, {s.N, s.C, s.H, s.W});
  Arg db = optional_output(db_, "grad_bias", x, {s.OC});
  require_disjoint({&dx, &dw, &db}, {&dy, &x, &w, &y});
  dispatch_float(x.dtype(), [&](auto t) {
    using T = decltype(t);
    const T *dyp = dy.cptr<T>(), *xp = x.cptr<T>(), *wp = w.cptr<T>(), *yp = y.cptr<T>();
    T *dxp = dx.ptr<T>(), *dwp = dw.ptr<T>(), *dbp = db.ptr<T>();
    py::gil_scoped_release nogil;
    (Ref ? pydl::conv::conv2d_backward_ref<T> : pydl::conv::conv2d_backward<T>)(dxp, dwp, dbp, dyp, xp, wp, yp, s,
                                                                                act, acc_w, acc_b);
  });
}

// ---- pooling -------------------------------------------------------------------------------

// Geometry of a windowed pooling of x (N, C, H, W).
pydl::conv::Pool2dShape pool_shape(const Arg& x, const Pair& k, const Pair& stride, const Pair& pad) {
  positive(k, "kernel_size");
  positive(stride, "stride");
  if (pad[0] < 0 || pad[1] < 0 || 2 * pad[0] > k[0] || 2 * pad[1] > k[1])
    throw py::value_error("padding: must be between 0 and half the kernel size " + dims_str({k[0], k[1]}) + ", got " +
                          dims_str({pad[0], pad[1]}));
  pydl::conv::Pool2dShape s{x.dim(0) * x.dim(1), x.dim(2), x.dim(3), 0, 0, k[0], k[1],
                            stride[0], stride[1], pad[0], pad[1]};
  const int64_t eh = s.H + 2 * pad[0] - k[0], ew = s.W + 2 * pad[1] - k[1];
  if (eh < 0 || ew < 0)
    throw py::value_error("kernel_size: " + dims_str({k[0], k[1]}) + " is larger than the padded input " +
                          shape_str(x.array()));
  s.OH = eh / s.sh + 1;
  s.OW = ew / s.sw + 1;
  return s;
}

// An int64 indices array of exactly `shape`, C-contiguous.
Arg indices_arg(const py::handle& o, std::initializer_list<int64_t> shape) {
  Arg idx(o, "indices");
  if (!is_int64(idx.array())) throw py::type_error("indices: expected int64, got " + dtype_str(idx.array()));
  idx.shape(shape).contiguous();
  return idx;
}

void max_pool_forward(const py::handle& x_, const py::object& y_, const py::object& idx_, const Pair& k,
                      const Pair& stride, const Pair& pad) {
  Arg x(x_, "input");
  x.floating().rank(4).contiguous();
  const auto s = pool_shape(x, k, stride, pad);
  Arg y = output(y_, "out", x, {x.dim(0), x.dim(1), s.OH, s.OW});
  Arg idx = indices_arg(idx_, {x.dim(0), x.dim(1), s.OH, s.OW});
  idx.writeable();
  require_disjoint({&y, &idx}, {&x});
  int64_t* ip = idx.ptr<int64_t>();
  dispatch_float(x.dtype(), [&](auto t) {
    using T = decltype(t);
    const T* xp = x.cptr<T>();
    T* yp = y.ptr<T>();
    py::gil_scoped_release nogil;
    pydl::conv::max_pool2d_forward<T>(yp, ip, xp, s);
  });
}

void max_pool_backward(const py::handle& dy_, const py::handle& idx_, const py::object& dx_) {
  Arg dy(dy_, "grad_out");
  dy.floating().rank(4).contiguous();
  Arg dx(dx_, "grad_in");
  dx.rank(4);
  dx.dtype_as(dy).shape({dy.dim(0), dy.dim(1), dx.dim(2), dx.dim(3)}).contiguous().writeable();
  Arg idx = indices_arg(idx_, {dy.dim(0), dy.dim(1), dy.dim(2), dy.dim(3)});
  require_disjoint({&dx}, {&dy, &idx});
  pydl::conv::Pool2dShape s{dx.dim(0) * dx.dim(1), dx.dim(2), dx.dim(3), dy.dim(2), dy.dim(3), 1, 1, 1, 1, 0, 0};
  const int64_t* ip = idx.cptr<int64_t>();
  bool ok = true;
  dispatch_float(dy.dtype(), [&](auto t) {
    using T = decltype(t);
    const T* dyp = dy.cptr<T>();
    T* dxp = dx.ptr<T>();
    py::gil_scoped_release nogil;
    ok = pydl::conv::max_pool2d_backward<T>(dxp, dyp, ip, s);
  });
  if (!ok) throw py::value_error("indices: an index lies outside the input plane of " + std::to_string(s.H * s.W));
}

// avg (adaptive=false, with k/stride/pad) or adaptive average pooling, forward or backward.
template <bool Adaptive, bool Backward>
void avg_pool(const py::handle& in_, const py::object& out_, const Pair& k, const Pair& stride, const Pair& pad) {
  const char* in_name = Backward ? "grad_out" : "input";
  const char* out_name = Backward ? "grad_in" : "out";
  Arg in(in_, in_name);
  in.floating().rank(4).contiguous();
  Arg out(out_, out_name);
  out.rank(4);
  const Arg& big = Backward ? out : in;    // (N, C, H, W)
  const Arg& small = Backward ? in : out;  // (N, C, OH, OW)
  pydl::conv::Pool2dShape s{};
  if (Adaptive) {
    s = {big.dim(0) * big.dim(1), big.dim(2), big.dim(3), small.dim(2), small.dim(3), 1, 1, 1, 1, 0, 0};
    if ((s.H < 1 || s.W < 1 || s.OH < 1 || s.OW < 1) && s.P > 0)
      throw py::value_error(std::string(in_name) + ": adaptive pooling needs non-empty input and output planes, got " +
                            shape_str(big.array()) + " -> " + shape_str(small.array()));
  } else {
    s = pool_shape(big, k, stride, pad);
  }
  if (Backward) {
    in.shape({big.dim(0), big.dim(1), s.OH, s.OW});
    out.dtype_as(in).shape({in.dim(0), in.dim(1), s.H, s.W});
  } else {
    out.dtype_as(in).shape({in.dim(0), in.dim(1), s.OH, s.OW});
  }
  out.contiguous().writeable();
  require_disjoint({&out}, {&in});
  dispatch_float(in.dtype(), [&](auto t) {
    using T = decltype(t);
    const T* ip = in.cptr<T>();
    T* op = out.ptr<T>();
    py::gil_scoped_release nogil;
    if (Adaptive && Backward) pydl::conv::adaptive_avg_pool2d_backward<T>(op, ip, s);
    else if (Adaptive) pydl::conv::adaptive_avg_pool2d_forward<T>(op, ip, s);
    else if (Backward) pydl::conv::avg_pool2d_backward<T>(op, ip, s);
    else pydl::conv::avg_pool2d_forward<T>(op, ip, s);
  });
}

}  // namespace

void register_conv(py::module_& m) {
  const char* fwd_doc =
      "out = act(conv2d(input, weight) + bias), NCHW; padding is (top, bottom, left, right); act 'none' or 'relu'.";
  const char* bwd_doc =
      "Gradients of conv2d_forward: grad_in (or None), grad_weight (+= with accumulate_weight), grad_bias (or None).";
  m.def("conv2d_forward", &conv_forward<false>, py::arg("input"), py::arg("weight"), py::arg("bias"), py::arg("out"),
        py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("groups"), py::arg("activation") = "none",
        fwd_doc);
  m.def("conv2d_forward_reference", &conv_forward<true>, py::arg("input"), py::arg("weight"), py::arg("bias"),
        py::arg("out"), py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("groups"),
        py::arg("activation") = "none", "The naive direct-loop conv2d_forward (the test oracle).");
  m.def("conv2d_backward", &conv_backward<false>, py::arg("grad_out"), py::arg("input"), py::arg("weight"),
        py::arg("out"), py::arg("grad_in"), py::arg("grad_weight"), py::arg("grad_bias"), py::arg("stride"),
        py::arg("padding"), py::arg("dilation"), py::arg("groups"), py::arg("activation") = "none",
        py::arg("accumulate_weight") = false, py::arg("accumulate_bias") = false, bwd_doc);
  m.def("conv2d_backward_reference", &conv_backward<true>, py::arg("grad_out"), py::arg("input"), py::arg("weight"),
        py::arg("out"), py::arg("grad_in"), py::arg("grad_weight"), py::arg("grad_bias"), py::arg("stride"),
        py::arg("padding"), py::arg("dilation"), py::arg("groups"), py::arg("activation") = "none",
        py::arg("accumulate_weight") = false, py::arg("accumulate_bias") = false,
        "The naive direct-loop conv2d_backward (the test oracle).");
  m.def("max_pool2d_forward", &max_pool_forward, py::arg("input"), py::arg("out"), py::arg("indices"),
        py::arg("kernel_size"), py::arg("stride"), py::arg("padding"),
        "Max pooling (padding -inf); indices (int64) into each input plane, for max_pool2d_backward.");
  m.def("max_pool2d_backward", &max_pool_backward, py::arg("grad_out"), py::arg("indices"), py::arg("grad_in"),
        "grad_in = scatter-add of grad_out at indices (grad_in overwritten).");
  m.def("avg_pool2d_forward", &avg_pool<false, false>, py::arg("input"), py::arg("out"), py::arg("kernel_size"),
        py::arg("stride"), py::arg("padding"), "Average pooling, count_include_pad=True.");
  m.def("avg_pool2d_backward", &avg_pool<false, true>, py::arg("grad_out"), py::arg("grad_in"),
        py::arg("kernel_size"), py::arg("stride"), py::arg("padding"), "Gradient of avg_pool2d_forward.");
  m.def(
      "adaptive_avg_pool2d_forward",
      [](const py::handle& x, const py::object& y) { avg_pool<true, false>(x, y, {1, 1}, {1, 1}, {0, 0}); },
      py::arg("input"), py::arg("out"), "Adaptive average pooling to out's spatial size (PyTorch's bins).");
  m.def(
      "adaptive_avg_pool2d_backward",
      [](const py::handle& dy, const py::object& dx) { avg_pool<true, true>(dy, dx, {1, 1}, {1, 1}, {0, 0}); },
      py::arg("grad_out"), py::arg("grad_in"), "Gradient of adaptive_avg_pool2d_forward.");
}
